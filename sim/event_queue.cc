#include "sim/event_queue.h"

#include <utility>

namespace residency::sim {

void EventQueue::Push(Nanos time, EventKind kind, std::uint64_t payload) {
  heap_.push_back({time, next_seq_++, kind, payload});
  std::size_t i = heap_.size() - 1;
  while (i > 0) {
    const std::size_t parent = (i - 1) / 2;
    if (!Before(heap_[i], heap_[parent])) break;
    std::swap(heap_[i], heap_[parent]);
    i = parent;
  }
}

Event EventQueue::Pop() {
  Event out = heap_.front();
  heap_.front() = heap_.back();
  heap_.pop_back();
  const std::size_t n = heap_.size();
  std::size_t i = 0;
  for (;;) {
    const std::size_t l = 2 * i + 1, r = l + 1;
    std::size_t m = i;
    if (l < n && Before(heap_[l], heap_[m])) m = l;
    if (r < n && Before(heap_[r], heap_[m])) m = r;
    if (m == i) break;
    std::swap(heap_[i], heap_[m]);
    i = m;
  }
  return out;
}

}  // namespace residency::sim
