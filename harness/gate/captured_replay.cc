#include "harness/gate/captured_replay.h"

#include <cmath>
#include <optional>

#include "harness/fidelity/captured_fidelity.h"
#include "harness/report/compare.h"
#include "harness/sweep/sweep_runner.h"
#include "traces/bundled.h"
#include "traces/captured_profile.h"
#include "traces/policy_file.h"
#include "traces/trace.h"

namespace residency::gate {
namespace {

constexpr std::uint64_t kSeed = 1;

struct RunRef {
  store::RunRow row;
  std::optional<sim::SimResult> result;  // when simulated now
};

class Replayer {
 public:
  Replayer(store::ResultsStore& store, const store::StoredTrace& stored, const engine::Workload& workload,
           const ReplaySettings& settings, CapturedReplay& out)
      : store_(store), stored_(stored), workload_(workload), settings_(settings), out_(out) {}

  // The run of this trace on `profile` under `policy`: the one stored
  // already, unless `fresh` asks for its simulation (fidelity reads prompts).
  Result<RunRef> Run(const traces::Profile& profile, const engine::Policy& policy, bool fresh) {
    RESIDENCY_ASSIGN_OR_RETURN(std::int64_t profile_id, store_.PutProfile(profile.name, traces::WriteProfile(profile)));
    RESIDENCY_ASSIGN_OR_RETURN(std::int64_t policy_id, store_.PutPolicy(policy.name, traces::WritePolicy(policy)));
    const store::RunInputs in{stored_.id, profile_id, policy_id, kSeed, settings_.code_version};
    RunRef ref;
    if (!fresh) {
      RESIDENCY_ASSIGN_OR_RETURN(std::optional<store::RunRow> have, store_.FindRun(in));
      if (have) {
        ref.row = std::move(*have);
        return ref;
      }
    }
    RESIDENCY_ASSIGN_OR_RETURN(sweep::StoredRun run,
                               sweep::SimulateAndStore(store_, in, stored_.name, workload_, profile, policy,
                                                       {settings_.host, settings_.max_wall_seconds}));
    if (run.result) out_.runs.push_back(ReplayedRun{profile.name, policy.name, run.outcome, *run.result});
    ref.result = std::move(run.result);
    RESIDENCY_ASSIGN_OR_RETURN(std::optional<store::RunRow> row, store_.FindRun(in));
    if (!row) return Internal("run of " + stored_.name + " on " + profile.name + " under " + policy.name +
                              " vanished after it was stored");
    ref.row = std::move(*row);
    return ref;
  }

 private:
  store::ResultsStore& store_;
  const store::StoredTrace& stored_;
  const engine::Workload& workload_;
  const ReplaySettings& settings_;
  CapturedReplay& out_;
};

}  // namespace

Result<CapturedReplay> ReplayCaptured(store::ResultsStore& store, const store::StoredTrace& stored,
                                      const GateConfig* gate, const ReplaySettings& settings) {
  const std::string origin = "trace " + stored.hash + " (" + stored.name + ")";
  RESIDENCY_ASSIGN_OR_RETURN(traces::Trace trace, traces::ParseTrace(stored.body, origin));
  if (!trace.header.machine) return InvalidArgument(origin + ": no machine record: not a captured trace");
  RESIDENCY_ASSIGN_OR_RETURN(engine::Workload workload, traces::ToWorkload(trace, origin));
  CapturedReplay out;
  out.host = trace.header.machine->host;
  Replayer replayer(store, stored, workload, settings, out);

  // Its own machine under its own settings: the simulator against the capture.
  RESIDENCY_ASSIGN_OR_RETURN(traces::Profile own_profile, traces::LoadProfileForTrace("captured", trace, origin));
  RESIDENCY_ASSIGN_OR_RETURN(traces::DerivedPolicy own_policy, traces::PolicyFromMachine(*trace.header.machine));
  out.warnings = own_policy.warnings;
  RESIDENCY_ASSIGN_OR_RETURN(RunRef own, replayer.Run(own_profile, own_policy.policy, /*fresh=*/true));
  if (own.result) {
    const harness::CapturedFidelity f = harness::CompareCaptured(*own.result);
    for (const harness::CapturedPrompt& p : f.prompts) {
      store::FidelityRow row;
      row.code_version = settings.code_version;
      row.host = out.host;
      row.policy_detail = own_policy.Summary();
      row.prompt = p.prompt;
      row.status = p.status;
      row.captured_ns = p.captured_ns;
      row.simulated_ns = p.simulated_ns;
      if (p.compared) row.error = p.error;
      out.fidelity.push_back(std::move(row));
    }
  } else {
    out.warnings.push_back("the replay on its own machine could not run: " + own.row.outcome +
                           (own.row.violations.empty() ? "" : " (" + own.row.violations.front() + ")"));
  }
  if (!gate) return out;

  // The gate: every profile, the baseline and each candidate.
  for (const std::string& profile_name : gate->profiles) {
    RESIDENCY_ASSIGN_OR_RETURN(traces::Profile profile, traces::LoadProfileForTrace(profile_name, trace, origin));
    // The stored profile is named as the gate names it ("captured" stays "captured").
    profile.name = profile_name;
    RESIDENCY_ASSIGN_OR_RETURN(traces::DerivedPolicy base_policy, ResolvePolicy(gate->baseline, trace, origin));
    RESIDENCY_ASSIGN_OR_RETURN(RunRef base, replayer.Run(profile, base_policy.policy, false));
    for (const PolicyChoice& candidate : gate->candidates) {
      RESIDENCY_ASSIGN_OR_RETURN(traces::DerivedPolicy cand_policy, ResolvePolicy(candidate, trace, origin));
      for (const std::string& w : cand_policy.warnings)
        out.warnings.push_back("candidate " + candidate.name + ": " + w);
      RESIDENCY_ASSIGN_OR_RETURN(RunRef cand, replayer.Run(profile, cand_policy.policy, false));
      const harness::Judgement j = harness::Judge(base.row, cand.row, gate->column, gate->threshold_pct);
      store::VerdictRow v;
      v.code_version = settings.code_version;
      v.gate = gate->hash;
      v.profile = profile_name;
      v.baseline = gate->baseline.name;
      v.candidate = candidate.name;
      v.metric = gate->metric;
      v.threshold_pct = gate->threshold_pct;
      v.verdict = std::string(harness::Label(j.verdict));
      v.baseline_outcome = base.row.outcome;
      v.candidate_outcome = cand.row.outcome;
      v.baseline_value = j.baseline_value;
      v.candidate_value = j.candidate_value;
      if (j.baseline_value && j.candidate_value && std::isfinite(j.delta_pct)) v.delta_pct = j.delta_pct;
      v.baseline_run = base.row.id;
      v.candidate_run = cand.row.id;
      out.verdicts.push_back(std::move(v));
    }
  }
  return out;
}

}  // namespace residency::gate
