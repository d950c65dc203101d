#include "harness/proof/spec_budgets.h"

#include <algorithm>

namespace residency::proof {

engine::Budgets SpecBudgets(const traces::Profile& profile, const engine::Policy& policy) {
  using engine::Bytes;
  constexpr Bytes kGiB = Bytes{1} << 30;
  const Bytes ram = profile.ram_bytes;
  // What the engine may hold in RAM: all of it but the OS's share and the
  // free headroom it promises to leave.
  const Bytes host = std::max<Bytes>(0, ram - profile.os_reserve_bytes - policy.host_headroom_bytes);
  engine::Budgets b;
  b.unified = profile.unified;
  b.host_limit_bytes = host;
  // Device: the card less the reserve kept for activations; on a unified
  // machine the device draws on the same RAM the host limit covers, up to
  // the profile's `vram` cap when it states one.
  const Bytes pool = !profile.unified ? profile.vram_bytes
                     : profile.vram_bytes > 0 ? std::min(host, profile.vram_bytes) : host;
  b.device_limit_bytes = std::max<Bytes>(0, pool - policy.device_reserve_bytes);
  // Pin budget "auto" (FORMAT.md): the larger of 40 % of RAM and the smaller
  // of 90 % of RAM and RAM less 4 GiB; never above what the engine may hold.
  Bytes pin = policy.pin_budget_bytes;
  if (pin < 0) {
    const Bytes forty = ram / 10 * 4 + (ram % 10) * 4 / 10;
    const Bytes ninety = ram / 10 * 9 + (ram % 10) * 9 / 10;
    pin = std::max(forty, std::min(ninety, ram - 4 * kGiB));
  }
  b.pin_budget_bytes = std::min(pin, host);
  // RAM cache "auto": 75 % of RAM, at least 12 GiB and at most 96 GiB.
  Bytes cache = policy.ram_cache_bytes;
  if (cache < 0) cache = std::min(std::max(ram / 4 * 3 + (ram % 4) * 3 / 4, 12 * kGiB), 96 * kGiB);
  b.ram_cache_bytes = std::min(cache, host);
  return b;
}

}  // namespace residency::proof
