#include "sim/interval_set.h"

#include <algorithm>

namespace residency::sim {

using engine::Bytes;

Bytes IntervalSet::Covered(Bytes offset, Bytes bytes) const {
  const Bytes end = offset + bytes;
  Bytes covered = 0;
  auto it = ranges_.upper_bound(offset);
  if (it != ranges_.begin()) --it;
  for (; it != ranges_.end() && it->first < end; ++it)
    covered += std::max<Bytes>(0, std::min(end, it->second) - std::max(offset, it->first));
  return covered;
}

void IntervalSet::Add(Bytes offset, Bytes bytes) {
  if (bytes <= 0) return;
  Bytes begin = offset, end = offset + bytes;
  auto it = ranges_.upper_bound(begin);
  if (it != ranges_.begin() && std::prev(it)->second >= begin) --it;
  while (it != ranges_.end() && it->first <= end) {
    begin = std::min(begin, it->first);
    end = std::max(end, it->second);
    total_ -= it->second - it->first;
    it = ranges_.erase(it);
  }
  ranges_.emplace(begin, end);
  total_ += end - begin;
}

}  // namespace residency::sim
