// Where weights go after host memory: a real GPU (CUDA) or device memory
// emulated in host RAM with its own capacity (tests, machines without a GPU).
// Copies are blocking for the calling thread and may run from several
// threads at once; the executor overlaps them with disk reads.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

#include "runtime/base/status.h"
#include "runtime/base/units.h"
#include "runtime/io/host_buffer.h"

namespace residency::device {

using DevicePtr = std::uintptr_t;

class DeviceBackend {
 public:
  virtual ~DeviceBackend() = default;

  virtual std::string name() const = 0;
  // True where a copy is a CPU memcpy (the host device), false for DMA.
  virtual bool copies_on_cpu() const { return false; }
  virtual std::uint64_t capacity_bytes() const = 0;
  virtual std::uint64_t used_bytes() const = 0;

  // ResourceExhausted when the device is full. used_bytes() counts live
  // allocations only: the backends keep freed memory for reuse, so Free
  // never waits on the device (cudaFree would synchronize it).
  virtual Result<DevicePtr> Alloc(std::size_t bytes) = 0;
  virtual void Free(DevicePtr ptr) = 0;

  // Internal when [offset, offset + n) is not inside one live allocation.
  virtual Status CopyToDevice(DevicePtr dst, std::size_t dst_offset, const void* src,
                              std::size_t n) = 0;
  virtual Status CopyToHost(void* dst, DevicePtr src, std::size_t src_offset, std::size_t n) = 0;

  // Page-locks host memory so the device can DMA from it. Reports how; kPlain
  // with `why` set when nothing worked.
  virtual io::PinKind RegisterHost(void* data, std::size_t bytes, std::string* why) = 0;
  virtual void UnregisterHost(void* data, std::size_t bytes, io::PinKind kind) = 0;

  // One compute step of `ns` device time. Both backends wait it out: the
  // workloads we replay declare durations, not kernels.
  virtual Status Compute(Nanos ns) = 0;
};

// Device memory emulated in host RAM: Alloc reserves and prefaults (as VRAM
// is resident) and freed blocks are kept for reuse by size (a caching
// allocator, as PyTorch's on a GPU; they give way when a new block would not
// fit), copies are memcpy, pinning is mlock.
std::unique_ptr<DeviceBackend> MakeHostDevice(std::uint64_t capacity_bytes);
// The same with all of its capacity faulted in at creation and carved up
// first-fit, so that allocations cost nothing, as on a GPU (fidelity runs).
Result<std::unique_ptr<DeviceBackend>> MakeResidentHostDevice(std::uint64_t capacity_bytes);

// True when this build has the CUDA backend compiled in.
bool CudaCompiledIn();
// The CUDA backend on device `ordinal`; a clear error when the build has no
// CUDA or the machine has no usable GPU (error 35: no driver, or a driver
// older than the CUDA runtime; the message says which).
Result<std::unique_ptr<DeviceBackend>> MakeCudaDevice(int ordinal);

}  // namespace residency::device
