// The engine's buffers and the byte counters over them, in one place: what
// each buffer is (pageable, pinned, mapped, device, staging, activation) and
// holds, what an op decided but has not issued yet (staged), and what has a
// command in flight. Every change to the counters happens here, next to the
// recount that checks them (Check).
#pragma once

#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "runtime/engine/commands.h"
#include "runtime/engine/policy.h"

namespace residency::engine {

// Bytes the engine holds, by kind. Updated when a command is issued (an
// allocation counts from the moment it is asked for, a free from the moment
// it is issued), so the numbers are an upper bound of what executors hold.
struct Accounting {
  Bytes pageable_bytes = 0;    // host memory, not page-locked
  Bytes pinned_bytes = 0;      // page-locked host memory (staging included)
  Bytes staging_bytes = 0;     // of the two above, the staging ring
  Bytes device_bytes = 0;      // device allocations (weights + activations)
  Bytes activation_bytes = 0;  // of device_bytes, activations
  Bytes mapped_bytes = 0;      // file mappings (page cache, not anonymous)
  Bytes spilled_bytes = 0;     // dirty weights in scratch files
  Bytes host_bytes() const { return pageable_bytes + pinned_bytes; }
};

class BufferLedger {
 public:
  struct Buffer {
    Bytes bytes = 0;
    ModelId owner = 0;
    bool device = false;
    bool pinned = false;
    bool staging = false;
    bool mapped = false;
    bool activation = false;
    int inflight = 0;
  };
  // Allocations and frees decided but not yet issued (staged in a step).
  struct Staged {
    Bytes host_alloc = 0, host_free = 0;
    Bytes device_alloc = 0, device_free = 0;
    Bytes pin_alloc = 0, pin_free = 0;
  };
  // How a command reaches Issue: out of a staged batch (Stage counted its
  // bytes), or at once (host pressure's frees).
  enum class Route { kStaged, kDirect };
  // What issuing a command came to.
  struct Issued {
    bool send = false;  // false: nothing to send (see `fault`)
    std::string fault;  // non-empty: it names a buffer that does not exist
  };

  const Accounting& totals() const { return acct_; }
  const Staged& staged() const { return staged_; }
  // Issued plus staged bytes, per kind: what the budgets are checked against.
  Bytes DeviceHeld() const { return acct_.device_bytes + staged_.device_alloc - staged_.device_free; }
  Bytes HostHeld() const { return acct_.host_bytes() + staged_.host_alloc - staged_.host_free; }
  Bytes PinnedHeld() const { return acct_.pinned_bytes + staged_.pin_alloc - staged_.pin_free; }
  // Spilled bytes live in scratch files, not buffers: the engine counts them.
  void AddSpilled(Bytes delta) { acct_.spilled_bytes += delta; }

  const Buffer* Find(BufferId id) const;
  // Whether nothing outside the running op may free `id` now: a command is in
  // flight on it, or a staged command still acts on it.
  bool Busy(BufferId id) const;

  // A command decided in a batch: its bytes count as staged, and it holds its
  // buffers until it is issued.
  void Stage(const Command& c);
  // A staged command about to be issued: its hold ends (Issue takes its bytes).
  void Unhold(const Command& c);
  // A staged command dropped unissued (its op failed): its bytes and hold go,
  // and a later free of an allocation it would have made is moot.
  void Discard(const Command& c);
  // What an issued command does to the buffers and counters.
  Issued Issue(const Command& c, Route route);
  // A command finished: its buffers are no longer in flight.
  void Settle(CommandKind kind, BufferId buffer, BufferId device_buffer);

  // Counters against a recount of the buffers, and against the budgets; one
  // sentence per violation.
  std::vector<std::string> Check(const Budgets& budgets) const;

 private:
  void StagedBytes(const Command& c, int sign);
  void Holds(const Command& c, int sign);
  std::optional<BufferId> MissingBuffer(const Command& c) const;
  Buffer& Create(BufferId id, const Command& c);  // an allocation's buffer: its bytes and owner

  Accounting acct_;
  Staged staged_;
  std::map<BufferId, Buffer> buffers_;
  std::map<BufferId, int> holds_;       // staged commands per buffer
  std::set<BufferId> never_allocated_;  // allocations a failed op discarded unissued
};

}  // namespace residency::engine
