// `residency calibrate`: measures this machine and fills a profile. Every
// figure comes from a timed operation on a scratch file or fresh memory;
// each profile field's source note says how it was measured.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "runtime/device/device_backend.h"
#include "runtime/base/status.h"
#include "traces/profile.h"

namespace residency::harness {

// Which memory the prefault figure is measured on. They differ on VMs whose
// balloon hands freed pages back to the hypervisor within seconds: there a
// loader that frees and allocates again (every repeated run) sees recycled
// pages, one that grows into memory idle for a while sees fresh ones.
enum class PrefaultMemory : std::uint8_t { kRecycled, kFresh };

struct CalibrateOptions {
  std::string dir = ".";                 // where the scratch file goes (the disk measured)
  std::uint64_t file_bytes = 1ull << 30;  // scratch file size
  // Buffer size for memory figures. Large on purpose: on a VM, first touches
  // of memory the hypervisor has taken back cost several times what recycled
  // pages do, and a loader's buffers are that large, fresh memory.
  std::uint64_t memory_bytes = 1ull << 30;
  // Reader thread counts measured; 8 is the threaded policies' read_threads.
  std::vector<int> thread_counts = {1, 2, 4, 8};
  int repeats = 3;  // each disk figure is the median of this many reads
  PrefaultMemory prefault = PrefaultMemory::kRecycled;
  // Bytes per read request: the bundled policies' chunk (ComfyUI's
  // XFER_FILE_CHUNK_SIZE). Buffered reads of 2 MiB ran 10-40 % faster than
  // 8 MiB at 2-4 threads here.
  std::size_t read_chunk_bytes = 2u << 20;
  std::string name = "this-machine";
};

using Progress = std::function<void(const std::string& line)>;

// `device` may be null (no device figures: PCIe rates are left at 0).
Result<traces::Profile> Calibrate(const CalibrateOptions& options, device::DeviceBackend* device,
                                  const Progress& progress);

}  // namespace residency::harness
