// A simulated run's figures as a metrics sample (the real runtime builds its
// own in harness/cli_run.cc from executor::RunResult).
#pragma once

#include "harness/agent/metrics.h"
#include "runtime/engine/policy.h"
#include "sim/sim_result.h"
#include "traces/profile.h"

namespace residency::metrics {

RunSample SampleFromSim(const sim::SimResult& r, const std::string& outcome, const traces::Profile& profile,
                        const engine::Policy& policy, const std::string& profile_name,
                        const std::string& policy_name);

}  // namespace residency::metrics
