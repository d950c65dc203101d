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
      case OpKind::kLoad: return DoRequestedLoad(op, out);
      case OpKind::kCompute: return DoCompute(op, out);
      case OpKind::kRelease: return DoRelease(op.model, out);
      case OpKind::kDelete: return DoDelete(op.model, out);
      case OpKind::kPatch: return DoPatch(op, out);
      case OpKind::kPromptEnd: return DoPromptEnd(out);
      case OpKind::kPromptBegin:
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

void Engine::Note(Outbox& out, NoticeKind kind, ModelId id, Tier tier, EvictReason reason,
                  Bytes bytes) {
  out.notices.push_back({kind, id, tier, reason, bytes});
}

void Engine::Batch(std::vector<Command> batch) {
  if (batch.empty()) return;
  for (const Command& c : batch) ledger_.Stage(c);
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
      if (!front.companions_issued) {
        front.companions_issued = true;
        for (Command& c : front.companions) {
          ledger_.Unhold(c);
          if (const CommandId id = Issue(std::move(c), out)) front.companions_waiting.push_back(id);
        }
        front.companions.clear();
      }
      std::vector<Command> cmds;
      front.pipeline->Pump(ids_, ring_, cmds);
      for (Command& c : cmds) {
        const CommandId id = c.id;
        const std::size_t faults = faults_.size();
        if (!Issue(std::move(c), out))
          front.pipeline->OnComplete(
              {id, faults_.size() > faults ? Internal("engine fault: " + faults_.back()) : Status::Ok()}, ring_);
      }
      if (!front.pipeline->Done() || !front.companions_waiting.empty()) return;
      Status st = front.pipeline->status();
      t.steps.pop_front();
      if (st.ok() && !t.status.ok()) st = t.status;  // a companion failed
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
      ledger_.Unhold(c);
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
  for (Step& s : t.steps) {
    for (Command& c : s.companions) ledger_.Discard(c);  // never issued: compute, no buffers
    for (Command& c : s.batch) {
      if (c.kind == CommandKind::kFreeHost || c.kind == CommandKind::kUnmapFile ||
          c.kind == CommandKind::kFreeDevice || c.kind == CommandKind::kUnpin ||
          c.kind == CommandKind::kAdoptHost) {
        releases.push_back(std::move(c));
        continue;
      }
      // Its allocation never happens: the undo hooks' free of it is moot.
      ledger_.Discard(c);
    }
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
    ledger_.Unhold(c);
    Issue(std::move(c), out);
  }
  for (Step& s : staged_steps_) {
    for (Command& c : s.batch) {
      ledger_.Unhold(c);
      Issue(std::move(c), out);
    }
  }
  staged_steps_.clear();
}

CommandId Engine::Issue(Command cmd, Outbox& out, BufferLedger::Route route) {
  if (cmd.id == 0) cmd.id = ids_.Take();  // pipelines number their own commands
  // A command on a buffer that is gone is never sent: it is a fault of the
  // engine's own bookkeeping, reported by CheckInvariants, and the op fails
  // with a typed error instead of the process throwing or aborting.
  const BufferLedger::Issued issued = ledger_.Issue(cmd, route);
  if (!issued.fault.empty()) faults_.push_back(issued.fault);
  if (!issued.send) return 0;
  inflight_.emplace(cmd.id, Inflight{cmd.kind, cmd.buffer, cmd.device_buffer, cmd.model});
  out.commands.push_back(std::move(cmd));
  return out.commands.back().id;
}

void Engine::Complete(const Completion& completion, Outbox& out) {
  auto it = inflight_.find(completion.id);
  if (it == inflight_.end()) return;  // unknown or duplicate: ignored, never fatal
  const Inflight f = it->second;
  inflight_.erase(it);
  ledger_.Settle(f.kind, f.buffer, f.device_buffer);
  if (f.kind == CommandKind::kRunFinalizer) {
    if (ModelState* m = Find(f.model)) {
      ++m->finalizer_runs;
      out.notices.push_back({NoticeKind::kFinalized, f.model, Tier::kDisk, EvictReason::kDeleted, m->bytes});
    }
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
      Step& front = t.steps.front();
      auto c = std::find(front.companions_waiting.begin(), front.companions_waiting.end(), completion.id);
      if (c != front.companions_waiting.end()) {
        front.companions_waiting.erase(c);
        if (!completion.status.ok() && t.status.ok()) t.status = completion.status;
      } else {
        front.pipeline->OnComplete(completion, ring_);
      }
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
  for (std::string& problem : ledger_.Check(budgets_)) v.push_back(std::move(problem));
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
