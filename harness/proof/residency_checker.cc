#include "harness/proof/residency_checker.h"

#include <algorithm>

namespace residency::proof {

using engine::Command;
using engine::CommandKind;

ResidencyChecker::ResidencyChecker(const engine::Workload& workload, const engine::Budgets& budgets,
                                   engine::LoadModeRule rule)
    : budgets_(budgets), rule_(rule) {
  for (const engine::Op& op : workload.ops) ops_[op.id] = op;
}

void ResidencyChecker::Violation(std::string what) {
  if (violations_.size() < 50 &&
      std::find(violations_.begin(), violations_.end(), what) == violations_.end())
    violations_.push_back(std::move(what));
}

void ResidencyChecker::Touch(engine::BufferId buffer, bool device, const Command& c) {
  if (buffer == 0) return;
  const bool live = device ? device_.count(buffer) > 0 : host_.count(buffer) > 0;
  if (!live)
    Violation("command " + std::to_string(c.id) + " (" + std::string(ToString(c.kind)) + ") uses " +
              (device ? "device" : "host") + " buffer " + std::to_string(buffer) +
              " that is not allocated (use after free)");
  ++inflight_[buffer];
}

void ResidencyChecker::OnCommand(const Command& c) {
  pending_[c.id] = c;
  switch (c.kind) {
    case CommandKind::kAllocHost:
    case CommandKind::kMapFile:
      if (host_.count(c.buffer)) Violation("host buffer " + std::to_string(c.buffer) + " allocated while still live");
      host_[c.buffer] = {c.bytes, 0, c.kind == CommandKind::kMapFile, c.model};
      break;
    case CommandKind::kFreeHost:
    case CommandKind::kUnmapFile:
      if (!host_.count(c.buffer)) Violation("host buffer " + std::to_string(c.buffer) + " freed twice or never allocated");
      if (inflight_[c.buffer] > 0)
        Violation("host buffer " + std::to_string(c.buffer) + " freed with " +
                  std::to_string(inflight_[c.buffer]) + " command(s) in flight");
      host_.erase(c.buffer);
      break;
    case CommandKind::kAllocDevice:
      if (device_.count(c.device_buffer)) Violation("device buffer " + std::to_string(c.device_buffer) + " allocated while still live");
      device_[c.device_buffer] = {c.bytes, c.model};
      if (c.activation) activations_.insert(c.device_buffer);
      break;
    case CommandKind::kFreeDevice:
      if (!device_.count(c.device_buffer)) Violation("device buffer " + std::to_string(c.device_buffer) + " freed twice or never allocated");
      if (inflight_[c.device_buffer] > 0)
        Violation("device buffer " + std::to_string(c.device_buffer) + " freed with " +
                  std::to_string(inflight_[c.device_buffer]) + " command(s) in flight");
      device_.erase(c.device_buffer);
      activations_.erase(c.device_buffer);
      break;
    case CommandKind::kPin:
      Touch(c.buffer, false, c);
      if (host_.count(c.buffer)) host_[c.buffer].pinned = c.bytes;
      break;
    case CommandKind::kAdoptHost:  // a host copy changes hands (a file-keyed RAM-cache entry)
      if (!host_.count(c.buffer)) Violation("host buffer " + std::to_string(c.buffer) + " adopted but not allocated");
      else host_[c.buffer].owner = c.model;
      break;
    case CommandKind::kUnpin:
      if (host_.count(c.buffer)) host_[c.buffer].pinned = 0;
      break;
    case CommandKind::kPrefault:
    case CommandKind::kReadFile:
    case CommandKind::kSpillWrite:
    case CommandKind::kSpillRead:
      Touch(c.buffer, false, c);
      break;
    case CommandKind::kCopyToDevice:
    case CommandKind::kCopyToHost:
      Touch(c.buffer, false, c);
      Touch(c.device_buffer, true, c);
      break;
    case CommandKind::kRunFinalizer: {
      const int runs = ++finalized_[c.model];
      if (runs > 1) Violation("model " + std::to_string(c.model) + " finalized " + std::to_string(runs) + " times");
      // The running op may be the release that drops the last handle, or the
      // delete itself: both issue the finalizer before they finish.
      const auto op = ops_.find(current_op_);
      const bool running = op != ops_.end() && op->second.model == c.model;
      const bool deleting = running && op->second.kind == engine::OpKind::kDelete;
      const int live = handles_[c.model] - (running && op->second.kind == engine::OpKind::kRelease ? 1 : 0);
      if (live > 0)
        Violation("model " + std::to_string(c.model) + " finalized with " + std::to_string(live) +
                  " live handle(s)");
      if (!deleted_.count(c.model) && !deleting)
        Violation("model " + std::to_string(c.model) + " finalized before its delete op");
      // Its last bytes are freed first: a finalizer may release the file or
      // the object the buffers came from.
      for (const auto& [id, b] : host_)
        if (b.owner == c.model)
          Violation("model " + std::to_string(c.model) + " finalized while it still holds host buffer " +
                    std::to_string(id) + " (the free must come first)");
      for (const auto& [id, d] : device_)
        if (d.second == c.model && !activations_.count(id))
          Violation("model " + std::to_string(c.model) + " finalized while it still holds device buffer " +
                    std::to_string(id) + " (the free must come first)");
      break;
    }
    case CommandKind::kCompute:
    case CommandKind::kDropPageCache:
      break;
  }
}

void ResidencyChecker::Completed(engine::CommandId id) {
  auto it = pending_.find(id);
  if (it == pending_.end()) {
    Violation("completion for unknown or already completed command " + std::to_string(id));
    return;
  }
  const Command& c = it->second;
  auto release = [&](engine::BufferId b) {
    if (b != 0 && inflight_.count(b) && --inflight_[b] == 0) inflight_.erase(b);
  };
  switch (c.kind) {
    case CommandKind::kPin:
    case CommandKind::kPrefault:
    case CommandKind::kReadFile:
    case CommandKind::kSpillWrite:
    case CommandKind::kSpillRead:
      release(c.buffer);
      break;
    case CommandKind::kCopyToDevice:
    case CommandKind::kCopyToHost:
      release(c.buffer);
      release(c.device_buffer);
      break;
    default:
      break;
  }
  pending_.erase(it);
}

void ResidencyChecker::OnNotice(const engine::Notice& n) {
  // A fully loaded model in use by the running compute keeps its device bytes.
  if (n.kind != engine::NoticeKind::kEvicted || n.tier != engine::Tier::kDevice) return;
  auto op = ops_.find(current_op_);
  if (op == ops_.end() || op->second.kind != engine::OpKind::kCompute) return;
  const auto& used = op->second.models;
  if (std::find(used.begin(), used.end(), n.model) != used.end() && handles_[n.model] > 0 &&
      mode_[n.model] == engine::LoadMode::kFull)
    Violation("op " + std::to_string(current_op_) + ": model " + std::to_string(n.model) +
              " evicted from the device while its compute runs (" + std::to_string(n.bytes) + " bytes)");
}

void ResidencyChecker::OnFinished(const engine::OpResult& r) {
  if (!finished_.insert(r.op).second) Violation("op " + std::to_string(r.op) + " finished twice");
  if (r.op != current_op_)
    Violation("op " + std::to_string(r.op) + " finished while op " + std::to_string(current_op_) +
              " was the one running");
  current_op_ = std::max(current_op_, r.op + 1);
  auto it = ops_.find(r.op);
  if (it == ops_.end()) return;
  const engine::Op& op = it->second;
  if (!r.status.ok()) {
    const StatusCode code = r.status.code();
    // INTERNAL and DATA_LOSS are what an executor reports for a command it
    // could not carry out (the property harness injects them); the engine's
    // own faults ("engine fault: ...") are violations of their own.
    const bool executor_failure = (code == StatusCode::kInternal || code == StatusCode::kDataLoss) &&
                                  r.status.message().rfind("engine fault", 0) != 0;
    if (code != StatusCode::kResourceExhausted && code != StatusCode::kFailedPrecondition &&
        code != StatusCode::kInvalidArgument && code != StatusCode::kNotFound && !executor_failure)
      Violation("op " + std::to_string(r.op) + " failed with unexpected " +
                std::string(ToString(code)) + ": " + r.status.message());
    if (code == StatusCode::kResourceExhausted && r.status.message().find("MiB") == std::string::npos)
      Violation("op " + std::to_string(r.op) + ": a RESOURCE_EXHAUSTED error must name the MiB: " +
                r.status.message());
    return;
  }
  if (op.kind == engine::OpKind::kLoad) {
    ++handles_[op.model];
    // The mode the policy's regime gives the load. A classic regime makes a
    // dynamic load full or partial by what is free, which the checker does
    // not track: it is taken as partial (no promise to check).
    engine::LoadMode mode = op.mode;
    if (rule_ == engine::LoadModeRule::kDynamic) mode = engine::LoadMode::kDynamic;
    if (rule_ == engine::LoadModeRule::kNoVram) mode = engine::LoadMode::kPartial;
    if (rule_ == engine::LoadModeRule::kClassic && mode == engine::LoadMode::kDynamic) mode = engine::LoadMode::kPartial;
    mode_[op.model] = mode;
  }
  if (op.kind == engine::OpKind::kRelease) --handles_[op.model];
  if (op.kind == engine::OpKind::kDelete) deleted_.insert(op.model);
}

void ResidencyChecker::CheckTotals(const engine::Engine& engine) {
  engine::Bytes host = 0, pinned = 0, device = 0, mapped = 0;
  for (const auto& [id, b] : host_) {
    (b.mapped ? mapped : host) += b.bytes;
    pinned += b.pinned;
  }
  for (const auto& [id, d] : device_) device += d.first;
  const engine::Accounting& a = engine.accounting();
  if (a.pinned_bytes != pinned)
    Violation("engine counts " + std::to_string(a.pinned_bytes) + " pinned bytes, buffers hold " +
              std::to_string(pinned) + " (counter drift)");
  if (a.host_bytes() != host)
    Violation("engine counts " + std::to_string(a.host_bytes()) + " host bytes, buffers hold " +
              std::to_string(host) + " (counter drift)");
  if (a.device_bytes != device)
    Violation("engine counts " + std::to_string(a.device_bytes) + " device bytes, buffers hold " +
              std::to_string(device) + " (counter drift)");
  if (pinned > budgets_.pin_budget_bytes)
    Violation("pinned " + std::to_string(pinned) + " exceeds the pin budget " + std::to_string(budgets_.pin_budget_bytes));
  if (budgets_.unified) {
    if (host + device > budgets_.host_limit_bytes)
      Violation("unified pool holds " + std::to_string(host + device) + " bytes, above its limit " +
                std::to_string(budgets_.host_limit_bytes));
  } else {
    if (device > budgets_.device_limit_bytes)
      Violation("device " + std::to_string(device) + " exceeds the device limit " + std::to_string(budgets_.device_limit_bytes));
    if (host > budgets_.host_limit_bytes)
      Violation("host " + std::to_string(host) + " exceeds the host limit " + std::to_string(budgets_.host_limit_bytes));
  }
  // The RAM cache budget holds at rest: a load may hold a host copy above it
  // until the load finishes and the cache is trimmed.
  if (engine.Idle() && engine.RamCacheBytes() > budgets_.ram_cache_bytes)
    Violation("RAM cache " + std::to_string(engine.RamCacheBytes()) + " exceeds its budget " +
              std::to_string(budgets_.ram_cache_bytes));
}

void ResidencyChecker::Observe(const engine::Engine& engine, const engine::Outbox& out) {
  // Notices describe the op that was running; ops finished in this outbox
  // are applied before its commands, which may belong to the ops after them
  // (a delete's finalizer, a release's eviction).
  // An outbox that also finishes the running op may carry notices of the ops
  // after it; the in-use check applies only while that op is still running.
  const bool current_finishes = std::any_of(out.finished.begin(), out.finished.end(),
                                            [&](const engine::OpResult& r) { return r.op == current_op_; });
  if (!current_finishes)
    for (const engine::Notice& n : out.notices) OnNotice(n);
  for (const engine::OpResult& r : out.finished) OnFinished(r);
  for (const Command& c : out.commands) OnCommand(c);
  CheckTotals(engine);
}

void ResidencyChecker::Finish(const engine::Engine& engine) {
  if (!engine.Idle()) Violation("the run ended with the engine not idle: " + engine.DescribeOutstanding());
  if (!pending_.empty()) Violation(std::to_string(pending_.size()) + " command(s) never completed");
  for (const auto& [id, op] : ops_)
    if (!finished_.count(id)) Violation("op " + std::to_string(id) + " (" + std::string(ToString(op.kind)) + ") never finished");
  // At rest every activation is freed, whichever way its compute ended.
  for (engine::BufferId id : activations_)
    Violation("activation buffer " + std::to_string(id) + " (" + std::to_string(device_[id].first) +
              " bytes) is still allocated after the run (a leak)");
  for (engine::ModelId m : deleted_) {
    if (handles_[m] > 0) continue;
    if (finalized_[m] != 1)
      Violation("model " + std::to_string(m) + " deleted with no handle left, finalized " +
                std::to_string(finalized_[m]) + " times (want exactly once)");
    for (const auto& [id, b] : host_)
      if (b.owner == m) Violation("deleted model " + std::to_string(m) + " still holds host buffer " + std::to_string(id));
    for (const auto& [id, d] : device_)
      if (d.second == m) Violation("deleted model " + std::to_string(m) + " still holds device buffer " + std::to_string(id));
  }
}

std::vector<std::string> ResidencyChecker::Leftovers() const {
  std::vector<std::string> left;
  for (const auto& [id, d] : device_)
    left.push_back("device buffer " + std::to_string(id) + " (" + std::to_string(d.first) + " bytes, model " +
                   std::to_string(d.second) + ")");
  for (const auto& [id, b] : host_) {
    const bool registered = std::any_of(ops_.begin(), ops_.end(), [&](const auto& entry) {
      return entry.second.kind == engine::OpKind::kRegisterModel && entry.second.model == b.owner;
    });
    if (registered)
      left.push_back("host buffer " + std::to_string(id) + " (" + std::to_string(b.bytes) + " bytes, model " +
                     std::to_string(b.owner) + ")");
  }
  return left;
}

}  // namespace residency::proof
