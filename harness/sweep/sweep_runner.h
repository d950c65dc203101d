// Runs a sweep's planned runs on N threads, storing each in the results
// store as it finishes. Runs already stored (same inputs, seed and code
// version) are skipped, so an interrupted sweep resumes where it stopped.
#pragma once

#include <atomic>
#include <cstddef>
#include <functional>
#include <optional>
#include <string>

#include "harness/store/results_store.h"
#include "harness/sweep/sweep_spec.h"

namespace residency::sweep {

// What the caller hears about each planned run (progress, metrics).
struct RunDone {
  const PlannedRun* run = nullptr;
  const sim::SimResult* result = nullptr;  // null when skipped or failed
  std::string outcome;                     // ok | infeasible | oom | violation | error | skipped
  double seconds = 0;
};

struct SweepOptions {
  int jobs = 1;
  Shard shard;
  std::string code_version;
  std::string host;
  // Called under a lock, one run at a time, in completion order.
  std::function<void(const RunDone&, std::size_t done, std::size_t total)> on_run;
  const std::atomic<bool>* stop = nullptr;  // checked between runs
};

struct SweepSummary {
  std::size_t planned = 0, skipped = 0, ran = 0, errors = 0, ooms = 0, violations = 0, infeasible = 0;
  double wall_s = 0;
  double run_s = 0;  // summed run durations (CPU-seconds of simulation)
  bool stopped = false;
};

// One run simulated and stored in one transaction (an error is stored as a
// failed run): what a sweep does per planned run, and the agent per replay.
struct StoredRun {
  std::string outcome;                   // ok | infeasible | oom | violation | error
  std::optional<sim::SimResult> result;  // none when the run could not be simulated
  double seconds = 0;
};
struct StoreRunOptions {
  std::string host;
  double max_wall_seconds = 0;  // per run; 0: none
};
Result<StoredRun> SimulateAndStore(store::ResultsStore& store, const store::RunInputs& in, const std::string& trace_name,
                                   const engine::Workload& workload, const traces::Profile& profile,
                                   const engine::Policy& policy, const StoreRunOptions& options);

Result<SweepSummary> RunSweep(store::ResultsStore& store, const SweepSpec& spec, const SweepOptions& options);

}  // namespace residency::sweep
