// Host <-> device copy rates, measured as the executor copies: used by
// `calibrate` for the profile and by `fidelity` on the very device each real
// run uses (an emulated device's speed depends on the host pages behind it).
#pragma once

#include <cstddef>
#include <string>

#include "runtime/device/device_backend.h"
#include "runtime/base/status.h"
#include "runtime/io/host_buffer.h"

namespace residency::harness {

struct CopyRates {
  double h2d_pinned = 0, h2d_pageable = 0, d2h = 0;  // bytes per second
  io::PinKind pin = io::PinKind::kNone;               // how the "pinned" source was locked
  std::string note;                                   // how they were measured, for profile sources
};

// `bytes` of host memory and of device memory (at most the device's
// capacity); each figure the median of `passes` timed passes after one untimed.
Result<CopyRates> MeasureCopyRates(device::DeviceBackend& device, std::size_t bytes, int passes);

}  // namespace residency::harness
