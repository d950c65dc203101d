// Linked when the build has no CUDA toolkit.
#include "runtime/device/device_backend.h"

namespace residency::device {

bool CudaCompiledIn() { return false; }

Result<std::unique_ptr<DeviceBackend>> MakeCudaDevice(int) {
  return NotFound("this build has no CUDA backend (nvcc was not found at configure time)");
}

}  // namespace residency::device
