#include "harness/metrics/run_sample.h"

namespace residency::metrics {

namespace {
// The figures every run's tally holds, in the agent's names.
void FromTally(const engine::RunTally& t, RunSample& s) {
  s.disk_read_bytes = t.disk_read_bytes;
  s.page_cache_read_bytes = t.page_cache_read_bytes;
  s.ram_cache_hits = t.ram_cache_hits;
  s.ram_cache_misses = t.disk_loads + t.spill_loads;
  s.peak_host_bytes = t.peak_host_bytes;
  s.peak_pinned_bytes = t.peak_pinned_bytes;
  s.peak_device_bytes = t.peak_device_bytes;
  s.host_budget_bytes = t.budgets.host_limit_bytes;
  s.pin_budget_bytes = t.budgets.pin_budget_bytes;
  s.device_budget_bytes = t.budgets.device_limit_bytes;
  for (const auto& [key, e] : t.evictions) s.evictions[key] = {e.count, e.bytes};
}
// Which run a sample is of.
RunSample Named(const char* source, const std::string& profile, const std::string& policy, const std::string& trace,
                const std::string& outcome) {
  RunSample s;
  s.source = source;
  s.profile = profile;
  s.policy = policy;
  s.trace = trace;
  s.outcome = outcome;
  return s;
}
}  // namespace

RunSample SampleFromSim(const sim::SimResult& r, const std::string& outcome, const std::string& profile_name,
                        const std::string& policy_name) {
  RunSample s = Named("sim", profile_name, policy_name, r.trace, outcome);
  s.load_seconds = static_cast<double>(r.load_ns) / 1e9;
  FromTally(r.tally, s);
  s.ooms = r.oom.happened ? 1 : 0;
  s.violations = static_cast<std::int64_t>(r.violations.size());
  s.events = static_cast<std::int64_t>(r.events);
  return s;
}

std::string RealRunMetricsText(const executor::RunResult& r, const engine::Workload& w, const std::string& profile,
                               const std::string& policy_name) {
  RunSample s = Named("real", profile, policy_name, w.name,
                      !r.violations.empty() ? "violation" : !r.tally.failed_ops.empty() ? "infeasible" : "ok");
  for (std::size_t i = 0; i < r.ops.size() && i < w.ops.size(); ++i)
    if (w.ops[i].kind == engine::OpKind::kLoad)
      s.load_seconds += static_cast<double>(r.ops[i].end_ns - r.ops[i].start_ns) / 1e9;
  FromTally(r.tally, s);
  s.violations = static_cast<std::int64_t>(r.violations.size());
  Metrics m;
  m.RecordRun(s);
  return m.Serialize();
}

}  // namespace residency::metrics
