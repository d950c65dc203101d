// Runs a workload through the residency engine on a simulated machine: the
// engine decides, this executor turns each command into simulated work on
// modeled resources (disk, CPU memcpy, PCIe) and memory pools, and feeds
// completions back at virtual times. Deterministic: the same workload,
// profile, policy and seed give the same event log hash.
#pragma once

#include <cstdint>

#include "runtime/engine/ops.h"
#include "runtime/engine/policy.h"
#include "runtime/base/status.h"
#include "sim/sim_result.h"
#include "traces/profile.h"

namespace residency::sim {

struct SimOptions {
  std::uint64_t seed = 1;
  bool keep_event_log = false;    // keep every log line (for divergence reports)
  bool record_timeline = true;    // samples and slices for --timeline / --svg
  bool check_invariants = true;   // engine invariants after every step
  bool record_decisions = false;  // time-free decision lines (differential tests)
  // Bounds on every run (docs/LIMITS.md). Crossing one is an error naming
  // it, not a verdict on the engine.
  std::uint64_t max_events = 500'000'000;
  engine::Nanos max_sim_time_ns = 30LL * 24 * 3600 * 1'000'000'000;  // 30 simulated days
  double max_wall_seconds = 0;                                        // 0: none
  // Commands an executor can fail (engine::CanFail) fail with this chance in
  // 1000, from their own seeded stream (0: none; the property tests inject).
  std::uint32_t fail_permille = 0;
};

Result<SimResult> Simulate(const engine::Workload& workload, const traces::Profile& profile,
                           const engine::Policy& policy, const SimOptions& options);

}  // namespace residency::sim
