#include "sim/sim_memory.h"

#include <algorithm>

namespace residency::sim {
using engine::FormatMiB;

SimMemory::SimMemory(const traces::Profile& p)
    : usable_(p.ram_bytes - p.os_reserve_bytes),
      swap_(p.swap_bytes),
      vram_(p.vram_bytes),
      unified_(p.unified),
      reclaim_for_device_(p.unified && p.device_reclaims_page_cache) {}

std::string SimMemory::AllocDevice(Bytes bytes) {
  if (!unified_) {
    if (device_ + bytes > vram_)
      return "CUDA out of memory: device allocation of " + FormatMiB(bytes) + " with " +
             FormatMiB(device_) + " of " + FormatMiB(vram_) + " in use";
    device_ += bytes;
    return "";
  }
  // An APU's driver caps what the device may take of the pool (the profile's
  // `vram` on a unified machine).
  if (vram_ > 0 && device_ + bytes > vram_)
    return "unified-memory allocation of " + FormatMiB(bytes) + " above the device cap: " + FormatMiB(device_) +
           " of " + FormatMiB(vram_) + " in use";
  // Where the kernel reclaims clean page cache for the allocation (macOS), it
  // is room: Settle() drops the pages, and what a held mapping loses faults
  // back from disk when read again (the cold part of a mapped read). Where the
  // driver's allocator sees free RAM only (DGX Spark, ComfyUI #10896), it is
  // not.
  const Bytes cache = reclaim_for_device_ ? 0 : page_cache_.total();
  const Bytes free = usable_ - Anonymous() - cache;
  if (bytes > free)
    return "unified-memory allocation of " + FormatMiB(bytes) + " failed: " + FormatMiB(std::max<Bytes>(0, free)) +
           " free (anonymous " + FormatMiB(Anonymous()) + ", page cache " + FormatMiB(page_cache_.total()) +
           (reclaim_for_device_ ? ", reclaimable" : ", not reclaimable by this allocator") + ", of " +
           FormatMiB(usable_) + " usable)";
  device_ += bytes;
  return "";
}

std::string SimMemory::Settle() {
  const Bytes locked = pinned_ + (unified_ ? device_ : 0);
  if (locked > usable_)
    return "out of memory: page-locked and device memory " + FormatMiB(locked) + " exceed usable RAM " +
           FormatMiB(usable_);
  if (Anonymous() > usable_ + swap_)
    return "out of memory: anonymous memory " + FormatMiB(Anonymous()) + " exceeds RAM " +
           FormatMiB(usable_) + " + swap " + FormatMiB(swap_);
  page_cache_.ShrinkTo(PageCacheLimit());
  return "";
}

Bytes SimMemory::PageCacheLimit() const { return std::max<Bytes>(0, usable_ - Anonymous()); }

Bytes SimMemory::Available() const { return usable_ - Anonymous(); }

}  // namespace residency::sim
