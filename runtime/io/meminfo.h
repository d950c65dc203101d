// The machine's free memory as the kernel reports it, for host pressure.
#pragma once

#include <cstdint>

namespace residency::io {

// /proc/meminfo's MemAvailable in bytes: memory that can be had without
// swapping (free pages plus clean page cache). -1 when it cannot be read.
std::int64_t MemAvailableBytes();

}  // namespace residency::io
