// A run's figures as a metrics sample: a simulated run's for the agent, a real
// run's for `residency run --metrics-file`.
#pragma once

#include "harness/metrics/metrics.h"
#include "runtime/engine/ops.h"
#include "runtime/executor/real_executor.h"
#include "sim/sim_result.h"

namespace residency::metrics {

// Both read the run's tally (its budgets included): one set of figures.
RunSample SampleFromSim(const sim::SimResult& r, const std::string& outcome, const std::string& profile_name,
                        const std::string& policy_name);

// A real run in the agent's metric names (source="real"), in the text format a
// node_exporter textfile collector or a push gateway takes.
std::string RealRunMetricsText(const executor::RunResult& r, const engine::Workload& w, const std::string& profile,
                               const std::string& policy_name);

}  // namespace residency::metrics
