#include "harness/metrics/run_sample.h"

namespace residency::metrics {

RunSample SampleFromSim(const sim::SimResult& r, const std::string& outcome, const traces::Profile& profile,
                        const engine::Policy& policy, const std::string& profile_name,
                        const std::string& policy_name) {
  RunSample s;
  s.source = "sim";
  s.profile = profile_name;
  s.policy = policy_name;
  s.trace = r.trace;
  s.outcome = outcome;
  s.load_seconds = static_cast<double>(r.load_ns) / 1e9;
  s.disk_read_bytes = r.disk_read_bytes;
  s.page_cache_read_bytes = r.page_cache_read_bytes;
  s.ram_cache_hits = r.ram_cache_hits;
  s.ram_cache_misses = r.disk_loads + r.spill_loads;
  s.peak_host_bytes = r.peak_host_bytes;
  s.peak_pinned_bytes = r.peak_pinned_bytes;
  s.peak_device_bytes = r.peak_device_bytes;
  const engine::Budgets b = engine::ComputeBudgets(profile.Limits(), policy);
  s.host_budget_bytes = b.host_limit_bytes;
  s.pin_budget_bytes = b.pin_budget_bytes;
  s.device_budget_bytes = b.device_limit_bytes;
  for (const auto& [key, e] : r.evictions) s.evictions[key] = {e.count, e.bytes};
  s.ooms = r.oom.happened ? 1 : 0;
  s.violations = static_cast<std::int64_t>(r.violations.size());
  s.events = static_cast<std::int64_t>(r.events);
  return s;
}

std::string RealRunMetricsText(const executor::RunResult& r, const engine::Workload& w,
                               const engine::MachineLimits& machine, const engine::Policy& policy,
                               const std::string& profile) {
  RunSample s;
  s.source = "real";
  s.profile = profile;
  s.policy = policy.name;
  s.trace = w.name;
  s.outcome = !r.violations.empty() ? "violation" : !r.failed_ops.empty() ? "infeasible" : "ok";
  for (std::size_t i = 0; i < r.ops.size() && i < w.ops.size(); ++i)
    if (w.ops[i].kind == engine::OpKind::kLoad)
      s.load_seconds += static_cast<double>(r.ops[i].end_ns - r.ops[i].start_ns) / 1e9;
  s.disk_read_bytes = static_cast<engine::Bytes>(r.read_bytes);
  s.peak_host_bytes = static_cast<engine::Bytes>(r.peak_host_bytes);
  s.peak_pinned_bytes = static_cast<engine::Bytes>(r.peak_pinned_bytes);
  s.peak_device_bytes = static_cast<engine::Bytes>(r.peak_device_bytes);
  const engine::Budgets b = engine::ComputeBudgets(machine, policy);
  s.host_budget_bytes = b.host_limit_bytes;
  s.pin_budget_bytes = b.pin_budget_bytes;
  s.device_budget_bytes = b.device_limit_bytes;
  s.violations = static_cast<std::int64_t>(r.violations.size());
  Metrics m;
  m.RecordRun(s);
  return m.Serialize();
}

}  // namespace residency::metrics
