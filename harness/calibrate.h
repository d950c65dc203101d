// `residency calibrate`: measures this machine and fills a profile. Every
// figure comes from a timed operation on a scratch file or fresh memory;
// each profile field's source note says how it was measured.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "runtime/device/device_backend.h"
#include "runtime/engine/status.h"
#include "traces/profile.h"

namespace residency::harness {

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
  std::string name = "this-machine";
};

using Progress = std::function<void(const std::string& line)>;

// `device` may be null (no device figures: PCIe rates are left at 0).
Result<traces::Profile> Calibrate(const CalibrateOptions& options, device::DeviceBackend* device,
                                  const Progress& progress);

}  // namespace residency::harness
