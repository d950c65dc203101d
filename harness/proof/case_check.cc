#include "harness/proof/case_check.h"

#include <filesystem>
#include <fstream>
#include <map>
#include <memory>

#include "harness/proof/residency_checker.h"
#include "harness/proof/spec_budgets.h"
#include "runtime/engine/engine.h"
#include "runtime/base/splitmix64.h"
#include "sim/simulator.h"
#include "traces/policy_file.h"

namespace residency::proof {

namespace {

// Commands that can fail in a real executor fail now and then: in half the
// cases never (a load has hundreds of commands, and the paths that succeed
// need their share of cases too), in a quarter at 0.1 %, in a quarter at a
// per-case rate of 0.1-4 %.
std::uint32_t FailPermille(std::uint64_t seed) {
  std::uint64_t r = seed ^ 0xfa11;
  switch ((seed >> 1) % 4) {
    case 2: return 1;
    case 3: return 1 + static_cast<std::uint32_t>(SplitMix64(r) % 40);
    default: return 0;
  }
}

// The engine and simulator must never throw; a throw is a problem like any other.
template <typename F>
CaseResult Guarded(F&& run) {
  try {
    return run();
  } catch (const std::exception& e) {
    CaseResult r;
    r.problems.push_back(std::string("exception thrown (the engine must never throw): ") + e.what());
    return r;
  }
}

CaseResult SimulatorRun(const Case& c, std::uint64_t seed, bool keep_log) {
  CaseResult result;
  auto workload = traces::ToWorkload(c.trace, c.trace.header.name);
  if (!workload.ok()) {
    result.problems.push_back("the case's trace is invalid: " + workload.status().message());
    return result;
  }
  sim::SimOptions options;
  options.seed = seed;
  options.record_timeline = false;
  options.keep_event_log = keep_log;
  options.max_events = 20'000'000;
  options.fail_permille = FailPermille(seed);
  auto r = sim::Simulate(workload.value(), c.profile, c.policy, options);
  if (!r.ok()) {
    result.problems.push_back("the simulator refused the case: " + r.status().message());
    return result;
  }
  for (const std::string& v : r->violations) result.problems.push_back(v);
  if (r->oom.happened) {
    std::string holders;
    for (const std::string& h : r->oom.holders) holders += "; " + h;
    result.problems.push_back("OOM (the engine let the machine run out of memory): " + r->oom.message + holders);
  }
  result.event_log_hash = r->event_log_hash;
  result.event_log = std::move(r->event_log);
  return result;
}

CaseResult EngineAloneRun(const Case& c, std::uint64_t seed) {
  CaseResult result;
  auto workload = traces::ToWorkload(c.trace, c.trace.header.name);
  if (!workload.ok()) {
    result.problems.push_back("the case's trace is invalid: " + workload.status().message());
    return result;
  }
  auto created = engine::Engine::Create(c.profile.Limits(), c.policy);
  if (!created.ok()) {
    result.problems.push_back("the engine refused the case: " + created.status().message());
    return result;
  }
  engine::Engine& e = *created.value();
  ResidencyChecker checker(workload.value(), SpecBudgets(c.profile, c.policy), c.policy.load_modes);
  std::vector<engine::CommandId> pending;
  std::map<engine::CommandId, engine::CommandKind> kinds;  // of the pending commands
  std::uint64_t rng = seed ^ 0x5eed;
  engine::Outbox out;
  auto take = [&] {
    checker.Observe(e, out);
    for (const engine::Command& cmd : out.commands) {
      pending.push_back(cmd.id);
      kinds[cmd.id] = cmd.kind;
    }
    for (std::string& v : e.CheckInvariants()) result.problems.push_back("engine self-check: " + v);
    out.Clear();
  };
  // Half the cases submit every op up front (as the simulator does), half
  // one at a time once the engine is idle (as a server's execution thread).
  const bool upfront = (seed & 1) != 0;
  // Injected failures (FailPermille): every invariant must hold, nothing may
  // leak, and the failed op must report a typed error.
  const std::uint64_t fail_permille = FailPermille(seed);
  std::size_t next_op = 0;
  auto submit = [&] {
    while (next_op < workload->ops.size() && (upfront || e.Idle())) {
      e.Submit(workload->ops[next_op++], out);
      take();
    }
  };
  submit();
  for (std::uint64_t steps = 0; !pending.empty() && steps < 20'000'000; ++steps) {
    // Now and then the OS asks for memory back, as the simulator's does.
    if (SplitMix64(rng) % 64 == 0) {
      e.HostPressure(static_cast<engine::Bytes>(SplitMix64(rng) % (4ull << 30)), out);
      take();
    }
    const std::size_t i = static_cast<std::size_t>(SplitMix64(rng) % pending.size());
    const engine::CommandId id = pending[i];
    pending[i] = pending.back();
    pending.pop_back();
    checker.Completed(id);
    const engine::CommandKind kind = kinds[id];
    kinds.erase(id);
    const bool fail = engine::CanFail(kind) && SplitMix64(rng) % 1000 < fail_permille;
    e.Complete({id, fail ? Internal(std::string("injected failure of a ") + std::string(ToString(kind)))
                         : Status::Ok()},
               out);
    take();
    submit();
    if (result.problems.size() > 20) break;
  }
  checker.Finish(e);
  for (const std::string& v : checker.violations()) result.problems.push_back(v);
  return result;
}

}  // namespace

CaseResult CheckInSimulator(const Case& c, std::uint64_t seed, bool keep_log) {
  return Guarded([&] { return SimulatorRun(c, seed, keep_log); });
}

CaseResult CheckEngineAlone(const Case& c, std::uint64_t seed) {
  return Guarded([&] { return EngineAloneRun(c, seed); });
}

CaseResult CheckCase(const Case& c, std::uint64_t seed) {
  CaseResult sim = CheckInSimulator(c, seed);
  CaseResult alone = CheckEngineAlone(c, seed);
  CaseResult all;
  all.event_log_hash = sim.event_log_hash;
  for (const std::string& p : sim.problems) all.problems.push_back("sim: " + p);
  for (const std::string& p : alone.problems) all.problems.push_back("engine: " + p);
  return all;
}

namespace {

Status WriteText(const std::filesystem::path& path, const std::string& text) {
  std::ofstream out(path, std::ios::binary);
  out << text;
  out.close();
  if (!out) return Internal(path.string() + ": cannot write");
  return Status::Ok();
}

}  // namespace

Status WriteCase(const std::string& dir, const std::string& name, const Case& c) {
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  const std::filesystem::path base(dir);
  RESIDENCY_RETURN_IF_ERROR(WriteText(base / (name + ".jsonl"), traces::WriteTrace(c.trace)));
  RESIDENCY_RETURN_IF_ERROR(WriteText(base / (name + ".profile.json"), traces::WriteProfile(c.profile)));
  return WriteText(base / (name + ".policy.json"), traces::WritePolicy(c.policy));
}

Result<Case> ReadCase(const std::string& dir, const std::string& name) {
  const std::filesystem::path base(dir);
  Case c;
  RESIDENCY_ASSIGN_OR_RETURN(c.trace, traces::ReadTraceFile((base / (name + ".jsonl")).string()));
  RESIDENCY_ASSIGN_OR_RETURN(c.profile, traces::ReadProfileFile((base / (name + ".profile.json")).string()));
  RESIDENCY_ASSIGN_OR_RETURN(c.policy, traces::ReadPolicyFile((base / (name + ".policy.json")).string()));
  return c;
}

}  // namespace residency::proof
