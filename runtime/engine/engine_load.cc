// Load planning: which source, which buffers, which chunks, in what order.
#include <algorithm>
#include <limits>

#include "runtime/engine/engine.h"

namespace residency::engine {

bool Engine::HoldsMapping() const {
  return policy_.hold_mapping && policy_.loader == LoaderKind::kMmapPageable;
}

bool Engine::WantsHostCopy(const ModelState& m) const {
  if (HoldsMapping()) return true;     // ComfyUI's mmap path: the mapping stays
  if (budgets_.unified) return false;  // one pool: a host copy would be a second copy
  if (StreamsFromHost(m)) return true;
  if (policy_.loader == LoaderKind::kMmapPageable) return true;  // the mapping itself
  return KeepsHostCopies(policy_.eviction);
}

std::vector<TransferChunk> Engine::HostDeviceChunks(const ModelState& m, ModelId id, Bytes begin, Bytes end,
                                                    Bytes window, BufferId device_buffer, DeviceSide device_side,
                                                    Direction direction) const {
  std::vector<TransferChunk> chunks;
  for (Bytes off = begin; off < end;) {
    TransferChunk c;
    c.model = id;
    c.bytes = std::min(window, end - off);
    c.host_buffer = m.host_buffer;
    c.host_offset = off;
    c.host_pinned = m.host_pinned;
    c.has_copy = true;
    c.to_device = direction == Direction::kToDevice;
    c.device_buffer = device_buffer;
    c.device_offset = device_side == DeviceSide::kAtZero ? 0 : off;
    chunks.push_back(c);
    off += c.bytes;
  }
  return chunks;
}

Command Engine::FreeHostCommand(const ModelState& m, ModelId id) const {
  Command c = Make(m.host_mapped ? CommandKind::kUnmapFile : CommandKind::kFreeHost, id);
  c.buffer = m.host_buffer;
  c.bytes = m.host_bytes;
  return c;
}

BufferId Engine::AllocHostSteps(ModelId id, Bytes bytes, bool pin, bool staging) {
  const BufferId buffer = NewBuffer();
  Command alloc = Make(CommandKind::kAllocHost, id);
  alloc.buffer = buffer;
  alloc.bytes = bytes;
  alloc.staging = staging;
  Batch({alloc});
  if (pin) {
    if (policy_.prefault_before_pin) {
      Command prefault = Make(CommandKind::kPrefault, id);
      prefault.buffer = buffer;
      prefault.bytes = bytes;
      Batch({prefault});
    }
    Command lock = Make(CommandKind::kPin, id);
    lock.buffer = buffer;
    lock.bytes = bytes;
    lock.pinned = true;
    Batch({lock});
  }
  return buffer;
}

Status Engine::EnsureStagingRing(Outbox& out, Bytes same_pool) {
  if (ring_planned_) return Status::Ok();
  const Bytes slot = policy_.staging_bytes;
  const Bytes total = slot * policy_.staging_buffers;
  RESIDENCY_RETURN_IF_ERROR(MakeHostRoom(total + (budgets_.unified ? same_pool : 0), {}, out));
  ring_planned_ = true;
  std::vector<StagingRing::Slot> slots;
  for (int i = 0; i < policy_.staging_buffers; ++i) {
    // The classic loaders copy from pageable memory; only the threaded one pins.
    bool pin = policy_.loader == LoaderKind::kThreadedPinned && PinRoom(slot, {}, out);
    if (policy_.loader == LoaderKind::kThreadedPinned && !pin)
      Note(out, NoticeKind::kPinFallback, 0, Tier::kHost, EvictReason::kPinBudget, slot);
    slots.push_back({AllocHostSteps(0, slot, pin, true), pin, false});
  }
  ring_.Reset(std::move(slots), slot);
  // If this op fails, the ring goes with it: some of its allocations or pins
  // may never have been issued, and a later op must not read into them.
  OnFail([this](Outbox&) {
    std::vector<Command> frees;
    for (const StagingRing::Slot& s : ring_.slots()) {
      Command c = Make(CommandKind::kFreeHost, 0);
      c.buffer = s.buffer;
      c.bytes = ring_.slot_bytes();
      c.staging = true;
      frees.push_back(c);
    }
    Batch(std::move(frees));
    ring_.Reset({}, 0);
    ring_planned_ = false;
  });
  return Status::Ok();
}

std::vector<TransferChunk> Engine::FileWindows(const ModelState& m, ModelId id, const WindowPlan& plan) {
  std::vector<TransferChunk> chunks;
  const ReadMode mode = policy_.direct_io ? ReadMode::kDirect : ReadMode::kBuffered;
  Bytes model_offset = 0;
  for (FileId file : m.files) {
    const Bytes file_bytes = files_[file].bytes;
    for (Bytes off = 0; off < file_bytes;) {
      Bytes len = std::min(plan.window, file_bytes - off);
      const Bytes mo = model_offset + off;
      if (mo < plan.device_limit) len = std::min(len, plan.device_limit - mo);  // split at the limit
      if (plan.staging && mo >= plan.device_limit) break;  // nothing to keep beyond the device part
      TransferChunk c;
      c.model = id;
      c.bytes = len;
      c.has_read = true;
      c.file = file;
      c.file_offset = off;
      c.read_mode = mode;
      c.host_buffer = plan.host_buffer;
      c.host_offset = mo;
      c.host_pinned = plan.host_pinned;
      c.staging = plan.staging;
      c.has_copy = mo < plan.device_limit;
      c.device_buffer = plan.device_buffer;
      c.device_offset = mo;
      chunks.push_back(c);
      off += len;
    }
    model_offset += file_bytes;
  }
  return chunks;
}

Status Engine::PlanTransfer(ModelId id, Outbox& out) {
  ModelState& m = *Find(id);
  const bool from_host = m.host_valid && m.host_buffer && !m.host_mapped;
  const bool from_spill = !from_host && m.spilled;
  const bool keep_host = WantsHostCopy(m);
  const bool via_ring = (!from_host && !from_spill && !keep_host &&
                         policy_.loader == LoaderKind::kThreadedPinned);
  if ((via_ring || !m.patches.empty()) && !ring_planned_) {
    // Unified: the device allocation that follows shares the pool (found by
    // the property tests; traces/regressions/unified-ring-plus-device).
    RESIDENCY_RETURN_IF_ERROR(EnsureStagingRing(out, m.device_target));
    Then([this, id](Outbox& o) { return PlanTransfer(id, o); });
    return Status::Ok();
  }
  const bool needs_host_buffer =
      !from_host && (from_spill || (keep_host && policy_.loader != LoaderKind::kMmapPageable) ||
                     (!keep_host && policy_.loader == LoaderKind::kReadInto));
  if (needs_host_buffer) {
    // On unified memory the device allocation below comes out of the same
    // pool as this host buffer: make room for both, or the pair overshoots
    // the pool (found by the property tests; traces/regressions/
    // unified-read-into-double-residency).
    const Bytes same_pool = budgets_.unified ? m.device_target : 0;
    RESIDENCY_RETURN_IF_ERROR(MakeHostRoom(m.bytes + same_pool, {id}, out));
  }

  const BufferId device = NewBuffer();
  Command alloc = Make(CommandKind::kAllocDevice, id);
  alloc.device_buffer = device;
  alloc.bytes = m.device_target;
  Batch({alloc});
  m.device_buffer = device;
  m.device_bytes = m.device_target;
  m.device_valid = false;
  OnFail([this, id](Outbox&) {
    ModelState& mm = *Find(id);
    if (mm.device_buffer) {
      Command c = Make(CommandKind::kFreeDevice, id);
      c.device_buffer = mm.device_buffer;
      c.bytes = mm.device_bytes;
      Batch({c});
    }
    mm.device_buffer = 0;
    mm.device_bytes = 0;
    mm.device_valid = false;
  });
  Note(out, NoticeKind::kLoadStarted, id, Tier::kDevice, EvictReason::kDevicePressure,
       m.device_target);
  bool dirty_source = false;
  if (from_host) {
    Note(out, NoticeKind::kRamCacheHit, id, m.host_pinned ? Tier::kPinned : Tier::kHost,
         EvictReason::kDevicePressure, m.host_bytes);
    dirty_source = m.host_dirty;
    PlanFromHost(id);
  } else if (from_spill) {
    Note(out, NoticeKind::kSpillLoad, id, Tier::kDisk, EvictReason::kDevicePressure, m.bytes);
    dirty_source = true;
    RESIDENCY_RETURN_IF_ERROR(PlanFromSpill(id, out));
  } else {
    Note(out, NoticeKind::kDiskLoad, id, Tier::kDisk, EvictReason::kDevicePressure, m.bytes);
    RESIDENCY_RETURN_IF_ERROR(PlanFromFile(id, keep_host, out));
  }
  const bool from_file = !from_host && !from_spill;
  OnFail([this, id, from_file](Outbox&) {
    ModelState& mm = *Find(id);
    if (mm.host_buffer && !mm.host_valid) {  // a complete copy stays cached
      Batch({FreeHostCommand(mm, id)});
      mm.host_buffer = 0;
      mm.host_bytes = 0;
      mm.host_pinned = mm.host_mapped = mm.host_dirty = false;
    }
    // A failed read leaves its pages cached, mapping or not; on unified
    // memory they go with the load (found by the property tests with
    // injected failures: a DGX Spark's next allocation failed on them).
    if (from_file && (policy_.drop_page_cache_after_load || budgets_.unified) && !mm.host_mapped)
      DropPageCache(id);
  });
  if (!m.patches.empty() && !dirty_source) RESIDENCY_RETURN_IF_ERROR(PlanPatchApply(id, out));
  Then([this, id, from_file](Outbox& o) {
    // Unified memory: a device allocation cannot reclaim the page cache
    // (DGX Spark), so the file's cached pages are dropped after every load.
    if (from_file && (policy_.drop_page_cache_after_load || (budgets_.unified && !HoldsMapping())))
      DropPageCache(id);
    return FinishLoad(id, o);
  });
  return Status::Ok();
}

void Engine::DropPageCache(ModelId id) {
  std::vector<Command> drops;
  for (FileId f : Find(id)->files) {
    Command c = Make(CommandKind::kDropPageCache, id);
    c.file = f;
    drops.push_back(c);
  }
  Batch(std::move(drops));
}

Status Engine::PlanFromFile(ModelId id, bool keep_host, Outbox& out) {
  ModelState& m = *Find(id);
  const Bytes target = m.device_target;
  if (policy_.loader == LoaderKind::kThreadedPinned) {
    if (!keep_host) {
      Pipe(FileWindows(m, id,
                       {.window = ring_.slot_bytes(),
                        .device_limit = target,
                        .device_buffer = m.device_buffer,
                        .staging = true}),
           ThreadedLimits());
      return Status::Ok();
    }
    const bool pin = PinRoom(m.bytes, {id}, out);
    if (!pin) Note(out, NoticeKind::kPinFallback, id, Tier::kHost, EvictReason::kPinBudget, m.bytes);
    m.host_buffer = AllocHostSteps(id, m.bytes, pin, false);
    m.host_bytes = m.bytes;
    m.host_pinned = pin;
    m.host_mapped = false;
    m.host_valid = false;
    Pipe(FileWindows(m, id,
                     {.window = policy_.staging_bytes,
                      .device_limit = target,
                      .device_buffer = m.device_buffer,
                      .host_buffer = m.host_buffer,
                      .host_pinned = pin}),
         ThreadedLimits());
    return Status::Ok();
  }
  // Per-tensor loaders: one read per tensor, then its copy, one at a time.
  const bool mapped = policy_.loader == LoaderKind::kMmapPageable;
  if (!m.host_buffer) {
    if (mapped) {
      m.host_buffer = NewBuffer();
      Command map = Make(CommandKind::kMapFile, id);
      map.buffer = m.host_buffer;
      map.bytes = m.bytes;
      Batch({map});
    } else {
      m.host_buffer = AllocHostSteps(id, m.bytes, false, false);
    }
    m.host_bytes = m.bytes;
    m.host_pinned = false;
    m.host_mapped = mapped;
    m.host_valid = false;
  }
  std::vector<TransferChunk> chunks;
  Bytes model_offset = 0;
  for (std::size_t f = 0; f < m.files.size(); ++f) {
    Bytes file_offset = 0;
    for (Bytes tensor : m.tensors[f]) {
      for (Bytes done = 0; done < tensor;) {
        const Bytes mo = model_offset + file_offset + done;
        Bytes len = tensor - done;
        if (mo < target) len = std::min(len, target - mo);
        const bool to_device = mo < target;
        if (!to_device && mapped) break;  // faulted later, when streamed
        TransferChunk c;
        c.model = id;
        c.bytes = len;
        c.has_read = true;
        c.file = m.files[f];
        c.file_offset = file_offset + done;
        c.read_mode = mapped ? ReadMode::kMapped : ReadMode::kBuffered;
        c.host_buffer = m.host_buffer;
        c.host_offset = mo;
        c.has_copy = to_device;
        c.device_buffer = m.device_buffer;
        c.device_offset = mo;
        chunks.push_back(c);
        done += len;
      }
      file_offset += tensor;
    }
    model_offset += files_[m.files[f]].bytes;
  }
  Pipe(std::move(chunks), {.reads_in_flight_max = 1,
                           .copies_in_flight_max = 1,
                           .read_bytes_max = std::numeric_limits<Bytes>::max(),
                           .serial = true});
  return Status::Ok();
}

void Engine::PlanFromHost(ModelId id) {
  const ModelState& m = *Find(id);
  Pipe(HostDeviceChunks(m, id, 0, m.device_target, policy_.staging_bytes, m.device_buffer, DeviceSide::kSameOffsets,
                        Direction::kToDevice),
       {.reads_in_flight_max = 1, .copies_in_flight_max = 2, .read_bytes_max = policy_.staging_bytes});
}

FileId Engine::SpillFile(ModelId id) {
  ModelState& m = *Find(id);
  if (m.spill_file == 0 || !files_[m.spill_file].scratch) {
    m.spill_file = static_cast<FileId>(files_.size());
    files_.push_back({"scratch/" + m.name + ".spill", m.bytes, true});
  }
  return m.spill_file;
}

Status Engine::PlanFromSpill(ModelId id, Outbox& out) {
  (void)out;
  ModelState& m = *Find(id);
  // A stale copy (the file mapping of an mmap-loaded model) goes first, or
  // it leaks (found by the property tests; traces/regressions/
  // spill-reload-leaks-mapping).
  if (m.host_buffer) Batch({FreeHostCommand(m, id)});
  m.host_buffer = AllocHostSteps(id, m.bytes, false, false);
  m.host_bytes = m.bytes;
  m.host_pinned = m.host_mapped = false;
  m.host_valid = false;
  std::vector<TransferChunk> chunks;
  TransferChunk whole;
  whole.model = id;
  whole.bytes = m.bytes;
  whole.has_read = true;
  whole.spill_read = true;
  whole.file = m.spill_file;
  whole.host_buffer = m.host_buffer;
  chunks.push_back(whole);
  // Copies wait for the whole read: the pipeline issues copies in chunk order.
  for (const TransferChunk& c : HostDeviceChunks(m, id, 0, m.device_target, policy_.staging_bytes, m.device_buffer,
                                                 DeviceSide::kSameOffsets, Direction::kToDevice))
    chunks.push_back(c);
  Pipe(std::move(chunks), {.reads_in_flight_max = 1, .copies_in_flight_max = 2, .read_bytes_max = m.bytes});
  Then([this, id](Outbox&) {
    ModelState& mm = *Find(id);
    // The scratch copy stays valid until a new patch makes it stale, so a
    // later eviction of these same weights needs no second write.
    mm.host_valid = true;
    mm.host_dirty = true;
    return Status::Ok();
  });
  return Status::Ok();
}

Status Engine::PlanPatchApply(ModelId id, Outbox& out) {
  if (!ring_planned_) {
    RESIDENCY_RETURN_IF_ERROR(EnsureStagingRing(out));
    Then([this, id](Outbox& o) { return PlanPatchApply(id, o); });
    return Status::Ok();
  }
  const ModelState& m = *Find(id);
  const Bytes window = std::max<Bytes>(1, std::min(ring_.slot_bytes(), m.device_bytes));
  std::vector<TransferChunk> chunks;
  for (ModelId p : m.patches) {
    const ModelState& patch = *Find(p);
    if (m.device_bytes < ring_.slot_bytes()) {
      // A device part smaller than a staging slot (--novram, a 1-byte partial
      // load): only the patch bytes that land in it are copied; the rest is
      // applied as the weights stream. Wrapping them through a window of a
      // few bytes made billions of chunks (found with load_mode novram).
      for (const TransferChunk& c : FileWindows(patch, id,
                                                {.window = ring_.slot_bytes(),
                                                 .device_limit = m.device_bytes,
                                                 .device_buffer = m.device_buffer,
                                                 .staging = true}))
        chunks.push_back(c);
      continue;
    }
    // Patch bytes land in the device copy they modify (offset 0 onward, wrapping).
    for (TransferChunk c : FileWindows(patch, id,
                                       {.window = window,
                                       .device_limit = std::numeric_limits<Bytes>::max(),
                                       .device_buffer = m.device_buffer,
                                       .staging = true})) {
      c.device_offset = c.device_offset % std::max<Bytes>(1, m.device_bytes - c.bytes + 1);
      chunks.push_back(c);
    }
  }
  Pipe(std::move(chunks), ThreadedLimits());
  // Patch files fill the page cache like any read; on unified memory it must
  // go (found by the property tests; traces/regressions/unified-patch-page-cache).
  if (policy_.drop_page_cache_after_load || budgets_.unified) {
    std::vector<Command> drops;
    for (ModelId p : m.patches)
      for (FileId f : Find(p)->files) {
        Command c = Make(CommandKind::kDropPageCache, p);
        c.file = f;
        drops.push_back(c);
      }
    Batch(std::move(drops));
  }
  return Status::Ok();
}

void Engine::PlanStream(const ModelState& m, ModelId id, BufferId stream_buffer, Bytes window) {
  std::vector<TransferChunk> chunks;
  if (m.host_mapped) {
    // Stream straight from the mapping: each window faults its pages in.
    Bytes model_offset = 0;
    for (FileId f : m.files) {
      const Bytes file_bytes = files_[f].bytes;
      for (Bytes off = 0; off < file_bytes;) {
        const Bytes mo = model_offset + off;
        if (mo < m.device_bytes) {
          // The resident part in one step: the window may be as small as the
          // streamed remainder (1 byte of a 7 GB model took 10^10 steps; found
          // replaying an imported log, bench/import_corpus_table.py).
          off += std::min(file_bytes - off, m.device_bytes - mo);
          continue;
        }
        TransferChunk c;
        c.model = id;
        c.bytes = std::min(window, file_bytes - off);
        c.has_read = true;
        c.file = f;
        c.file_offset = off;
        c.read_mode = ReadMode::kMapped;
        c.host_buffer = m.host_buffer;
        c.host_offset = mo;
        c.has_copy = true;
        c.device_buffer = stream_buffer;
        chunks.push_back(c);
        off += c.bytes;
      }
      model_offset += file_bytes;
    }
    Pipe(std::move(chunks), {.reads_in_flight_max = 1,
                             .copies_in_flight_max = 1,
                             .read_bytes_max = std::numeric_limits<Bytes>::max(),
                             .serial = true});
    return;
  }
  Pipe(HostDeviceChunks(m, id, m.device_bytes, m.bytes, window, stream_buffer, DeviceSide::kAtZero,
                        Direction::kToDevice),
       {.reads_in_flight_max = 1, .copies_in_flight_max = 1, .read_bytes_max = window});
}

Status Engine::FinishLoad(ModelId id, Outbox& out) {
  ModelState& m = *Find(id);
  m.device_valid = true;
  m.device_dirty = !m.patches.empty();
  if (m.host_buffer) m.host_valid = true;
  Touch(m);
  Note(out, NoticeKind::kLoadFinished, id, Tier::kDevice, EvictReason::kDevicePressure,
       m.device_bytes);
  if (m.host_buffer && !WantsHostCopy(m)) EvictHost(id, EvictReason::kNotCached, out);
  EnforceCacheBudget({}, out);
  return Status::Ok();
}

}  // namespace residency::engine
