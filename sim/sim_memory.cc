#include "sim/sim_memory.h"

#include <algorithm>

namespace residency::sim {
using engine::FormatMiB;

SimMemory::SimMemory(const traces::Profile& p)
    : usable_(p.ram_bytes - p.os_reserve_bytes),
      swap_(p.swap_bytes),
      vram_(p.vram_bytes),
      unified_(p.unified) {}

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
  // Unified memory (DGX Spark, ComfyUI #10896): the driver's allocator sees
  // free RAM only; it does not wait for the page cache to be reclaimed.
  const Bytes free = usable_ - Anonymous() - page_cache_.total();
  if (bytes > free)
    return "unified-memory allocation of " + FormatMiB(bytes) + " failed: " + FormatMiB(std::max<Bytes>(0, free)) +
           " free (anonymous " + FormatMiB(Anonymous()) + ", page cache " + FormatMiB(page_cache_.total()) +
           " of " + FormatMiB(usable_) + " usable)";
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
