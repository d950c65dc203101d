// Picks a device backend by name for the CLI: "none" (no device), "host"
// (emulated in host RAM) or "cuda" (an error that says why when unusable).
#pragma once

#include <memory>
#include <string>

#include "runtime/device/device_backend.h"

namespace residency::cli {

inline Result<std::unique_ptr<device::DeviceBackend>> MakeDevice(const std::string& name,
                                                                 std::uint64_t host_capacity) {
  if (name == "none") return std::unique_ptr<device::DeviceBackend>();
  if (name == "host") return device::MakeHostDevice(host_capacity);
  if (name == "cuda") return device::MakeCudaDevice(0);
  return InvalidArgument("unknown device '" + name + "' (none, host, cuda)");
}

}  // namespace residency::cli
