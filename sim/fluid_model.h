// Fluid bandwidth sharing (SimGrid's linear max-min model). Activities move
// bytes through resources; each resource has a capacity, and each activity a
// weight on every resource it uses and its own rate cap. Rates are the
// max-min fair allocation, recomputed only when an activity starts or ends.
//
// Time is integer nanoseconds; rates are bytes per second as doubles (one
// binary, one result: the arithmetic is deterministic).
#pragma once

#include <array>
#include <cstdint>
#include <functional>
#include <vector>

#include "runtime/engine/types.h"

namespace residency::sim {

using engine::Bytes;
using engine::Nanos;

enum Resource : std::uint8_t { kDisk = 0, kCpu, kPcieH2D, kPcieD2H, kResourceCount };

struct ActivitySpec {
  double bytes = 0;
  double cap_bytes_per_second = 0;             // > 0
  std::array<double, kResourceCount> weight{};  // 0 = resource unused
};

class FluidModel {
 public:
  // Capacity of a resource given how many activities use it (disk throughput
  // depends on concurrency). Set before use.
  using CapacityFn = std::function<double(int active_users)>;
  void SetCapacity(Resource r, CapacityFn fn) { capacity_[r] = std::move(fn); }

  // Starts an activity at `now`; returns its id.
  std::uint64_t Start(const ActivitySpec& spec, Nanos now);
  // Time at which the earliest activity finishes, or -1 when none is active.
  Nanos NextCompletion() const;
  // Advances to `now` (>= last time); returns ids finished by then, in id order.
  std::vector<std::uint64_t> AdvanceTo(Nanos now);
  std::size_t active() const { return acts_.size(); }
  double rate(std::uint64_t id) const;

 private:
  struct Act {
    std::uint64_t id;
    ActivitySpec spec;
    double remaining;
    double rate = 0;
  };
  void Progress(Nanos now);
  void Recompute();

  std::array<CapacityFn, kResourceCount> capacity_;
  std::vector<Act> acts_;
  std::uint64_t next_id_ = 1;
  Nanos now_ = 0;
};

}  // namespace residency::sim
