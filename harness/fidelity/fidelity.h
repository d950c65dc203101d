// `residency fidelity`: the same trace run for real on this machine (host
// device backend) and in the simulator with this machine's calibrated
// profile; per-prompt and total error on load-phase time.
//
// The trace is scaled to fit (`scale` multiplies every byte count: files,
// tensors, partial budgets, activations, patches) and its compute steps take
// no time, so a prompt's wall time is its load phase. The prompts run twice
// in one process: pass 1 after dropping the model files from the page cache
// (cold), pass 2 right after (warm: whatever pass 1 left cached, in RAM or in
// the page cache, on both sides).
#pragma once

#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "harness/fidelity/recorded_runs.h"
#include "runtime/engine/commands.h"
#include "runtime/engine/ops.h"
#include "runtime/engine/policy.h"
#include "runtime/base/status.h"
#include "traces/profile.h"

namespace residency::harness {

Result<engine::Workload> ScaleForFidelity(const engine::Workload& w, double scale, int passes);
// Writes each model file the workload names into `dir` unless one of the
// right size is there.
Status EnsureModelFiles(const engine::Workload& w, const std::string& dir);

struct PromptComparison {
  int pass = 0;  // 1 cold, 2 warm
  int prompt = 0;
  engine::Nanos real_ns = 0, sim_ns = 0;  // real: the median over the repeats
  double error = 0;  // (sim - real) / real
  double real_spread = 0;  // (max - min) / median of the real runs: the machine's own noise
  // With 3 or more real runs: each run's |error| against the median of the
  // others, the error the machine makes predicting itself (a floor for ours).
  std::vector<double> real_vs_real;
  // Both sides under 20 ms: nothing was loaded (the models were resident);
  // listed, but a relative error of microseconds means nothing.
  bool no_load = false;
};

// One command kind in one pass: issue-to-completion time summed over its
// commands on each side. Where the prompts disagree, this says which kind of
// work (reads, copies, page-locking, prefaulting) the model misjudges.
struct KindComparison {
  int pass = 0;
  int prompt = 0;  // 0: the whole pass
  engine::CommandKind kind = engine::CommandKind::kReadFile;
  engine::CommandTime real, sim;
};

struct FidelityReport {
  std::string trace, policy;
  double scale = 0;
  std::vector<PromptComparison> prompts;
  std::vector<KindComparison> kinds;  // from the real run with the median wall time
  std::vector<KindComparison> prompt_kinds;  // the same, prompt by prompt (--json)
  int repeat = 1;
  engine::Nanos real_total_ns = 0, sim_total_ns = 0;
  // Host<->device copy rates probed on each real run's device (median over
  // the runs, bytes/s) and given to the simulation; 0 when not probed.
  double probed_h2d_pinned = 0, probed_h2d_pageable = 0, probed_d2h = 0;
  RecordedRuns real_runs;  // the real side, measured or given (--save-real-runs writes it)
  // With FidelityOptions::timelines: the first counted real run's and the
  // simulation's Chrome trace JSON (the real one is empty with --real-runs).
  std::string real_timeline_json, sim_timeline_json;
};

struct FidelityOptions {
  std::string models_dir;
  double scale = 0.05;
  std::uint64_t device_bytes = 4ull << 30;  // the emulated device, on both sides
  int repeat = 1;  // real runs (each cold, then warm); prompts compare against their median
  // Real runs before those, not counted. On a VM whose balloon hands freed
  // memory back to the hypervisor (docs/FIDELITY.md), a process's first run
  // faults its buffers in from the hypervisor, 3-8x slower than the recycled
  // memory `calibrate` measures and later runs get.
  int warmup = 1;
  // Measure copy rates on each real run's device before it runs and simulate
  // with their median instead of the profile's (--copy-probe). The emulated
  // device copies between host pages, and how fast depends on which pages
  // back both sides (on this VM 11-22 GB/s from one allocation to the next),
  // so a probe on its own buffers is not the run's rate either; off by default.
  bool probe_copies = false;
  // Simulate against these instead of running the trace (--real-runs); they
  // must be of the same trace, policy, scale and device.
  std::optional<RecordedRuns> recorded_real_runs;
  // Called with the real runs as soon as they are done, before the
  // simulation (--save-real-runs keeps them even if what follows fails).
  std::function<Status(const RecordedRuns&)> on_real_runs;
  // Keep timelines of the first counted real run and of the simulation (--timeline DIR).
  bool timelines = false;
};

Result<FidelityReport> RunFidelity(const engine::Workload& original, const traces::Profile& profile,
                                   const engine::Policy& policy, const FidelityOptions& options);

// |error| median and 95th percentile over the prompts of one pass (0: all).
double MedianAbsError(const FidelityReport& r, int pass);
double P95AbsError(const FidelityReport& r, int pass);
// Median over the prompts that loaded of the real runs' own spread (0 with one run).
double MedianRealSpread(const FidelityReport& r);
// The same statistics as MedianAbsError/P95AbsError over real_vs_real (every
// run of every prompt that loaded); 0 with fewer than 3 runs.
double MedianRealVsRealError(const FidelityReport& r, int pass);
double P95RealVsRealError(const FidelityReport& r, int pass);
std::string FormatFidelity(const FidelityReport& r);
// One JSON object: the prompts (with every real-vs-real error) and totals.
std::string FidelityJson(const FidelityReport& r);

}  // namespace residency::harness
