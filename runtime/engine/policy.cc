#include "runtime/engine/policy.h"

#include <algorithm>

namespace residency::engine {

Status ValidatePolicy(const Policy& policy) {
  const std::string where = "policy '" + policy.name + "': ";
  if (policy.read_threads < 1 || policy.read_threads > 256)
    return InvalidArgument(where + "read_threads must be in [1, 256], got " +
                           std::to_string(policy.read_threads));
  if (policy.chunk_bytes < 4 * kKiB || policy.chunk_bytes > 1 * kGiB)
    return InvalidArgument(where + "chunk_bytes must be in [4 KiB, 1 GiB], got " +
                           std::to_string(policy.chunk_bytes));
  if (policy.staging_buffers < 1 || policy.staging_buffers > 64)
    return InvalidArgument(where + "staging_buffers must be in [1, 64], got " +
                           std::to_string(policy.staging_buffers));
  if (policy.staging_bytes < policy.chunk_bytes || policy.staging_bytes > 4 * kGiB)
    return InvalidArgument(where + "staging_bytes must be in [chunk_bytes, 4 GiB], got " +
                           std::to_string(policy.staging_bytes));
  if (policy.host_headroom_bytes < 0 || policy.device_reserve_bytes < 0 ||
      policy.pin_hysteresis_bytes < 0 || policy.cache_hysteresis_bytes < 0)
    return InvalidArgument(where + "headroom, reserve and hysteresis must be >= 0");
  return Status::Ok();
}

Status ValidateMachine(const MachineLimits& m) {
  if (m.ram_bytes <= 0) return InvalidArgument("machine: ram_bytes must be > 0");
  if (m.swap_bytes < 0) return InvalidArgument("machine: swap_bytes must be >= 0");
  if (m.os_reserve_bytes < 0 || m.os_reserve_bytes >= m.ram_bytes)
    return InvalidArgument("machine: os_reserve_bytes must be in [0, ram_bytes)");
  if (!m.unified && m.device_bytes <= 0)
    return InvalidArgument("machine: device_bytes must be > 0 unless unified");
  if (m.disk_read_bytes_per_second <= 0)
    return InvalidArgument("machine: disk read bandwidth must be > 0");
  return Status::Ok();
}

Budgets ComputeBudgets(const MachineLimits& m, const Policy& p) {
  Budgets b;
  b.unified = m.unified;
  const Bytes usable_ram = m.ram_bytes - m.os_reserve_bytes;
  b.host_limit_bytes = std::max<Bytes>(0, usable_ram - p.host_headroom_bytes);
  if (m.unified) {
    // One pool; `device_bytes`, when set, caps what the device may allocate
    // from it (an APU's GTT or carve-out: 36 of 48 GiB).
    const Bytes pool = m.device_bytes > 0 ? std::min(b.host_limit_bytes, m.device_bytes) : b.host_limit_bytes;
    b.device_limit_bytes = std::max<Bytes>(0, pool - p.device_reserve_bytes);
  } else {
    b.device_limit_bytes = std::max<Bytes>(0, m.device_bytes - p.device_reserve_bytes);
  }
  if (p.pin_budget_bytes >= 0) {
    b.pin_budget_bytes = p.pin_budget_bytes;
  } else {
    const Bytes ram = m.ram_bytes;
    b.pin_budget_bytes = std::max(ram * 4 / 10, std::min(ram * 9 / 10, ram - 4 * kGiB));
  }
  b.pin_budget_bytes = std::min(b.pin_budget_bytes, b.host_limit_bytes);
  if (p.ram_cache_bytes >= 0) {
    b.ram_cache_bytes = p.ram_cache_bytes;
  } else {
    b.ram_cache_bytes = std::clamp(m.ram_bytes * 3 / 4, 12 * kGiB, 96 * kGiB);
  }
  b.ram_cache_bytes = std::min(b.ram_cache_bytes, b.host_limit_bytes);
  return b;
}

}  // namespace residency::engine
