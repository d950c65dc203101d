// `residency load`: brings real safetensors files from disk into host memory
// (device none), on into emulated device memory (host) or a GPU (cuda), and
// reports each stage. The fast path: N threads pread chunks straight into
// their destination; towards a device, through two pinned staging windows so
// that reading window k+1 overlaps copying window k. The classic path
// (mmap + one-thread copy) is here too, as the baseline benchmarks compare to.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "runtime/device/device_backend.h"
#include "runtime/base/status.h"
#include "runtime/io/host_buffer.h"
#include "runtime/io/threaded_reader.h"

namespace residency::loader {

enum class Method : std::uint8_t {
  kThreaded,  // threaded pread (the loader this project ships)
  kMmapCopy,  // mmap + single-thread memcpy into fresh memory (the classic path)
};

struct LoadOptions {
  io::ReaderOptions reader;
  bool direct = false;     // O_DIRECT
  bool pin = true;         // page-lock the host copy (device none)
  bool verify = false;     // compare every tensor with a plain read of the file
  Method method = Method::kThreaded;
  // Load everything this many times in one process. Passes after the first
  // reuse the host buffers, device allocations and staging windows of the
  // first, as a server that recycles its pinned pool does: pass 1 pays for
  // first-touch page faults, later passes show the steady state.
  int passes = 1;
};

struct Stage {
  std::string name;     // "read", "pin", "device alloc", "copy to device", "verify"
  std::uint64_t bytes = 0;
  double seconds = 0;   // wall time of the stage (overlapped stages overlap)
};

struct LoadReport {
  std::uint64_t files = 0;
  std::uint64_t tensors = 0;
  std::uint64_t bytes = 0;       // file bytes read in one pass
  double seconds = 0;            // wall of the last pass, all stages
  std::vector<double> pass_seconds;  // wall of every pass
  std::vector<Stage> stages;     // the last pass
  std::uint64_t peak_rss_bytes = 0;
  std::uint64_t peak_pinned_bytes = 0;
  std::uint64_t staging_bytes = 0;  // one staging window (device loads)
  io::PinKind pin_kind = io::PinKind::kNone;
  std::string pin_note;          // why pinning fell back, if it did
  std::string device;            // device name, "none" for host-only loads
  bool verified = false;
};

// Loads every file. `device` may be null (stop in host memory). A malformed
// file fails the whole load with an error that names the file.
Result<LoadReport> LoadFiles(const std::vector<std::string>& paths, const LoadOptions& options,
                             device::DeviceBackend* device);

// Peak resident set of this process so far (VmHWM), 0 if unknown.
std::uint64_t PeakRssBytes();

}  // namespace residency::loader
