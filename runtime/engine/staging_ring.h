// The pinned staging ring: a fixed number of equally sized host buffers that
// file reads land in before a device copy. Slots rotate round-robin, so the
// order of reuse is deterministic; a slot is reused only after its copy is done.
#pragma once

#include <vector>

#include "runtime/engine/types.h"

namespace residency::engine {

class StagingRing {
 public:
  struct Slot {
    BufferId buffer = 0;
    bool pinned = false;
    bool busy = false;
  };

  void Reset(std::vector<Slot> slots, Bytes slot_bytes) {
    slots_ = std::move(slots);
    slot_bytes_ = slot_bytes;
    next_ = 0;
  }
  bool empty() const { return slots_.empty(); }
  Bytes slot_bytes() const { return slot_bytes_; }
  const std::vector<Slot>& slots() const { return slots_; }

  // Returns the index of the next free slot in rotation order, or -1.
  int Acquire() {
    for (std::size_t i = 0; i < slots_.size(); ++i) {
      const std::size_t index = (next_ + i) % slots_.size();
      if (!slots_[index].busy) {
        slots_[index].busy = true;
        next_ = (index + 1) % slots_.size();
        return static_cast<int>(index);
      }
    }
    return -1;
  }
  void Release(int index) { slots_[static_cast<std::size_t>(index)].busy = false; }
  const Slot& slot(int index) const { return slots_[static_cast<std::size_t>(index)]; }
  int busy_count() const {
    int n = 0;
    for (const Slot& s : slots_) n += s.busy ? 1 : 0;
    return n;
  }

 private:
  std::vector<Slot> slots_;
  Bytes slot_bytes_ = 0;
  std::size_t next_ = 0;
};

}  // namespace residency::engine
