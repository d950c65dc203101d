// A binary-heap event queue of plain-data events ordered by (time, sequence).
// The sequence number makes ties deterministic: equal times pop in push order.
// No allocation per event once the heap has grown.
#pragma once

#include <cstdint>
#include <vector>

#include "runtime/engine/types.h"

namespace residency::sim {

using engine::Nanos;

enum class EventKind : std::uint8_t {
  kCompletion,     // deliver a command's completion to the engine
  kActivityStart,  // a disk activity's latency has passed: start its flow
  kTimer,          // a fixed-duration command (compute) ends
};

struct Event {
  Nanos time = 0;
  std::uint64_t seq = 0;
  EventKind kind = EventKind::kCompletion;
  std::uint64_t payload = 0;
};

class EventQueue {
 public:
  void Push(Nanos time, EventKind kind, std::uint64_t payload);
  // REQUIRES: !empty().
  Event Pop();
  const Event& top() const { return heap_.front(); }
  bool empty() const { return heap_.empty(); }
  std::size_t size() const { return heap_.size(); }
  void Reserve(std::size_t n) { heap_.reserve(n); }

 private:
  static bool Before(const Event& a, const Event& b) {
    return a.time != b.time ? a.time < b.time : a.seq < b.seq;
  }
  std::vector<Event> heap_;
  std::uint64_t next_seq_ = 0;
};

}  // namespace residency::sim
