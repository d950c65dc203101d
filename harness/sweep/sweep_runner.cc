#include "harness/sweep/sweep_runner.h"

#include <chrono>
#include <ctime>
#include <mutex>
#include <thread>
#include <vector>

#include "harness/report/report.h"
#include "harness/store/run_figures.h"
#include "sim/simulator.h"

namespace residency::sweep {
namespace {

std::string UtcNow() {
  const auto now = std::chrono::system_clock::now();
  const std::time_t t = std::chrono::system_clock::to_time_t(now);
  const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(now.time_since_epoch()).count() % 1000;
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[64];
  std::snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900, tm.tm_mon + 1,
                tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, static_cast<int>(ms));
  return buf;
}

struct InputIds {
  std::vector<std::int64_t> traces, profiles, policies;
};

Result<InputIds> StoreInputs(store::ResultsStore& store, const SweepSpec& spec) {
  InputIds ids;
  for (const TraceInput& t : spec.traces) {
    RESIDENCY_ASSIGN_OR_RETURN(std::int64_t id, store.PutTrace(t.name, t.provenance, t.body));
    ids.traces.push_back(id);
  }
  for (const ProfileInput& p : spec.profiles) {
    RESIDENCY_ASSIGN_OR_RETURN(std::int64_t id, store.PutProfile(p.name, p.body));
    ids.profiles.push_back(id);
  }
  for (const PolicyInput& p : spec.policies) {
    RESIDENCY_ASSIGN_OR_RETURN(std::int64_t id, store.PutPolicy(p.name, p.body));
    ids.policies.push_back(id);
  }
  return ids;
}

}  // namespace

Result<StoredRun> SimulateAndStore(store::ResultsStore& store, const store::RunInputs& in, const std::string& trace_name,
                                   const engine::Workload& workload, const traces::Profile& profile,
                                   const engine::Policy& policy, const StoreRunOptions& options) {
  const std::string started = UtcNow();
  const auto r0 = std::chrono::steady_clock::now();
  sim::SimOptions sim_options;
  sim_options.seed = in.seed;
  sim_options.record_timeline = false;
  sim_options.max_wall_seconds = options.max_wall_seconds;
  auto result = sim::Simulate(workload, profile, policy, sim_options);
  StoredRun out;
  out.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - r0).count();
  const store::RunMeta meta{options.host, started, out.seconds};
  if (!result.ok()) {
    RESIDENCY_RETURN_IF_ERROR(store.PutFailedRun(in, meta, result.status().ToString()).status());
    out.outcome = "error";
    return out;
  }
  result->trace = trace_name;
  RESIDENCY_RETURN_IF_ERROR(store.PutRun(in, meta, *result, harness::ResultJson(*result).dump()).status());
  out.outcome = store::Outcome(*result);
  out.result = std::move(result).value();
  return out;
}

Result<SweepSummary> RunSweep(store::ResultsStore& store, const SweepSpec& spec, const SweepOptions& options) {
  const auto t0 = std::chrono::steady_clock::now();
  RESIDENCY_ASSIGN_OR_RETURN(InputIds ids, StoreInputs(store, spec));
  const std::vector<PlannedRun> plan = PlanRuns(spec, options.shard);

  SweepSummary summary;
  summary.planned = plan.size();
  std::mutex mu;  // guards summary, first_error, the callback
  Status first_error;
  std::atomic<std::size_t> next{0};
  std::atomic<bool> failed{false};
  std::size_t done = 0;

  const auto report = [&](const RunDone& d) {
    std::lock_guard lock(mu);
    ++done;
    if (d.outcome == "skipped") {
      ++summary.skipped;
    } else {
      ++summary.ran;
      summary.run_s += d.seconds;
      if (d.outcome == "error") ++summary.errors;
      if (d.outcome == "oom") ++summary.ooms;
      if (d.outcome == "violation") ++summary.violations;
      if (d.outcome == "infeasible") ++summary.infeasible;
    }
    if (options.on_run) options.on_run(d, done, plan.size());
  };
  const auto fail = [&](Status s) {
    std::lock_guard lock(mu);
    if (first_error.ok()) first_error = std::move(s);
    failed = true;
  };

  const auto worker = [&] {
    for (;;) {
      if (failed || (options.stop && options.stop->load())) return;
      const std::size_t i = next.fetch_add(1);
      if (i >= plan.size()) return;
      const PlannedRun& run = plan[i];
      store::RunInputs in{ids.traces[run.trace], ids.profiles[run.profile], ids.policies[run.policy], run.seed,
                          options.code_version};
      auto have = store.HasRun(in);
      if (!have.ok()) return fail(have.status());
      if (*have) {
        report(RunDone{&run, nullptr, "skipped", 0});
        continue;
      }
      auto stored = SimulateAndStore(store, in, spec.traces[run.trace].name, spec.traces[run.trace].workload,
                                     spec.profiles[run.profile].profile, spec.policies[run.policy].policy,
                                     StoreRunOptions{options.host, 0});
      if (!stored.ok()) return fail(stored.status());
      report(RunDone{&run, stored->result ? &*stored->result : nullptr, stored->outcome, stored->seconds});
    }
  };

  const int jobs = std::max(1, std::min<int>(options.jobs, static_cast<int>(std::max<std::size_t>(plan.size(), 1))));
  std::vector<std::thread> threads;
  for (int j = 1; j < jobs; ++j) threads.emplace_back(worker);
  worker();
  for (std::thread& t : threads) t.join();

  if (!first_error.ok()) return first_error;
  summary.stopped = done < plan.size();
  summary.wall_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return summary;
}

}  // namespace residency::sweep
