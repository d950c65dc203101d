// Checks the engine from the outside. It sees only what an executor sees —
// the commands, their completions, the ops' results — keeps its own books of
// every buffer, pin and handle, and reports where the engine's promises
// (docs/ARCHITECTURE.md, "Invariants") break: budgets, counters that drift from what is
// held, buffers freed or reused under in-flight commands, finalizers run
// twice, never, or under a live handle, full models evicted while in use,
// ops that never finish or fail with an unexpected code. Independent of the
// engine's own CheckInvariants, so a bug there cannot hide a bug here.
#pragma once

#include <map>
#include <set>
#include <string>
#include <unordered_map>
#include <vector>

#include "runtime/engine/engine.h"

namespace residency::proof {

class ResidencyChecker {
 public:
  // `rule`: the policy's loading regime, which decides each load's mode.
  ResidencyChecker(const engine::Workload& workload, const engine::Budgets& budgets,
                   engine::LoadModeRule rule = engine::LoadModeRule::kAsTraced);

  // An op submitted after construction (stateful tests build ops as they go).
  void AddOp(const engine::Op& op) { ops_[op.id] = op; }
  // Feed everything one engine call produced, before executing its commands.
  void Observe(const engine::Engine& engine, const engine::Outbox& out);
  // A command's completion, before it is handed to the engine.
  void Completed(engine::CommandId id);
  // After the run: every op finished once, every command completed, every
  // deleted model without handles finalized exactly once and holding nothing.
  void Finish(const engine::Engine& engine);

  const std::vector<std::string>& violations() const { return violations_; }
  // What is still allocated, by the checker's own books: every device buffer
  // and every host buffer a registered model owns (not the file-keyed RAM
  // cache's entries). Empty at rest once every model is released and deleted.
  std::vector<std::string> Leftovers() const;

 private:
  struct HostBuf {
    engine::Bytes bytes = 0;
    engine::Bytes pinned = 0;
    bool mapped = false;
    engine::ModelId owner = 0;
  };
  void Violation(std::string what);
  void OnCommand(const engine::Command& c);
  void OnNotice(const engine::Notice& n);
  void OnFinished(const engine::OpResult& r);
  void CheckTotals(const engine::Engine& engine);
  void Touch(engine::BufferId buffer, bool device, const engine::Command& c);

  const engine::Budgets budgets_;
  const engine::LoadModeRule rule_;
  std::unordered_map<engine::OpId, engine::Op> ops_;
  std::unordered_map<engine::BufferId, HostBuf> host_;
  std::unordered_map<engine::BufferId, std::pair<engine::Bytes, engine::ModelId>> device_;
  std::unordered_map<engine::BufferId, int> inflight_;  // per buffer (host or device)
  std::unordered_map<engine::CommandId, engine::Command> pending_;
  std::map<engine::ModelId, int> handles_;
  std::map<engine::ModelId, int> finalized_;
  std::map<engine::ModelId, engine::LoadMode> mode_;
  std::set<engine::ModelId> deleted_;
  std::set<engine::BufferId> activations_;  // device buffers allocated as activations
  std::set<engine::OpId> finished_;
  engine::OpId current_op_ = 1;  // ops run one at a time, in order
  std::vector<std::string> violations_;
};

}  // namespace residency::proof
