// Task machinery, command accounting, completions and invariants.
#include "runtime/engine/engine.h"

#include <algorithm>
#include <utility>

#include "runtime/engine/check.h"

namespace residency::engine {

Result<std::unique_ptr<Engine>> Engine::Create(const MachineLimits& machine,
                                               const Policy& policy) {
  RESIDENCY_RETURN_IF_ERROR(ValidateMachine(machine));
  RESIDENCY_RETURN_IF_ERROR(ValidatePolicy(policy));
  return std::unique_ptr<Engine>(new Engine(machine, policy));
}

Engine::Engine(const MachineLimits& machine, const Policy& policy)
    : machine_(machine), policy_(policy), budgets_(ComputeBudgets(machine, policy)) {}

Engine::ModelState* Engine::Find(ModelId id) {
  auto it = models_.find(id);
  return it == models_.end() ? nullptr : &it->second;
}

const Engine::ModelState* Engine::Find(ModelId id) const {
  auto it = models_.find(id);
  return it == models_.end() ? nullptr : &it->second;
}

void Engine::Touch(ModelState& m) {
  m.last_use = ++tick_;
  m.gds_priority = gds_inflation_ + ReloadCostPerMiB(m);
}

std::string Engine::DescribeOutstanding() const {
  std::string s = std::to_string(queue_.size()) + " ops queued, " +
                  std::to_string(inflight_.size()) + " commands in flight";
  if (task_) {
    s += ", running op " + std::to_string(task_->op.id) + " (" +
         std::string(ToString(task_->op.kind)) + ") with " +
         std::to_string(task_->steps.size()) + " steps and " +
         std::to_string(task_->waiting.size()) + " awaited commands";
  }
  for (const auto& [id, f] : inflight_) {
    s += "; #" + std::to_string(id) + " " + std::string(ToString(f.kind));
    break;
  }
  return s;
}

bool Engine::Idle() const { return !task_ && queue_.empty() && inflight_.empty(); }

void Engine::Submit(const Op& op, Outbox& out) {
  queue_.push_back(op);
  Advance(out);
}

void Engine::StartTask(const Op& op) {
  task_.emplace();
  task_->op = op;
  Then([this, op](Outbox& out) -> Status {
    switch (op.kind) {
      case OpKind::kRegisterModel: return DoRegister(op);
      case OpKind::kLoad: return DoLoad(op.model, op.mode, op.device_bytes, true, out);
      case OpKind::kCompute: return DoCompute(op, out);
      case OpKind::kRelease: return DoRelease(op.model, out);
      case OpKind::kDelete: return DoDelete(op.model, out);
      case OpKind::kPatch: return DoPatch(op, out);
      case OpKind::kPromptBegin:
      case OpKind::kPromptEnd:
      case OpKind::kNote: return Status::Ok();
    }
    return InvalidArgument("unknown op kind");
  });
  // Then() stages into staged_steps_; move them into the new task.
  for (Step& s : staged_steps_) task_->steps.push_back(std::move(s));
  staged_steps_.clear();
}

void Engine::Then(std::function<Status(Outbox&)> fn) {
  Step s;
  s.then = std::move(fn);
  staged_steps_.push_back(std::move(s));
}

void Engine::PendingDelta(const Command& cmd, int sign) {
  switch (cmd.kind) {
    case CommandKind::kAllocHost: pending_.host_alloc += sign * cmd.bytes; break;
    case CommandKind::kFreeHost: pending_.host_free += sign * cmd.bytes; break;
    case CommandKind::kAllocDevice: pending_.device_alloc += sign * cmd.bytes; break;
    case CommandKind::kFreeDevice: pending_.device_free += sign * cmd.bytes; break;
    case CommandKind::kPin: pending_.pin_alloc += sign * cmd.bytes; break;
    case CommandKind::kUnpin: pending_.pin_free += sign * cmd.bytes; break;
    default: break;
  }
}

void Engine::StagedRefs(const Command& cmd, int sign) {
  for (BufferId b : {cmd.buffer, cmd.device_buffer}) {
    if (!b) continue;
    if ((staged_refs_[b] += sign) <= 0) staged_refs_.erase(b);
  }
}

void Engine::Note(Outbox& out, NoticeKind kind, ModelId id, Tier tier, EvictReason reason,
                  Bytes bytes) {
  out.notices.push_back({kind, id, tier, reason, bytes});
}

void Engine::Batch(std::vector<Command> batch) {
  if (batch.empty()) return;
  for (const Command& c : batch) {
    PendingDelta(c, +1);
    StagedRefs(c, +1);
  }
  Step s;
  s.batch = std::move(batch);
  staged_steps_.push_back(std::move(s));
}

void Engine::Pipe(std::vector<TransferChunk> chunks, PipelineLimits limits) {
  if (chunks.empty()) return;
  Step s;
  s.pipeline = std::make_unique<TransferPipeline>(std::move(chunks), limits);
  staged_steps_.push_back(std::move(s));
}

Command Engine::Make(CommandKind kind, ModelId model) const {
  Command c;
  c.kind = kind;
  c.model = model;
  return c;
}

void Engine::Advance(Outbox& out) {
  for (;;) {
    if (!task_) {
      if (queue_.empty()) return;
      StartTask(queue_.front());
      queue_.pop_front();
    }
    Task& t = *task_;
    if (!t.waiting.empty()) return;
    if (t.steps.empty()) {
      // Every op, whichever way it ended, leaves the RAM cache within its
      // budget: a copy stops being needed (a streamed model now resident, a
      // failed op's model) without a load finishing (found by the property
      // tests; traces/regressions/cache-over-budget-after-op).
      if (!t.cache_trimmed) {
        t.cache_trimmed = true;
        EnforceCacheBudget({}, out);
        for (auto it = staged_steps_.rbegin(); it != staged_steps_.rend(); ++it)
          t.steps.push_front(std::move(*it));
        staged_steps_.clear();
        if (!t.steps.empty()) continue;
      }
      out.finished.push_back({t.op.id, t.op.kind, t.status});
      task_.reset();
      continue;
    }
    Step& front = t.steps.front();
    if (front.pipeline) {
      std::vector<Command> cmds;
      front.pipeline->Pump(ids_, ring_, cmds);
      for (Command& c : cmds) {
        const CommandId id = c.id;
        const std::size_t faults = faults_.size();
        if (!Issue(std::move(c), out))
          front.pipeline->OnComplete(
              {id, faults_.size() > faults ? Internal("engine fault: " + faults_.back()) : Status::Ok()}, ring_);
      }
      if (!front.pipeline->Done()) return;
      Status st = front.pipeline->status();
      t.steps.pop_front();
      if (!st.ok()) FailTask(std::move(st), out);
      continue;
    }
    if (front.then) {
      auto fn = std::move(front.then);
      t.steps.pop_front();
      Status st = fn(out);
      // Steps the function staged run next, before the rest.
      for (auto it = staged_steps_.rbegin(); it != staged_steps_.rend(); ++it)
        t.steps.push_front(std::move(*it));
      staged_steps_.clear();
      if (!st.ok()) FailTask(std::move(st), out);
      continue;
    }
    std::vector<Command> batch = std::move(front.batch);
    t.steps.pop_front();
    for (Command& c : batch) {
      StagedRefs(c, -1);
      const std::size_t faults = faults_.size();
      if (const CommandId id = Issue(std::move(c), out)) t.waiting.push_back(id);
      else if (faults_.size() > faults && t.status.ok()) t.status = Internal("engine fault: " + faults_.back());
    }
    if (t.waiting.empty() && !t.status.ok()) FailTask(t.status, out);
  }
}

void Engine::FailTask(Status status, Outbox& out) {
  Task& t = *task_;
  if (t.status.ok()) t.status = std::move(status);
  // Staged but never issued: take their pending bytes back. A release the op
  // had decided (a free or unpin of an evicted copy) still happens: the model
  // already forgot that buffer, so dropping the command would leak it (found
  // by the property tests with injected failures: a failed spill write lost
  // the evicted device copy's free).
  std::vector<Command> releases;
  for (Step& s : t.steps)
    for (Command& c : s.batch) {
      if (c.kind == CommandKind::kFreeHost || c.kind == CommandKind::kUnmapFile ||
          c.kind == CommandKind::kFreeDevice || c.kind == CommandKind::kUnpin ||
          c.kind == CommandKind::kAdoptHost) {
        releases.push_back(std::move(c));
        continue;
      }
      PendingDelta(c, -1);
      StagedRefs(c, -1);
      // Its allocation never happens: the undo hooks' free of it is moot.
      if (c.kind == CommandKind::kAllocHost || c.kind == CommandKind::kMapFile) never_allocated_.insert(c.buffer);
      if (c.kind == CommandKind::kAllocDevice) never_allocated_.insert(c.device_buffer);
    }
  t.steps.clear();
  // Undo hooks free what the failed op allocated; nothing is in flight now.
  auto hooks = std::move(t.on_fail);
  t.on_fail.clear();
  for (auto it = hooks.rbegin(); it != hooks.rend(); ++it) (*it)(out);
  // Decided releases go first (an unpin before an undo's free of the same
  // buffer). No undo hook frees what a decided release frees: the hooks free
  // what the op allocated, the releases what it evicted.
  for (Command& c : releases) {
    StagedRefs(c, -1);
    Issue(std::move(c), out);
  }
  for (Step& s : staged_steps_) {
    for (Command& c : s.batch) {
      StagedRefs(c, -1);
      Issue(std::move(c), out);
    }
  }
  staged_steps_.clear();
}

// The buffers a command acts on that must already exist (an allocation
// creates its own). None missing, or the first that is.
std::optional<BufferId> Engine::MissingBuffer(const Command& cmd) const {
  auto missing = [this](BufferId id) { return buffers_.find(id) == buffers_.end(); };
  switch (cmd.kind) {
    case CommandKind::kPin:
    case CommandKind::kUnpin:
    case CommandKind::kFreeHost:
    case CommandKind::kUnmapFile:
    case CommandKind::kPrefault:
    case CommandKind::kReadFile:
    case CommandKind::kSpillWrite:
    case CommandKind::kSpillRead:
    case CommandKind::kAdoptHost:
      if (missing(cmd.buffer)) return cmd.buffer;
      return std::nullopt;
    case CommandKind::kFreeDevice:
      if (missing(cmd.device_buffer)) return cmd.device_buffer;
      return std::nullopt;
    case CommandKind::kCopyToDevice:
    case CommandKind::kCopyToHost:
      if (missing(cmd.buffer)) return cmd.buffer;
      if (missing(cmd.device_buffer)) return cmd.device_buffer;
      return std::nullopt;
    default:
      return std::nullopt;
  }
}

CommandId Engine::Issue(Command cmd, Outbox& out) {
  if (cmd.id == 0) cmd.id = ids_.Take();  // pipelines number their own commands
  PendingDelta(cmd, -1);
  // The free of an allocation a failed op discarded before issuing it: nothing
  // to free, nothing to send.
  const bool frees = cmd.kind == CommandKind::kFreeHost || cmd.kind == CommandKind::kUnmapFile ||
                     cmd.kind == CommandKind::kFreeDevice;
  if (frees && never_allocated_.erase(cmd.kind == CommandKind::kFreeDevice ? cmd.device_buffer : cmd.buffer))
    return 0;
  // A command on a buffer that is gone is never sent: it is a fault of the
  // engine's own bookkeeping, reported by CheckInvariants, and the op fails
  // with a typed error instead of the process throwing or aborting.
  if (const std::optional<BufferId> gone = MissingBuffer(cmd)) {
    faults_.push_back(std::string(ToString(cmd.kind)) + " of model " + std::to_string(cmd.model) +
                      " names buffer " + std::to_string(*gone) + ", which does not exist");
    return 0;
  }
  Inflight f{cmd.kind, cmd.buffer, cmd.device_buffer, cmd.model};
  switch (cmd.kind) {
    case CommandKind::kAllocHost: {
      BufferState& b = buffers_[cmd.buffer];
      b.bytes = cmd.bytes;
      b.owner = cmd.model;
      b.staging = cmd.staging;
      acct_.pageable_bytes += cmd.bytes;
      if (cmd.staging) acct_.staging_bytes += cmd.bytes;
      break;
    }
    case CommandKind::kMapFile: {
      BufferState& b = buffers_[cmd.buffer];
      b.bytes = cmd.bytes;
      b.owner = cmd.model;
      b.mapped = true;
      acct_.mapped_bytes += cmd.bytes;
      break;
    }
    case CommandKind::kAllocDevice: {
      BufferState& b = buffers_[cmd.device_buffer];
      b.bytes = cmd.bytes;
      b.owner = cmd.model;
      b.device = true;
      b.activation = cmd.activation;
      acct_.device_bytes += cmd.bytes;
      if (b.activation) acct_.activation_bytes += cmd.bytes;
      break;
    }
    case CommandKind::kPin: {
      BufferState& b = buffers_.find(cmd.buffer)->second;
      RESIDENCY_CHECK(!b.pinned && !b.device && !b.mapped);
      b.pinned = true;
      acct_.pageable_bytes -= b.bytes;
      acct_.pinned_bytes += b.bytes;
      ++b.inflight;
      break;
    }
    case CommandKind::kUnpin: {
      BufferState& b = buffers_.find(cmd.buffer)->second;
      RESIDENCY_CHECK(b.pinned && b.inflight == 0);
      b.pinned = false;
      acct_.pinned_bytes -= b.bytes;
      acct_.pageable_bytes += b.bytes;
      break;
    }
    case CommandKind::kFreeHost:
    case CommandKind::kUnmapFile: {
      auto it = buffers_.find(cmd.buffer);
      const BufferState& b = it->second;
      RESIDENCY_CHECK_MSG(b.inflight == 0, "freeing a host buffer with a command in flight");
      if (b.mapped) acct_.mapped_bytes -= b.bytes;
      else if (b.pinned) acct_.pinned_bytes -= b.bytes;
      else acct_.pageable_bytes -= b.bytes;
      if (b.staging) acct_.staging_bytes -= b.bytes;
      buffers_.erase(it);
      break;
    }
    case CommandKind::kFreeDevice: {
      auto it = buffers_.find(cmd.device_buffer);
      const BufferState& b = it->second;
      RESIDENCY_CHECK_MSG(b.inflight == 0, "freeing a device buffer with a command in flight");
      acct_.device_bytes -= b.bytes;
      if (b.activation) acct_.activation_bytes -= b.bytes;
      buffers_.erase(it);
      break;
    }
    case CommandKind::kPrefault:
    case CommandKind::kReadFile:
    case CommandKind::kSpillWrite:
    case CommandKind::kSpillRead:
      ++buffers_.find(cmd.buffer)->second.inflight;
      break;
    case CommandKind::kCopyToDevice:
    case CommandKind::kCopyToHost:
      ++buffers_.find(cmd.buffer)->second.inflight;
      ++buffers_.find(cmd.device_buffer)->second.inflight;
      break;
    case CommandKind::kDropPageCache:
    case CommandKind::kCompute:
    case CommandKind::kRunFinalizer:
      break;
    case CommandKind::kAdoptHost:
      buffers_.find(cmd.buffer)->second.owner = cmd.model;
      break;
  }
  inflight_.emplace(cmd.id, f);
  out.commands.push_back(std::move(cmd));
  return out.commands.back().id;
}

void Engine::Complete(const Completion& completion, Outbox& out) {
  auto it = inflight_.find(completion.id);
  if (it == inflight_.end()) return;  // unknown or duplicate: ignored, never fatal
  const Inflight f = it->second;
  inflight_.erase(it);
  auto release = [this](BufferId id) {
    auto b = buffers_.find(id);
    if (b != buffers_.end() && b->second.inflight > 0) --b->second.inflight;
  };
  switch (f.kind) {
    case CommandKind::kPin:
    case CommandKind::kPrefault:
    case CommandKind::kReadFile:
    case CommandKind::kSpillWrite:
    case CommandKind::kSpillRead:
      release(f.buffer);
      break;
    case CommandKind::kCopyToDevice:
    case CommandKind::kCopyToHost:
      release(f.buffer);
      release(f.device_buffer);
      break;
    case CommandKind::kRunFinalizer:
      if (ModelState* m = Find(f.model)) {
        ++m->finalizer_runs;
        out.notices.push_back({NoticeKind::kFinalized, f.model, Tier::kDisk,
                               EvictReason::kDeleted, m->bytes});
      }
      break;
    default:
      break;
  }
  if (task_) {
    Task& t = *task_;
    auto w = std::find(t.waiting.begin(), t.waiting.end(), completion.id);
    if (w != t.waiting.end()) {
      t.waiting.erase(w);
      if (!completion.status.ok() && t.status.ok()) {
        if (!t.waiting.empty()) {
          t.status = completion.status;  // fail once the batch drains
        } else {
          FailTask(completion.status, out);
        }
      } else if (t.waiting.empty() && !t.status.ok()) {
        FailTask(t.status, out);
      }
    } else if (!t.steps.empty() && t.steps.front().pipeline) {
      t.steps.front().pipeline->OnComplete(completion, ring_);
    }
  }
  Advance(out);
}

std::vector<ModelView> Engine::Models() const {
  std::vector<ModelView> views;
  for (const auto& [id, m] : models_) {
    ModelView v;
    v.id = id;
    v.name = m.name;
    v.bytes = m.bytes;
    v.handles = m.handles;
    v.active = m.active;
    v.deleted = m.deleted;
    v.finalizer_runs = m.finalizer_runs;
    v.device_bytes = m.device_buffer ? m.device_bytes : 0;
    v.device_valid = m.device_valid;
    v.host_bytes = m.host_buffer ? m.host_bytes : 0;
    v.host_pinned = m.host_pinned;
    v.host_mapped = m.host_mapped;
    v.host_valid = m.host_valid;
    v.dirty = m.device_dirty || m.host_dirty || m.spilled;
    v.spilled = m.spilled;
    views.push_back(std::move(v));
  }
  return views;
}

Bytes Engine::RamCacheBytes() const {
  Bytes total = 0;
  for (const auto& [id, m] : models_) {
    if (!m.host_buffer || m.host_mapped) continue;
    const bool needed = m.handles > 0 && StreamsFromHost(m) && m.device_valid;
    if (!needed && !m.active) total += m.host_bytes;
  }
  return total;
}

std::vector<std::string> Engine::CheckInvariants() const {
  std::vector<std::string> v;
  for (const std::string& f : faults_) v.push_back("engine fault: " + f);
  auto num = [](Bytes b) { return std::to_string(b); };
  // Counters never negative and equal to the sum of what is held.
  Accounting sum;
  for (const auto& [id, b] : buffers_) {
    if (b.device) {
      sum.device_bytes += b.bytes;
      if (b.activation) sum.activation_bytes += b.bytes;
    } else if (b.mapped) {
      sum.mapped_bytes += b.bytes;
    } else if (b.pinned) {
      sum.pinned_bytes += b.bytes;
    } else {
      sum.pageable_bytes += b.bytes;
    }
    if (b.staging && !b.device) sum.staging_bytes += b.bytes;
    if (b.inflight < 0) v.push_back("buffer " + std::to_string(id) + " has negative in-flight count");
  }
  auto drift = [&](const char* name, Bytes counter, Bytes held) {
    if (counter < 0) v.push_back(std::string(name) + " counter is negative: " + num(counter));
    if (counter != held)
      v.push_back(std::string(name) + " counter " + num(counter) + " drifted from held " + num(held));
  };
  drift("pageable", acct_.pageable_bytes, sum.pageable_bytes);
  drift("pinned", acct_.pinned_bytes, sum.pinned_bytes);
  drift("device", acct_.device_bytes, sum.device_bytes);
  drift("activation", acct_.activation_bytes, sum.activation_bytes);
  drift("mapped", acct_.mapped_bytes, sum.mapped_bytes);
  drift("staging", acct_.staging_bytes, sum.staging_bytes);
  if (acct_.pinned_bytes > budgets_.pin_budget_bytes)
    v.push_back("pinned " + num(acct_.pinned_bytes) + " exceeds pin budget " +
                num(budgets_.pin_budget_bytes));
  if (acct_.device_bytes > budgets_.device_limit_bytes)
    v.push_back("device " + num(acct_.device_bytes) + " exceeds device limit " +
                num(budgets_.device_limit_bytes));
  const Bytes host = acct_.host_bytes() + (budgets_.unified ? acct_.device_bytes : 0);
  if (host > budgets_.host_limit_bytes)
    v.push_back("host " + num(host) + " exceeds host limit " + num(budgets_.host_limit_bytes));
  if (Idle() && RamCacheBytes() > budgets_.ram_cache_bytes)
    v.push_back("RAM cache " + num(RamCacheBytes()) + " exceeds its budget " +
                num(budgets_.ram_cache_bytes));
  for (const auto& [id, m] : models_) {
    if (m.finalizer_runs > 1)
      v.push_back("model " + m.name + " finalized " + std::to_string(m.finalizer_runs) + " times");
    if (m.finalizer_runs > 0 && m.handles > 0)
      v.push_back("model " + m.name + " finalized with a live handle");
    if (m.finalizer_runs > 0 && (m.device_buffer || m.host_buffer))
      v.push_back("model " + m.name + " finalized while it still holds bytes");
    if (m.handles < 0) v.push_back("model " + m.name + " has a negative handle count");
    if (budgets_.unified && m.host_buffer && !m.host_mapped && m.device_valid && !m.active &&
        Idle())
      v.push_back("model " + m.name + " is resident twice in the unified pool");
  }
  return v;
}

}  // namespace residency::engine
