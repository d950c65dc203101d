// Making room: device and host space, the pin budget, the RAM cache budget.
// Every function here decides fully before it changes anything, so a failed
// decision leaves no half-evicted state behind.
#include <algorithm>

#include "runtime/engine/engine.h"

namespace residency::engine {
Bytes Engine::DeviceHeld() const { return ledger_.DeviceHeld(); }

Bytes Engine::DeviceFree() const {
  Bytes free = budgets_.device_limit_bytes - DeviceHeld();
  if (budgets_.unified) free = std::min(free, HostFree());
  return free;
}

Bytes Engine::HostFree() const {
  Bytes held = ledger_.HostHeld();
  if (budgets_.unified) held += DeviceHeld();
  return budgets_.host_limit_bytes - held;
}

bool Engine::IsProtected(ModelId id, const std::vector<ModelId>& protect) const {
  const ModelState* m = Find(id);
  if (!m || m->active) return true;
  return std::find(protect.begin(), protect.end(), id) != protect.end();
}

std::int64_t Engine::ReloadCostPerMiB(const ModelState& m) const {
  // GreedyDual-Size value: reload cost per MiB held, in nanoseconds. Reading
  // from disk costs bytes / bandwidth; dirty weights also cost their patches.
  const Bytes bw = std::max<Bytes>(1, machine_.disk_read_bytes_per_second);
  Bytes reload = m.bytes;
  for (ModelId p : m.patches)
    if (const ModelState* pm = Find(p)) reload += pm->bytes;
  const std::int64_t mib = std::max<Bytes>(1, m.bytes / kMiB);
  const std::int64_t reload_ns = static_cast<std::int64_t>(
      static_cast<long double>(reload) * kNanosPerSecond / static_cast<long double>(bw));
  return reload_ns / mib;
}

std::vector<ModelId> Engine::HostVictimOrder(const std::vector<ModelId>& protect) const {
  std::vector<ModelId> order;
  for (const auto& [id, m] : models_) {
    if (!m.host_buffer || m.host_mapped || !m.host_valid) continue;
    if (IsProtected(id, protect)) continue;
    if (m.handles > 0 && StreamsFromHost(m) && m.device_valid) continue;  // needed bytes
    order.push_back(id);
  }
  const bool cost_aware = policy_.eviction == EvictionKind::kRamCostAware;
  std::sort(order.begin(), order.end(), [&](ModelId a, ModelId b) {
    const ModelState& x = models_.at(a);
    const ModelState& y = models_.at(b);
    if (cost_aware && x.gds_priority != y.gds_priority) return x.gds_priority < y.gds_priority;
    if (x.last_use != y.last_use) return x.last_use < y.last_use;
    return a < b;
  });
  return order;
}

Status Engine::MakeDeviceRoom(Bytes needed, const std::vector<ModelId>& protect, Outbox& out) {
  if (DeviceFree() >= needed) return Status::Ok();
  // Decide first: least recently used device copies of models not in use.
  std::vector<ModelId> device_victims;
  for (const auto& [id, m] : models_)
    if (m.device_buffer && !IsProtected(id, protect)) device_victims.push_back(id);
  std::sort(device_victims.begin(), device_victims.end(), [&](ModelId a, ModelId b) {
    const ModelState& x = models_.at(a);
    const ModelState& y = models_.at(b);
    return x.last_use != y.last_use ? x.last_use < y.last_use : a < b;
  });
  const Bytes device_room = budgets_.device_limit_bytes - DeviceHeld();
  Bytes device_gain = 0;
  std::vector<ModelId> chosen;
  for (ModelId id : device_victims) {
    if (device_room + device_gain >= needed) break;
    device_gain += models_.at(id).device_bytes;
    chosen.push_back(id);
  }
  // On unified memory cached host copies share the pool; they go too if needed.
  std::vector<ModelId> host_chosen;
  Bytes host_gain = 0;
  if (budgets_.unified) {
    const Bytes host_room = HostFree() + device_gain;
    for (ModelId id : HostVictimOrder(protect)) {
      if (host_room + host_gain >= needed) break;
      host_gain += models_.at(id).host_bytes;
      host_chosen.push_back(id);
    }
  }
  const Bytes available = std::min(device_room + device_gain,
                                   budgets_.unified ? HostFree() + device_gain + host_gain
                                                    : device_room + device_gain);
  if (available < needed)
    return ResourceExhausted("working set needs " + FormatMiB(needed) + " more device memory; " +
                             FormatMiB(available) + " obtainable (device limit " +
                             FormatMiB(budgets_.device_limit_bytes) + ", in use by active models " +
                             FormatMiB(budgets_.device_limit_bytes - device_room - device_gain) + ")");
  for (ModelId id : chosen) EvictDevice(id, EvictReason::kDevicePressure, out);
  for (ModelId id : host_chosen) EvictHost(id, EvictReason::kDevicePressure, out);
  return Status::Ok();
}

Status Engine::MakeHostRoom(Bytes needed, const std::vector<ModelId>& protect, Outbox& out) {
  const Bytes free = HostFree();
  if (free >= needed) return Status::Ok();
  // Free at least the hysteresis chunk so pressure events are consolidated.
  const Bytes goal = std::max(needed - free, policy_.cache_hysteresis_bytes);
  Bytes gain = 0;
  std::vector<ModelId> chosen;
  for (ModelId id : HostVictimOrder(protect)) {
    if (gain >= goal) break;
    gain += models_.at(id).host_bytes;
    chosen.push_back(id);
  }
  if (free + gain < needed)
    return ResourceExhausted("working set needs " + FormatMiB(needed) + " of host memory; " + FormatMiB(free + gain) +
                             " obtainable (host limit " + FormatMiB(budgets_.host_limit_bytes) + ", pinned " +
                             FormatMiB(ledger_.totals().pinned_bytes) + ", pageable " +
                             FormatMiB(ledger_.totals().pageable_bytes) + ")");
  for (ModelId id : chosen) EvictHost(id, EvictReason::kHostPressure, out);
  return Status::Ok();
}

bool Engine::PinRoom(Bytes needed, const std::vector<ModelId>& protect, Outbox& out) {
  auto pinned = [this] { return ledger_.PinnedHeld(); };
  if (pinned() + needed <= budgets_.pin_budget_bytes) return true;
  if (needed > budgets_.pin_budget_bytes) return false;
  // Priority: staging > pins of active models > pins of inactive models.
  // Unpin inactive models' copies, least recently used first; data stays.
  std::vector<ModelId> order;
  for (const auto& [id, m] : models_)
    if (m.host_buffer && m.host_pinned && !IsProtected(id, protect) && m.handles == 0)
      order.push_back(id);
  for (const auto& [id, m] : models_)
    if (m.host_buffer && m.host_pinned && !IsProtected(id, protect) && m.handles > 0)
      order.push_back(id);
  std::stable_sort(order.begin(), order.end(), [&](ModelId a, ModelId b) {
    const bool ha = models_.at(a).handles > 0, hb = models_.at(b).handles > 0;
    if (ha != hb) return !ha;
    return models_.at(a).last_use < models_.at(b).last_use;
  });
  const Bytes goal = std::max(pinned() + needed - budgets_.pin_budget_bytes,
                              policy_.pin_hysteresis_bytes);
  Bytes gain = 0;
  std::vector<ModelId> chosen;
  for (ModelId id : order) {
    if (gain >= goal) break;
    gain += models_.at(id).host_bytes;
    chosen.push_back(id);
  }
  if (pinned() - gain + needed > budgets_.pin_budget_bytes) return false;
  for (ModelId id : chosen) {
    ModelState& m = models_.at(id);
    Command c = Make(CommandKind::kUnpin, id);
    c.buffer = m.host_buffer;
    c.bytes = m.host_bytes;
    Batch({c});
    m.host_pinned = false;
    Note(out, NoticeKind::kEvicted, id, Tier::kPinned, EvictReason::kPinBudget, m.host_bytes);
  }
  return true;
}

void Engine::EnforceCacheBudget(const std::vector<ModelId>& protect, Outbox& out) {
  Bytes cached = RamCacheBytes();
  if (cached <= budgets_.ram_cache_bytes) return;
  for (ModelId id : HostVictimOrder(protect)) {
    if (cached <= budgets_.ram_cache_bytes) break;
    cached -= models_.at(id).host_bytes;
    EvictHost(id, EvictReason::kRamCacheBudget, out);
  }
}

void Engine::EvictDevice(ModelId id, EvictReason reason, Outbox& out) {
  ModelState& m = *Find(id);
  if (!m.device_buffer) return;
  const bool whole = m.device_bytes == m.bytes;
  if (m.device_valid && m.device_dirty && whole) {
    // Patched weights cannot be re-read from the file: keep them if we can.
    if (KeepsHostCopies(policy_.eviction) && m.host_buffer && !m.host_mapped &&
        m.host_bytes == m.bytes) {
      Pipe(HostDeviceChunks(m, id, 0, m.bytes, policy_.staging_bytes, m.device_buffer, DeviceSide::kSameOffsets,
                            Direction::kToHost),
           {.reads_in_flight_max = 1, .copies_in_flight_max = 2, .read_bytes_max = policy_.staging_bytes});
      m.host_valid = true;
      m.host_dirty = true;
    } else if (m.spilled) {
      // The scratch file already holds exactly these weights.
    } else if (policy_.eviction == EvictionKind::kSpill && ring_planned_) {
      const FileId spill = SpillFile(id);
      std::vector<TransferChunk> chunks;
      for (Bytes off = 0; off < m.bytes;) {
        TransferChunk c;
        c.model = id;
        c.bytes = std::min(ring_.slot_bytes(), m.bytes - off);
        c.staging = true;
        c.has_copy = true;
        c.to_device = false;
        c.device_buffer = m.device_buffer;
        c.device_offset = off;
        c.has_write = true;
        c.write_file = spill;
        c.write_offset = off;
        chunks.push_back(c);
        off += c.bytes;
      }
      Pipe(std::move(chunks),
           {.reads_in_flight_max = 1, .copies_in_flight_max = 2, .read_bytes_max = ring_.slot_bytes()});
      m.spilled = true;
      ledger_.AddSpilled(m.bytes);
      ForgetSpillOnFail(id);
      Note(out, NoticeKind::kSpilled, id, Tier::kDisk, reason, m.bytes);
    }
    // Otherwise the patched state is dropped; the next load re-applies patches.
  }
  Command c = Make(CommandKind::kFreeDevice, id);
  c.device_buffer = m.device_buffer;
  c.bytes = m.device_bytes;
  Batch({c});
  Note(out, NoticeKind::kEvicted, id, Tier::kDevice, reason, m.device_bytes);
  m.device_buffer = 0;
  m.device_bytes = 0;
  m.device_valid = false;
  m.device_dirty = false;
}

// A spill write that fails leaves no usable scratch copy: the patched state
// is dropped, and the next load re-applies the patches to the file's weights.
void Engine::ForgetSpillOnFail(ModelId id) {
  if (!task_) return;
  OnFail([this, id](Outbox&) {
    ModelState* m = Find(id);
    if (!m || !m->spilled) return;
    m->spilled = false;
    ledger_.AddSpilled(-m->bytes);
  });
}

void Engine::EvictHost(ModelId id, EvictReason reason, Outbox& out) {
  ModelState& m = *Find(id);
  if (!m.host_buffer) return;
  if (m.host_dirty && !m.spilled && policy_.eviction == EvictionKind::kSpill && !m.deleted &&
      reason != EvictReason::kNotCached) {
    TransferChunk c;
    c.model = id;
    c.bytes = m.host_bytes;
    c.host_buffer = m.host_buffer;
    c.host_pinned = m.host_pinned;
    c.has_write = true;
    c.write_file = SpillFile(id);
    Pipe({c}, {.reads_in_flight_max = 1, .copies_in_flight_max = 1, .read_bytes_max = m.host_bytes});
    m.spilled = true;
    ledger_.AddSpilled(m.bytes);
    ForgetSpillOnFail(id);
    Note(out, NoticeKind::kSpilled, id, Tier::kDisk, reason, m.bytes);
  }
  Batch({FreeHostCommand(m, id)});
  if (reason != EvictReason::kNotCached)
    Note(out, NoticeKind::kEvicted, id, m.host_pinned ? Tier::kPinned : Tier::kHost, reason,
         m.host_bytes);
  if (policy_.eviction == EvictionKind::kRamCostAware) gds_inflation_ = m.gds_priority;
  m.host_buffer = 0;
  m.host_bytes = 0;
  m.host_valid = m.host_dirty = m.host_pinned = m.host_mapped = false;
}

void Engine::HostPressure(Bytes bytes, Outbox& out) {
  // Outside any op: frees are issued at once, not awaited. Dirty copies stay
  // (they would need a spill write, which runs inside ops only).
  const Bytes goal = std::max(bytes, policy_.cache_hysteresis_bytes);
  Bytes gain = 0;
  for (ModelId id : HostVictimOrder({})) {
    if (gain >= goal) break;
    ModelState& m = models_.at(id);
    if (m.host_dirty) continue;
    // Only complete copies go: one still being built may have steps queued
    // behind its allocation (prefault, pin) that would land on a freed buffer.
    if (!m.host_valid) continue;
    // A buffer with a command in flight (or not yet allocated) is never
    // freed, nor one a staged command of the running op still acts on (an
    // unpin that a pin-room squeeze staged: found by the property tests with
    // seed 6).
    if (ledger_.Busy(m.host_buffer)) continue;
    if (task_ && (task_->op.model == id || task_->op.patch_model == id ||
                  std::find(task_->op.models.begin(), task_->op.models.end(), id) != task_->op.models.end()))
      continue;
    gain += m.host_bytes;
    const Command c = FreeHostCommand(m, id);  // an unmap for a held mapping
    Issue(c, out, BufferLedger::Route::kDirect);
    Note(out, NoticeKind::kEvicted, id, m.host_pinned ? Tier::kPinned : Tier::kHost,
         EvictReason::kHostPressure, m.host_bytes);
    m.host_buffer = 0;
    m.host_bytes = 0;
    m.host_valid = m.host_pinned = m.host_mapped = false;
  }
  Advance(out);
}

}  // namespace residency::engine
