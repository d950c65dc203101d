// Physical memory of the simulated machine: anonymous pageable and pinned
// host memory, device memory (or the unified pool), and the page cache. It
// plays the kernel's OOM killer: when memory that cannot be reclaimed exceeds
// what exists, the run dies.
#pragma once

#include <string>

#include "sim/page_cache.h"
#include "traces/profile.h"

namespace residency::sim {

class SimMemory {
 public:
  explicit SimMemory(const traces::Profile& profile);

  void AddPageable(Bytes delta) { pageable_ += delta; }
  void AddPinned(Bytes delta) { pinned_ += delta; }
  // Returns an OOM message when a device allocation cannot be had ("" if fine).
  std::string AllocDevice(Bytes bytes);
  void FreeDevice(Bytes bytes) { device_ -= bytes; }
  // Reclaims page cache as anonymous memory needs it; returns an OOM message
  // when even an empty page cache leaves too little.
  std::string Settle();
  // Room the page cache may grow into now.
  Bytes PageCacheLimit() const;
  // Free RAM as the OS would report it (page cache counts as available).
  Bytes Available() const;

  PageCache& page_cache() { return page_cache_; }
  const PageCache& page_cache() const { return page_cache_; }
  Bytes pageable() const { return pageable_; }
  Bytes pinned() const { return pinned_; }
  Bytes device() const { return device_; }
  Bytes usable() const { return usable_; }
  bool unified() const { return unified_; }

 private:
  Bytes Anonymous() const { return pageable_ + pinned_ + (unified_ ? device_ : 0); }

  PageCache page_cache_;
  Bytes usable_ = 0;  // RAM minus the OS reserve
  Bytes swap_ = 0;
  Bytes vram_ = 0;
  bool unified_ = false;
  bool reclaim_for_device_ = false;  // unified: device allocations may take clean page cache
  Bytes pageable_ = 0;
  Bytes pinned_ = 0;
  Bytes device_ = 0;
};

}  // namespace residency::sim
