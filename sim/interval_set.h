// A set of byte ranges, merged as they are added. The simulator keeps one per
// live file mapping: pages a process has faulted in stay mapped, so touching
// them again costs no fault (a held mapping streamed step after step).
#pragma once

#include <map>

#include "runtime/engine/types.h"

namespace residency::sim {

class IntervalSet {
 public:
  // Bytes of [offset, offset + bytes) already in the set.
  engine::Bytes Covered(engine::Bytes offset, engine::Bytes bytes) const;
  // Adds [offset, offset + bytes), merging with neighbours it touches.
  void Add(engine::Bytes offset, engine::Bytes bytes);
  engine::Bytes total() const { return total_; }

 private:
  std::map<engine::Bytes, engine::Bytes> ranges_;  // begin -> end, disjoint, not touching
  engine::Bytes total_ = 0;
};

}  // namespace residency::sim
