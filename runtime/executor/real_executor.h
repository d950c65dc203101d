// The real executor: runs a workload through the same engine the simulator
// drives, carrying its commands out on real files, threads, host memory and
// a device backend, and feeding completions back. Reads, copies and compute
// run on worker threads; the engine is only ever called from the caller's
// thread (it is single-threaded by design).
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "runtime/device/device_backend.h"
#include "runtime/engine/commands.h"
#include "runtime/engine/ops.h"
#include "runtime/engine/policy.h"
#include "runtime/engine/run_tally.h"
#include "runtime/base/status.h"

namespace residency::executor {

struct RunOptions {
  // Model file paths in the workload are resolved as models_dir/basename.
  std::string models_dir;
  // Spill files go here; empty: a fresh directory under $TMPDIR.
  std::string scratch_dir;
  // Compute steps last step_ns x time_scale (0 skips the waiting).
  double time_scale = 1.0;
  // Check the engine's invariants after every step (cheap for small runs).
  bool check_invariants = true;
  // Keep every command's span, the engine's notices and the memory in use
  // over time (RunResult::timeline), for a timeline of the real run.
  bool record_timeline = false;
  // The machine's free memory in bytes, asked after every completion; when it
  // is below the policy's host_headroom_bytes and the engine keeps cached
  // host copies, the engine hears of the shortfall (Engine::HostPressure), as
  // the simulator tells it of its simulated machine's. Empty: the kernel's
  // MemAvailable (io::MemAvailableBytes); a negative answer means unknown.
  std::function<std::int64_t()> available_memory;
};

// Host<->device copies the executor runs at once (a copy stream per
// direction on a GPU; memcpy threads on the host device). `calibrate` times
// copies with the same concurrency, so the profile's rates are aggregates.
inline constexpr int kCopyThreads = 2;

struct OpTiming {
  engine::OpId op = 0;
  std::int64_t start_ns = 0;  // since the run began
  std::int64_t end_ns = 0;
};

// What a timeline of a real run needs, in nanoseconds since the run began.
struct RunTimeline {
  struct TimedCommand {
    engine::Command command;
    std::int64_t start_ns = 0;  // issued
    std::int64_t end_ns = 0;    // completed
  };
  struct TimedNotice {
    std::int64_t time_ns = 0;
    engine::Notice notice;
  };
  struct MemorySample {
    std::int64_t time_ns = 0;
    std::uint64_t pageable_bytes = 0, pinned_bytes = 0, device_bytes = 0;
  };
  std::vector<TimedCommand> commands;  // in completion order
  std::vector<TimedNotice> notices;
  std::vector<MemorySample> memory;
};

struct RunResult {
  std::int64_t wall_ns = 0;
  std::vector<std::string> decisions;  // engine::AppendDecisions lines
  std::vector<OpTiming> ops;           // one per workload op, in op order
  std::vector<std::string> violations; // engine invariants broken
  // Hits, loads, evictions, notices, failed ops, command times and budgets,
  // counted as the simulator counts them; plus this executor's bytes moved
  // (every file read is a disk read here), peaks (host buffers alive at once,
  // its own count) and pin fallbacks (the engine's, and pins that ended as
  // plain memory).
  engine::RunTally tally;
  RunTimeline timeline;  // empty unless RunOptions::record_timeline
};

// Runs `workload`; a Status error only for a run that could not start or
// that the executor could not carry out (a missing file, a failed read). Ops
// the engine itself fails (an infeasible working set) are in failed_ops.
Result<RunResult> RunWorkload(const engine::Workload& workload, const engine::MachineLimits& machine,
                              const engine::Policy& policy, device::DeviceBackend& device,
                              const RunOptions& options);

}  // namespace residency::executor
