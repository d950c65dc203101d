#include "harness/report/replay.h"

#include "sim/simulator.h"
#include "traces/bundled.h"
#include "traces/captured_policy.h"
#include "traces/captured_profile.h"
#include "traces/trace.h"

namespace residency::harness {

Result<sim::SimResult> Replay(const ReplayRequest& request, std::vector<std::string>* warnings) {
  RESIDENCY_ASSIGN_OR_RETURN(const std::string path, traces::ResolveTracePath(request.trace_path));
  RESIDENCY_ASSIGN_OR_RETURN(traces::Trace trace, traces::ReadTraceFile(path));
  RESIDENCY_ASSIGN_OR_RETURN(engine::Workload workload, traces::ToWorkload(trace, path));
  RESIDENCY_ASSIGN_OR_RETURN(traces::Profile profile,
                             traces::LoadProfileForTrace(request.profile, trace, path));
  RESIDENCY_ASSIGN_OR_RETURN(traces::DerivedPolicy policy, traces::LoadPolicyForTrace(request.policy, trace, path));
  if (warnings) warnings->insert(warnings->end(), policy.warnings.begin(), policy.warnings.end());
  sim::SimOptions options;
  options.seed = request.seed;
  options.keep_event_log = request.keep_event_log;
  options.record_timeline = request.record_timeline;
  options.max_wall_seconds = request.max_wall_seconds;
  RESIDENCY_ASSIGN_OR_RETURN(sim::SimResult result, sim::Simulate(workload, profile, policy.policy, options));
  if (policy.from_machine) result.policy_detail = policy.Summary();
  return result;
}

}  // namespace residency::harness
