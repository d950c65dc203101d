// The workload ops: register, load, compute, release, delete, patch.
#include <algorithm>
#include <numeric>

#include "runtime/engine/engine.h"

namespace residency::engine {
Status Engine::DoRegister(const Op& op) {
  if (Find(op.model))
    return FailedPrecondition("register: model id " + std::to_string(op.model) +
                              " is already registered");
  if (op.files.empty())
    return InvalidArgument("register: model '" + op.name + "' has no files");
  ModelState m;
  m.name = op.name.empty() ? "model-" + std::to_string(op.model) : op.name;
  for (const FileSpec& f : op.files) {
    if (f.bytes <= 0)
      return InvalidArgument("register: file '" + f.path + "' of model '" + m.name +
                             "' has size " + std::to_string(f.bytes) + " (must be > 0)");
    if (!f.tensor_bytes.empty()) {
      Bytes sum = 0;
      for (Bytes t : f.tensor_bytes) {
        if (t <= 0)
          return InvalidArgument("register: file '" + f.path + "' has a tensor of size " +
                                 std::to_string(t));
        sum += t;
      }
      if (sum != f.bytes)
        return InvalidArgument("register: tensors of '" + f.path + "' sum to " +
                               std::to_string(sum) + " bytes, file has " +
                               std::to_string(f.bytes));
    }
  }
  for (const FileSpec& f : op.files) {
    auto it = file_index_.find(f.path);
    FileId id;
    if (it == file_index_.end()) {
      id = static_cast<FileId>(files_.size());
      files_.push_back({f.path, f.bytes, false});
      file_index_.emplace(f.path, id);
    } else {
      id = it->second;
      if (files_[id].bytes != f.bytes)
        return InvalidArgument("register: file '" + f.path + "' declared with " +
                               std::to_string(f.bytes) + " bytes, earlier with " +
                               std::to_string(files_[id].bytes));
    }
    m.files.push_back(id);
    m.tensors.push_back(f.tensor_bytes.empty() ? std::vector<Bytes>{f.bytes} : f.tensor_bytes);
    m.bytes += f.bytes;
  }
  m.device_target = m.bytes;
  models_.emplace(op.model, std::move(m));
  AdoptCachedCopy(op.model);
  return Status::Ok();
}

void Engine::KeepHostCopyForItsFiles(ModelId id) {
  const ModelState& m = *Find(id);
  if (!KeepsHostCopies(policy_.eviction) || budgets_.ram_cache_bytes == 0) return;
  if (!m.host_buffer || !m.host_valid || m.host_dirty || m.host_mapped || m.active ||
      m.host_bytes != m.bytes || !m.patches.empty())
    return;
  ModelState entry;
  entry.name = m.name + " (cached copy of its files)";
  entry.files = m.files;
  entry.tensors = m.tensors;
  entry.bytes = m.bytes;
  entry.device_target = m.bytes;
  entry.last_use = m.last_use;
  entry.gds_priority = m.gds_priority;
  entry.file_cache_entry = true;
  const ModelId entry_id = next_cache_entry_++;
  models_.emplace(entry_id, std::move(entry));
  HandOverHostCopy(id, entry_id);  // the model's end frees everything else
}

void Engine::AdoptCachedCopy(ModelId id) {
  const ModelState& m = *Find(id);
  for (const auto& [entry_id, e] : models_)
    if (e.file_cache_entry && e.host_buffer && e.host_valid && e.files == m.files)
      return HandOverHostCopy(entry_id, id);
}

void Engine::HandOverHostCopy(ModelId from, ModelId to) {
  ModelState& f = *Find(from);
  ModelState& t = *Find(to);
  Command adopt = Make(CommandKind::kAdoptHost, to);
  adopt.buffer = f.host_buffer;
  adopt.bytes = f.host_bytes;
  t.host_buffer = f.host_buffer;
  t.host_bytes = f.host_bytes;
  t.host_pinned = f.host_pinned;
  t.host_valid = true;
  f.host_buffer = 0;
  f.host_bytes = 0;
  f.host_valid = f.host_pinned = false;
  Batch({adopt});
}

Bytes Engine::DeviceObtainable(const std::vector<ModelId>& protect) const {
  Bytes free = DeviceFree();
  for (const auto& [id, m] : models_) {
    if (m.device_buffer && !IsProtected(id, protect)) free += m.device_bytes;
    if (budgets_.unified && m.host_buffer && !m.host_mapped && !IsProtected(id, protect))
      free += m.host_bytes;
  }
  return std::min(free, budgets_.device_limit_bytes);
}

Status Engine::DoRequestedLoad(const Op& op, Outbox& out) {
  LoadMode mode = op.mode;
  Bytes partial_bytes = op.device_bytes;
  switch (policy_.load_modes) {
    case LoadModeRule::kAsTraced: break;
    case LoadModeRule::kDynamic:
      mode = LoadMode::kDynamic;
      break;
    case LoadModeRule::kNoVram:
      mode = LoadMode::kPartial;  // nothing resident: every step streams the weights
      partial_bytes = 1;
      break;
    case LoadModeRule::kClassic:
      // ComfyUI without dynamic VRAM loads in full what fits and the rest as
      // a partial (lowvram) load of what is free; an explicit partial stays.
      if (mode == LoadMode::kDynamic) {
        if (const ModelState* m = Find(op.model)) {
          const Bytes obtainable = DeviceObtainable({op.model}) + (m->device_buffer ? m->device_bytes : 0);
          mode = m->bytes <= obtainable ? LoadMode::kFull : LoadMode::kPartial;
          partial_bytes = std::max<Bytes>(1, obtainable);
        }
      }
      break;
  }
  return DoLoad(op.model, mode, partial_bytes, true, out);
}

Status Engine::DoPromptEnd(Outbox& out) {
  if (!policy_.free_device_after_prompt) return Status::Ok();
  // --disable-smart-memory: what no handle holds leaves the device, least
  // recently used first (host copies follow the eviction policy).
  std::vector<ModelId> idle;
  for (const auto& [id, m] : models_)
    if (m.device_buffer && m.handles == 0 && !m.active && !m.file_cache_entry) idle.push_back(id);
  std::sort(idle.begin(), idle.end(), [&](ModelId a, ModelId b) {
    const ModelState& x = models_.at(a);
    const ModelState& y = models_.at(b);
    return x.last_use != y.last_use ? x.last_use < y.last_use : a < b;
  });
  for (ModelId id : idle) EvictDevice(id, EvictReason::kPromptEnd, out);
  return Status::Ok();
}

Status Engine::DoLoad(ModelId id, LoadMode mode, Bytes partial_bytes, bool acquire,
                      Outbox& out) {
  ModelState* m = Find(id);
  if (!m) return NotFound("load: model id " + std::to_string(id) + " is not registered");
  if (m->deleted) return FailedPrecondition("load: model '" + m->name + "' was deleted");
  if (mode == LoadMode::kPartial && partial_bytes <= 0)
    return InvalidArgument("load: partial load of '" + m->name + "' needs device_bytes > 0");
  // On unified memory the device is host RAM: streaming buys nothing.
  if (budgets_.unified) mode = LoadMode::kFull;
  Bytes target = m->bytes;
  if (mode == LoadMode::kPartial) target = std::min(partial_bytes, m->bytes);
  if (mode == LoadMode::kDynamic) {
    const Bytes obtainable = DeviceObtainable({id}) + (m->device_buffer ? m->device_bytes : 0);
    target = std::min(m->bytes, obtainable);
    const Bytes floor = std::min(m->bytes, 256 * kMiB);
    if (target < floor)
      return ResourceExhausted("load: dynamic load of '" + m->name + "' needs at least " +
                               FormatMiB(floor) + " of device memory; " + FormatMiB(obtainable) +
                               " obtainable (limit " + FormatMiB(budgets_.device_limit_bytes) + ")");
  }
  if (acquire) ++m->handles;
  Touch(*m);
  const LoadMode held_mode = m->mode;
  const Bytes held_target = m->device_target;
  m->mode = mode;
  // A device copy smaller than the model streams the rest from a host copy;
  // without one (evicted since) it is not a hit (found by the property tests;
  // traces/regressions/partial-hit-without-host-copy).
  const bool resident = m->device_valid && m->device_bytes >= target && Streamable(*m);
  if (resident || (mode == LoadMode::kDynamic && m->device_valid && Streamable(*m))) {
    m->device_target = m->device_bytes;
    Note(out, NoticeKind::kDeviceHit, id, Tier::kDevice, EvictReason::kDevicePressure,
         m->device_bytes);
    return Status::Ok();
  }
  const Bytes obtainable = DeviceObtainable({id}) + (m->device_buffer ? m->device_bytes : 0);
  if (target > obtainable) {
    if (acquire) --m->handles;
    return ResourceExhausted("load: '" + m->name + "' needs " + FormatMiB(target) +
                             " of device memory; " + FormatMiB(obtainable) +
                             " obtainable (limit " + FormatMiB(budgets_.device_limit_bytes) +
                             ", held by models in use " +
                             FormatMiB(DeviceHeld() - (obtainable - DeviceFree())) +
                             ")");
  }
  // A failed load takes no handle, and leaves a model others hold as they
  // loaded it, so a later compute brings back what they hold (a failed
  // dynamic load of a fully held model made it shrinkable under its own
  // compute; found by Stateful.AnyMachineAnyPolicy...). A model nobody holds
  // keeps the mode last asked for.
  OnFail([this, id, acquire, held_mode, held_target](Outbox&) {
    ModelState* mm = Find(id);
    if (!mm) return;
    if (acquire) --mm->handles;
    if (mm->handles == 0) return;
    mm->mode = held_mode;
    mm->device_target = held_target;
  });
  // A smaller or stale device copy is replaced, not grown.
  if (m->device_buffer) EvictDevice(id, EvictReason::kDevicePressure, out);
  m->device_target = target;
  RESIDENCY_RETURN_IF_ERROR(MakeDeviceRoom(target, {id}, out));
  Then([this, id](Outbox& o) { return PlanTransfer(id, o); });
  return Status::Ok();
}

Status Engine::DoCompute(const Op& op, Outbox& out) {
  (void)out;
  if (op.steps < 0 || op.step_ns < 0 || op.activation_bytes < 0)
    return InvalidArgument("compute: steps, step_ns and activation_bytes must be >= 0");
  for (ModelId id : op.models) {
    const ModelState* m = Find(id);
    if (!m) return NotFound("compute: model id " + std::to_string(id) + " is not registered");
    if (m->deleted) return FailedPrecondition("compute: model '" + m->name + "' was deleted");
  }
  const std::vector<ModelId> used = op.models;
  for (ModelId id : used) {
    ModelState& m = *Find(id);
    m.active = true;
    Touch(m);
  }
  OnFail([this, used](Outbox&) {
    for (ModelId id : used)
      if (ModelState* m = Find(id)) m->active = false;
  });
  // Models evicted since their load come back first (evictions followed by reloads).
  for (ModelId id : used) {
    Then([this, id](Outbox& o) -> Status {
      ModelState& m = *Find(id);
      if (m.device_valid && m.device_bytes >= std::min(m.device_target, m.bytes) && Streamable(m))
        return Status::Ok();
      return DoLoad(id, m.mode, m.device_target, false, o);
    });
  }
  Then([this, op, used](Outbox& o) { return ComputeSteps(op, used, true, o); });
  return Status::Ok();
}

Status Engine::ComputeSteps(const Op& op, const std::vector<ModelId>& used, bool may_shrink,
                            Outbox& o) {
  // Streamed models need a device window to copy through.
  Bytes window = 0;
  for (ModelId id : used) {
    const ModelState& m = *Find(id);
    if (m.device_valid && m.device_bytes < m.bytes)
      window = std::max(window, std::min(policy_.staging_bytes, m.bytes - m.device_bytes));
  }
  const Bytes needed_now = op.activation_bytes + window;
  const Bytes obtainable = DeviceObtainable(used);
  if (may_shrink && needed_now > obtainable) {
    // A dynamic model gives back device bytes so activations fit; the rest
    // of it streams (ComfyUI's dynamic VRAM does the same).
    const Bytes shortfall = needed_now - obtainable + policy_.staging_bytes;
    for (ModelId id : used) {
      ModelState& m = *Find(id);
      if (m.mode != LoadMode::kDynamic || !m.device_valid) continue;
      const Bytes target = m.device_bytes - shortfall;
      if (target < std::min<Bytes>(m.bytes, 256 * kMiB)) continue;
      EvictDevice(id, EvictReason::kDevicePressure, o);
      Then([this, id, target](Outbox& oo) { return DoLoad(id, LoadMode::kPartial, target, false, oo); });
      Then([this, id](Outbox&) {
        Find(id)->mode = LoadMode::kDynamic;
        return Status::Ok();
      });
      Then([this, op, used](Outbox& oo) { return ComputeSteps(op, used, false, oo); });
      return Status::Ok();
    }
  }
  const Bytes needed = op.activation_bytes + window;
  if (needed > 0) RESIDENCY_RETURN_IF_ERROR(MakeDeviceRoom(needed, used, o));
  const BufferId activations = op.activation_bytes > 0 ? NewBuffer() : 0;
  const BufferId stream = window > 0 ? NewBuffer() : 0;
  std::vector<Command> alloc;
  if (activations) {
    Command c = Make(CommandKind::kAllocDevice, used.empty() ? 0 : used.front());
    c.device_buffer = activations;
    c.bytes = op.activation_bytes;
    c.activation = true;
    alloc.push_back(c);
  }
  if (stream) {
    Command c = Make(CommandKind::kAllocDevice, used.front());
    c.device_buffer = stream;
    c.bytes = window;
    c.activation = true;
    alloc.push_back(c);
  }
  std::vector<Command> frees;
  for (const Command& a : alloc) {
    Command c = Make(CommandKind::kFreeDevice, a.model);
    c.device_buffer = a.device_buffer;
    c.bytes = a.bytes;
    frees.push_back(c);
  }
  Batch(std::move(alloc));
  // No undo hook: on a failure the frees staged below are issued anyway
  // (FailTask keeps the releases an op decided).
  for (int step = 0; step < op.steps; ++step) {
    const std::size_t first_staged = staged_steps_.size();
    for (ModelId id : used) {
      const ModelState& m = *Find(id);
      if (m.device_valid && m.device_bytes < m.bytes) {
        Note(o, NoticeKind::kStreamed, id, Tier::kDevice, EvictReason::kDevicePressure,
             m.bytes - m.device_bytes);
        PlanStream(m, id, stream, window);
      }
    }
    Command c = Make(CommandKind::kCompute, used.empty() ? 0 : used.front());
    c.duration_ns = op.step_ns;
    // A measured step time already holds its streaming: the compute runs
    // beside the step's first stream, not after it.
    Step* beside = nullptr;
    if (op.step_includes_streaming)
      for (std::size_t i = first_staged; i < staged_steps_.size() && !beside; ++i)
        if (staged_steps_[i].pipeline) beside = &staged_steps_[i];
    if (beside) {
      ledger_.Stage(c);
      beside->companions.push_back(c);
    } else {
      Batch({c});
    }
  }
  Batch(frees);
  Then([this, used](Outbox&) {
    for (ModelId id : used) Find(id)->active = false;
    return Status::Ok();
  });
  return Status::Ok();
}

Status Engine::DoRelease(ModelId id, Outbox& out) {
  ModelState* m = Find(id);
  if (!m) return NotFound("release: model id " + std::to_string(id) + " is not registered");
  if (m->handles <= 0)
    return FailedPrecondition("release: model '" + m->name + "' has no live handle");
  --m->handles;
  if (m->handles == 0 && !m->deleted) {
    // A copy kept only for streaming is not kept once nobody streams from it.
    if (m->host_buffer && !m->host_mapped && !KeepsHostCopies(policy_.eviction) && !m->active &&
        !m->host_dirty)
      EvictHost(id, EvictReason::kNotCached, out);
    EnforceCacheBudget({}, out);
  }
  MaybeFinalize(id);
  return Status::Ok();
}

Status Engine::DoDelete(ModelId id, Outbox& out) {
  (void)out;
  ModelState* m = Find(id);
  if (!m) return NotFound("delete: model id " + std::to_string(id) + " is not registered");
  if (m->deleted) return FailedPrecondition("delete: model '" + m->name + "' was already deleted");
  m->deleted = true;
  MaybeFinalize(id);
  return Status::Ok();
}

void Engine::MaybeFinalize(ModelId id) {
  ModelState& m = *Find(id);
  if (!m.deleted || m.handles > 0 || m.finalizer_issued) return;
  m.finalizer_issued = true;
  KeepHostCopyForItsFiles(id);
  // A deleted model's bytes go first, dirty or not; then its finalizer, once.
  std::vector<Command> frees;
  if (m.device_buffer) {
    Command c = Make(CommandKind::kFreeDevice, id);
    c.device_buffer = m.device_buffer;
    c.bytes = m.device_bytes;
    frees.push_back(c);
  }
  if (m.host_buffer) frees.push_back(FreeHostCommand(m, id));
  if (m.spilled) ledger_.AddSpilled(-m.bytes);
  m.device_buffer = 0;
  m.device_bytes = 0;
  m.device_valid = m.device_dirty = false;
  m.host_buffer = 0;
  m.host_bytes = 0;
  m.host_valid = m.host_dirty = m.host_pinned = m.host_mapped = false;
  m.spilled = false;
  Batch(std::move(frees));
  Batch({Make(CommandKind::kRunFinalizer, id)});
}

Status Engine::DoPatch(const Op& op, Outbox& out) {
  ModelState* m = Find(op.model);
  const ModelState* p = Find(op.patch_model);
  if (!m) return NotFound("patch: model id " + std::to_string(op.model) + " is not registered");
  if (!p)
    return NotFound("patch: patch model id " + std::to_string(op.patch_model) +
                    " is not registered");
  if (op.model == op.patch_model) return InvalidArgument("patch: a model cannot patch itself");
  if (m->deleted || p->deleted)
    return FailedPrecondition("patch: '" + m->name + "' or its patch was deleted");
  if (op.patched_bytes < 0 || op.patched_bytes > m->bytes)
    return InvalidArgument("patch: patched_bytes must be in [0, model bytes]");
  m->patches.push_back(op.patch_model);
  m->patched_bytes = op.patched_bytes == 0 ? m->bytes : std::max(m->patched_bytes, op.patched_bytes);
  // Older dirty copies miss this patch: they are stale now.
  if (m->host_dirty) EvictHost(op.model, EvictReason::kNotCached, out);
  if (m->spilled) {
    m->spilled = false;
    ledger_.AddSpilled(-m->bytes);
  }
  if (m->device_valid) {
    RESIDENCY_RETURN_IF_ERROR(PlanPatchApply(op.model, out));
    Then([this, id = op.model](Outbox&) {
      Find(id)->device_dirty = true;
      return Status::Ok();
    });
  }
  return Status::Ok();
}

}  // namespace residency::engine
