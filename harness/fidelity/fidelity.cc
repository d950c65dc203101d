#include "harness/fidelity/fidelity.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <map>

#include <nlohmann/json.hpp>

#include "harness/calibrate/copy_rates.h"
#include "harness/report/real_timeline.h"
#include "harness/report/report.h"
#include "harness/common/progress_line.h"
#include "runtime/device/device_backend.h"
#include "runtime/executor/real_executor.h"
#include "runtime/safetensors/writer.h"
#include "sim/simulator.h"

namespace residency::harness {
namespace fs = std::filesystem;
using engine::Bytes;
using engine::Nanos;
using engine::Op;
using engine::OpKind;

namespace {

// The copy probe before each real run: 256 MiB, 4 rounds a pass, median of 5.
constexpr std::size_t kCopyProbeBytes = 256u << 20;
constexpr int kCopyProbePasses = 5;

Bytes Scaled(Bytes b, double scale) {
  return b <= 0 ? b : std::max<Bytes>(1, static_cast<Bytes>(static_cast<double>(b) * scale));
}

std::string ModelPath(const std::string& dir, const std::string& file) {
  return (fs::path(dir) / fs::path(file).filename()).string();
}

// Evicts a file from the page cache (clean pages only, no root needed).
void DropFromPageCache(const std::string& path) {
  const int fd = ::open(path.c_str(), O_RDONLY);
  if (fd < 0) return;
  ::posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED);
  ::close(fd);
}

std::map<int, Nanos> RealPromptWalls(const engine::Workload& w, const executor::RunResult& r) {
  std::map<int, Nanos> begin, wall;
  for (std::size_t i = 0; i < w.ops.size() && i < r.ops.size(); ++i) {
    if (w.ops[i].kind == OpKind::kPromptBegin) begin[w.ops[i].prompt] = r.ops[i].end_ns;
    if (w.ops[i].kind == OpKind::kPromptEnd && begin.count(w.ops[i].prompt))
      wall[w.ops[i].prompt] = r.ops[i].end_ns - begin[w.ops[i].prompt];
  }
  return wall;
}

// Recorded real runs stand in for running `w` only if they ran it: the same
// trace, policy, scale and device, and a time for every prompt.
Result<RecordedRuns> CheckRecordedRuns(const RecordedRuns& r, const engine::Workload& w, const std::string& trace,
                                       const std::string& policy, const FidelityOptions& o) {
  const std::string what = (r.origin.empty() ? std::string("recorded real runs") : r.origin) + ": the real runs";
  auto number = [](double v) {
    char b[32];
    std::snprintf(b, sizeof b, "%g", v);
    return std::string(b);
  };
  if (r.trace != trace) return InvalidArgument(what + " are of trace '" + r.trace + "', not '" + trace + "'");
  if (r.policy != policy)
    return InvalidArgument(what + " ran policy '" + r.policy + "', not '" + policy + "' (--policy)");
  if (r.scale != o.scale)
    return InvalidArgument(what + " ran at scale " + number(r.scale) + ", not " + number(o.scale) + " (--scale)");
  if (r.device_bytes != o.device_bytes)
    return InvalidArgument(what + " had a " + std::to_string(r.device_bytes) + "-byte device, not " +
                           std::to_string(o.device_bytes) + " (--device-capacity)");
  for (std::size_t i = 0; i < r.runs.size(); ++i)
    for (const Op& op : w.ops)
      if (op.kind == OpKind::kPromptBegin && !r.runs[i].prompt_walls.count(op.prompt))
        return InvalidArgument(what + ": run " + std::to_string(i + 1) + " has no time for prompt " +
                               std::to_string(op.prompt));
  return r;
}

// Real: cold page cache, then the two passes in one process; o.warmup runs
// not counted, then o.repeat runs into `runs` (and, with o.probe_copies, the
// copy rates probed before each into `probes`).
Status RunReal(const engine::Workload& w, const traces::Profile& profile, const engine::Policy& policy,
               const FidelityOptions& o, std::vector<RecordedRun>& runs, std::vector<CopyRates>& probes,
               std::string& first_timeline) {
  // One device for every run, as a GPU's VRAM is the same between runs: a
  // fresh emulated device per run would fault in its capacity each time and
  // take the host memory the previous run freed.
  RESIDENCY_ASSIGN_OR_RETURN(std::unique_ptr<device::DeviceBackend> device,
                             device::MakeResidentHostDevice(o.device_bytes));
  // A bar on a terminal only: each real run takes seconds to minutes.
  sweep::ProgressLine bar(stderr, "real runs", sweep::OffTerminal::kNothing);
  const auto total = static_cast<std::size_t>(o.warmup + o.repeat);
  for (int run = -o.warmup; run < o.repeat; ++run) {  // run < 0: a warm-up, not counted
    bar.Update(static_cast<std::size_t>(run + o.warmup), total, run < 0 ? "(warm-up)" : "");
    for (const Op& op : w.ops)
      for (const engine::FileSpec& f : op.files) DropFromPageCache(ModelPath(o.models_dir, f.path));
    if (o.probe_copies && run >= 0) {
      RESIDENCY_ASSIGN_OR_RETURN(CopyRates c, MeasureCopyRates(*device, kCopyProbeBytes, kCopyProbePasses));
      probes.push_back(c);
    }
    executor::RunOptions ro;
    ro.models_dir = o.models_dir;
    ro.time_scale = 0;
    ro.check_invariants = false;  // measured time is the machine's, not the checker's
    ro.record_timeline = o.timelines && run == 0;
    RESIDENCY_ASSIGN_OR_RETURN(executor::RunResult real,
                               executor::RunWorkload(w, profile.Limits(), policy, *device, ro));
    if (!real.tally.failed_ops.empty() || !real.violations.empty())
      return FailedPrecondition(w.name + ": the real run did not finish cleanly: " +
                                (real.tally.failed_ops.empty() ? real.violations.front() : real.tally.failed_ops.front()));
    // The next run starts on this device, so it must start empty.
    if (device->used_bytes() != 0)
      return Internal(w.name + ": " + (run < 0 ? "warm-up run " + std::to_string(run + o.warmup + 1)
                                               : "real run " + std::to_string(run + 1)) +
                      " left " + std::to_string(device->used_bytes()) + " device bytes allocated");
    if (ro.record_timeline) first_timeline = TimelineJson(RealRunPicture(real, w, profile.name, policy.name));
    if (run >= 0) runs.push_back({real.wall_ns, RealPromptWalls(w, real), std::move(real.tally.command_times)});
  }
  bar.Update(total, total, "");
  bar.Finish();
  return Status::Ok();
}

double Percentile(std::vector<double> v, double p) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  const double pos = p / 100.0 * static_cast<double>(v.size() - 1);
  const auto lo = static_cast<std::size_t>(std::floor(pos));
  const auto hi = std::min(lo + 1, v.size() - 1);
  return v[lo] + (v[hi] - v[lo]) * (pos - static_cast<double>(lo));
}

// A prompt the error statistics count: it loaded something, in `pass` (0: either).
bool Counted(const PromptComparison& p, int pass) { return !p.no_load && (pass == 0 || p.pass == pass); }

std::vector<double> AbsErrors(const FidelityReport& r, int pass) {
  std::vector<double> e;
  for (const PromptComparison& p : r.prompts)
    if (Counted(p, pass)) e.push_back(std::fabs(p.error));
  return e;
}

std::vector<double> RealVsRealErrors(const FidelityReport& r, int pass) {
  std::vector<double> e;
  for (const PromptComparison& p : r.prompts)
    if (Counted(p, pass)) e.insert(e.end(), p.real_vs_real.begin(), p.real_vs_real.end());
  return e;
}

// Each run against the median of the others (leave-one-out), from 3 runs up.
std::vector<double> LeaveOneOutErrors(const std::vector<double>& walls) {
  std::vector<double> e;
  if (walls.size() < 3) return e;
  for (std::size_t i = 0; i < walls.size(); ++i) {
    std::vector<double> others;
    for (std::size_t j = 0; j < walls.size(); ++j)
      if (j != i) others.push_back(walls[j]);
    const double m = Percentile(others, 50);
    if (m > 0) e.push_back(std::fabs(walls[i] - m) / m);
  }
  return e;
}

int PassOf(int prompt) { return prompt >= 1000 ? 2 : 1; }

// Per pass, or per prompt with `by_prompt`.
std::vector<KindComparison> CompareKinds(const engine::CommandTimesByPrompt& real,
                                         const engine::CommandTimesByPrompt& sim, bool by_prompt) {
  std::map<std::pair<int, engine::CommandKind>, KindComparison> by;
  auto add = [&](const engine::CommandTimesByPrompt& side, bool is_real) {
    for (const auto& [prompt, times] : side) {
      for (const auto& [kind, t] : times) {
        KindComparison& k = by[{by_prompt ? prompt : PassOf(prompt), kind}];
        k.pass = PassOf(prompt);
        k.prompt = by_prompt ? prompt % 1000 : 0;
        k.kind = kind;
        engine::CommandTime& into = is_real ? k.real : k.sim;
        into.count += t.count;
        into.bytes += t.bytes;
        into.busy_ns += t.busy_ns;
      }
    }
  };
  add(real, true);
  add(sim, false);
  std::vector<KindComparison> out;
  for (auto& [key, k] : by) out.push_back(k);
  return out;
}

}  // namespace

Result<engine::Workload> ScaleForFidelity(const engine::Workload& w, double scale, int passes) {
  if (!(scale > 0 && scale <= 1)) return InvalidArgument("--scale must be in (0, 1]");
  if (passes < 1) return InvalidArgument("passes must be >= 1");
  engine::Workload out;
  out.name = w.name;
  std::vector<Op> body;
  int max_prompt = 0;
  for (Op op : w.ops) {
    if (op.kind == OpKind::kDelete && passes > 1)
      return InvalidArgument(w.name + ": a trace that deletes models cannot be run twice (cold, then warm)");
    for (engine::FileSpec& f : op.files) {
      Bytes sum = 0;
      if (f.tensor_bytes.empty()) f.tensor_bytes = {f.bytes};
      for (Bytes& t : f.tensor_bytes) sum += (t = Scaled(t, scale));
      f.bytes = sum;
    }
    op.device_bytes = Scaled(op.device_bytes, scale);
    op.activation_bytes = Scaled(op.activation_bytes, scale);
    op.patched_bytes = Scaled(op.patched_bytes, scale);
    op.step_ns = 0;
    op.measured_wall_ns = -1;
    max_prompt = std::max(max_prompt, op.prompt);
    if (op.kind == OpKind::kRegisterModel) {
      out.ops.push_back(op);
    } else {
      body.push_back(op);
    }
  }
  const int stride = ((max_prompt / 1000) + 1) * 1000;  // pass 2's prompt 3 is 1003
  for (int pass = 0; pass < passes; ++pass) {
    for (Op op : body) {
      if (op.kind == OpKind::kPromptBegin || op.kind == OpKind::kPromptEnd) op.prompt += pass * stride;
      out.ops.push_back(op);
    }
  }
  for (std::size_t i = 0; i < out.ops.size(); ++i) out.ops[i].id = static_cast<engine::OpId>(i + 1);
  return out;
}

Status EnsureModelFiles(const engine::Workload& w, const std::string& dir) {
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) return FailedPrecondition(dir + ": cannot create: " + ec.message());
  for (const Op& op : w.ops) {
    if (op.kind != OpKind::kRegisterModel) continue;
    for (std::size_t i = 0; i < op.files.size(); ++i) {
      const engine::FileSpec& f = op.files[i];
      const std::string path = ModelPath(dir, f.path);
      if (fs::exists(path, ec) && static_cast<Bytes>(fs::file_size(path, ec)) == f.bytes) continue;
      RESIDENCY_ASSIGN_OR_RETURN(auto specs, safetensors::FitToFileSize(f.path, f.tensor_bytes, f.bytes));
      RESIDENCY_RETURN_IF_ERROR(safetensors::WriteFile(path, specs, 1000003 + i));
    }
  }
  return Status::Ok();
}

Result<FidelityReport> RunFidelity(const engine::Workload& original, const traces::Profile& calibrated,
                                   const engine::Policy& policy, const FidelityOptions& o) {
  RESIDENCY_ASSIGN_OR_RETURN(engine::Workload w, ScaleForFidelity(original, o.scale, 2));
  if (!o.recorded_real_runs) RESIDENCY_RETURN_IF_ERROR(EnsureModelFiles(w, o.models_dir));
  traces::Profile profile = calibrated;
  profile.vram_bytes = static_cast<Bytes>(o.device_bytes);
  profile.unified = false;

  RecordedRuns recorded;
  if (o.recorded_real_runs) {
    if (o.probe_copies) return InvalidArgument("--copy-probe needs real runs; it cannot be used with recorded ones");
    RESIDENCY_ASSIGN_OR_RETURN(recorded, CheckRecordedRuns(*o.recorded_real_runs, w, original.name, policy.name, o));
  } else {
    recorded.trace = original.name;
    recorded.policy = policy.name;
    recorded.scale = o.scale;
    recorded.device_bytes = o.device_bytes;
    recorded.warmup = o.warmup;
  }

  if (o.repeat < 1) return InvalidArgument("--repeat must be >= 1");
  if (o.warmup < 0) return InvalidArgument("--warmup must be >= 0");
  std::vector<CopyRates> probes;
  std::string real_timeline;
  if (!o.recorded_real_runs) {
    RESIDENCY_RETURN_IF_ERROR(RunReal(w, profile, policy, o, recorded.runs, probes, real_timeline));
    if (o.on_real_runs) RESIDENCY_RETURN_IF_ERROR(o.on_real_runs(recorded));
  }
  const std::vector<RecordedRun>& reals = recorded.runs;
  // The run with the median wall time stands for the command breakdown.
  std::vector<std::size_t> order(reals.size());
  for (std::size_t i = 0; i < order.size(); ++i) order[i] = i;
  std::sort(order.begin(), order.end(), [&](std::size_t a, std::size_t b) { return reals[a].wall_ns < reals[b].wall_ns; });
  const RecordedRun& median_run = reals[order[order.size() / 2]];
  // Simulated: the same workload on the calibrated profile (cold start),
  // with the copy rates probed on the real runs' devices where asked.
  FidelityReport rep;
  if (!probes.empty()) {
    auto median_of = [&](double CopyRates::*field) {
      std::vector<double> v;
      for (const CopyRates& c : probes) v.push_back(c.*field);
      return Percentile(v, 50);
    };
    rep.probed_h2d_pinned = median_of(&CopyRates::h2d_pinned);
    rep.probed_h2d_pageable = median_of(&CopyRates::h2d_pageable);
    rep.probed_d2h = median_of(&CopyRates::d2h);
    profile.pcie_h2d_pinned_bytes_per_second = static_cast<Bytes>(rep.probed_h2d_pinned);
    profile.pcie_h2d_pageable_bytes_per_second = static_cast<Bytes>(rep.probed_h2d_pageable);
    profile.pcie_d2h_bytes_per_second = static_cast<Bytes>(rep.probed_d2h);
  }
  sim::SimOptions so;
  so.record_timeline = o.timelines;
  RESIDENCY_ASSIGN_OR_RETURN(sim::SimResult simulated, sim::Simulate(w, profile, policy, so));
  if (o.timelines) {
    rep.real_timeline_json = std::move(real_timeline);
    rep.sim_timeline_json = TimelineJson(simulated);
  }

  rep.trace = original.name;
  rep.policy = policy.name;
  rep.scale = o.scale;
  std::map<int, std::vector<double>> walls;
  for (const RecordedRun& real : reals)
    for (const auto& [prompt, wall] : real.prompt_walls) walls[prompt].push_back(static_cast<double>(wall));
  int max_prompt = 0;
  for (const sim::PromptTiming& p : simulated.prompts) max_prompt = std::max(max_prompt, p.prompt);
  for (const sim::PromptTiming& p : simulated.prompts) {
    const auto it = walls.find(p.prompt);
    if (it == walls.end() || it->second.size() != reals.size()) continue;
    const double median = Percentile(it->second, 50);
    if (median <= 0) continue;
    PromptComparison c;
    c.pass = PassOf(p.prompt);
    c.prompt = p.prompt % 1000;
    c.real_ns = static_cast<Nanos>(median);
    c.real_spread = (*std::max_element(it->second.begin(), it->second.end()) -
                     *std::min_element(it->second.begin(), it->second.end())) / median;
    c.real_vs_real = LeaveOneOutErrors(it->second);
    c.sim_ns = p.wall_ns();
    c.error = static_cast<double>(c.sim_ns - c.real_ns) / static_cast<double>(c.real_ns);
    c.no_load = c.real_ns < 20'000'000 && c.sim_ns < 20'000'000;
    rep.real_total_ns += c.real_ns;
    rep.sim_total_ns += c.sim_ns;
    rep.prompts.push_back(c);
  }
  if (rep.prompts.empty()) return FailedPrecondition(w.name + ": no prompts to compare");
  rep.kinds = CompareKinds(median_run.command_times, simulated.tally.command_times, false);
  rep.prompt_kinds = CompareKinds(median_run.command_times, simulated.tally.command_times, true);
  rep.repeat = static_cast<int>(reals.size());
  rep.real_runs = std::move(recorded);
  return rep;
}

double MedianAbsError(const FidelityReport& r, int pass) { return Percentile(AbsErrors(r, pass), 50); }
double P95AbsError(const FidelityReport& r, int pass) { return Percentile(AbsErrors(r, pass), 95); }

double MedianRealVsRealError(const FidelityReport& r, int pass) { return Percentile(RealVsRealErrors(r, pass), 50); }
double P95RealVsRealError(const FidelityReport& r, int pass) { return Percentile(RealVsRealErrors(r, pass), 95); }

double MedianRealSpread(const FidelityReport& r) {
  std::vector<double> s;
  for (const PromptComparison& p : r.prompts)
    if (Counted(p, 0)) s.push_back(p.real_spread);
  return Percentile(s, 50);
}

namespace {

// "median 12.3% / p95 45.6%", or what the pass lacks: a pass in which no
// prompt loaded anything has no error to show, not an error of 0.0 %.
std::string MedianAndP95(const std::vector<double>& errors) {
  if (errors.empty()) return "none (no prompt loaded anything)";
  char text[64];
  std::snprintf(text, sizeof text, "median %.1f%% / p95 %.1f%%", 100 * Percentile(errors, 50),
                100 * Percentile(errors, 95));
  return text;
}

}  // namespace

std::string FormatFidelity(const FidelityReport& r) {
  std::string out;
  char line[256];
  std::snprintf(line, sizeof line, "fidelity of '%s' under %s at scale %.3g (load phase: compute steps take no time)\n",
                r.trace.c_str(), r.policy.c_str(), r.scale);
  out += line;
  const bool repeated = r.repeat > 1;
  std::snprintf(line, sizeof line, "%-6s %6s %12s %12s %9s%s\n", "pass", "prompt", repeated ? "real median" : "real",
                "simulated", "error", repeated ? "  real spread" : "");
  out += line;
  for (const PromptComparison& p : r.prompts) {
    char err[32];
    std::snprintf(err, sizeof err, p.no_load ? "no load" : "%+8.1f%%", 100 * p.error);
    char spread[32] = "";
    if (repeated) std::snprintf(spread, sizeof spread, "  %10.1f%%", 100 * p.real_spread);
    std::snprintf(line, sizeof line, "%-6s %6d %12s %12s %9s%s\n", p.pass == 1 ? "cold" : "warm", p.prompt,
                  HumanDuration(p.real_ns).c_str(), HumanDuration(p.sim_ns).c_str(), err, spread);
    out += line;
  }
  const double total = static_cast<double>(r.sim_total_ns - r.real_total_ns) / static_cast<double>(r.real_total_ns);
  std::snprintf(line, sizeof line, "total: real %s, simulated %s (%+.1f%%); |error| %s (cold %s, warm %s)\n",
                HumanDuration(r.real_total_ns).c_str(), HumanDuration(r.sim_total_ns).c_str(), 100 * total,
                MedianAndP95(AbsErrors(r, 0)).c_str(), MedianAndP95(AbsErrors(r, 1)).c_str(),
                MedianAndP95(AbsErrors(r, 2)).c_str());
  out += line;
  if (repeated) {
    std::snprintf(line, sizeof line,
                  "real runs: %d (after %d warm-up run(s), not counted); median spread between them %.1f%% (the "
                  "machine's own noise, a floor for the error)\n",
                  r.repeat, r.real_runs.warmup, 100 * MedianRealSpread(r));
    out += line;
  }
  if (r.repeat >= 3) {
    std::snprintf(line, sizeof line,
                  "real against real (each run against the median of the others): |error| %s (cold %s, warm %s)\n",
                  MedianAndP95(RealVsRealErrors(r, 0)).c_str(), MedianAndP95(RealVsRealErrors(r, 1)).c_str(),
                  MedianAndP95(RealVsRealErrors(r, 2)).c_str());
    out += line;
  }
  if (r.probed_h2d_pinned > 0) {
    std::snprintf(line, sizeof line,
                  "device copies as probed on the real runs' devices (median), used by the simulation: host->device "
                  "%.2f GB/s pinned, %.2f pageable; device->host %.2f\n",
                  r.probed_h2d_pinned / 1e9, r.probed_h2d_pageable / 1e9, r.probed_d2h / 1e9);
    out += line;
  }
  out += "where the time went (issue to completion, summed over commands; kinds over 1 ms on either side):\n";
  std::snprintf(line, sizeof line, "%-6s %-16s %8s %8s %10s %12s %12s %8s\n", "pass", "command", "n real", "n sim",
                "bytes", "real", "simulated", "sim/real");
  out += line;
  for (const KindComparison& k : r.kinds) {
    if (k.real.busy_ns < 1'000'000 && k.sim.busy_ns < 1'000'000) continue;
    char ratio[32] = "-";
    if (k.real.busy_ns > 0)
      std::snprintf(ratio, sizeof ratio, "%.2f", static_cast<double>(k.sim.busy_ns) / static_cast<double>(k.real.busy_ns));
    std::snprintf(line, sizeof line, "%-6s %-16s %8lld %8lld %10s %12s %12s %8s\n", k.pass == 1 ? "cold" : "warm",
                  std::string(engine::ToString(k.kind)).c_str(), static_cast<long long>(k.real.count),
                  static_cast<long long>(k.sim.count), HumanBytes(k.real.bytes).c_str(), HumanDuration(k.real.busy_ns).c_str(),
                  HumanDuration(k.sim.busy_ns).c_str(), ratio);
    out += line;
  }
  return out;
}

std::string FidelityJson(const FidelityReport& r) {
  nlohmann::ordered_json j;
  j["trace"] = r.trace;
  j["policy"] = r.policy;
  j["scale"] = r.scale;
  j["repeat"] = r.repeat;
  j["warmup"] = r.real_runs.warmup;
  j["real_total_ns"] = r.real_total_ns;
  j["sim_total_ns"] = r.sim_total_ns;
  if (r.probed_h2d_pinned > 0)
    j["probed_copy_bytes_per_second"] = {
        {"h2d_pinned", r.probed_h2d_pinned}, {"h2d_pageable", r.probed_h2d_pageable}, {"d2h", r.probed_d2h}};
  j["prompts"] = nlohmann::ordered_json::array();
  for (const PromptComparison& p : r.prompts)
    j["prompts"].push_back({{"pass", p.pass == 1 ? "cold" : "warm"}, {"prompt", p.prompt}, {"real_ns", p.real_ns},
                            {"sim_ns", p.sim_ns}, {"error", p.error}, {"no_load", p.no_load},
                            {"real_spread", p.real_spread}, {"real_vs_real", p.real_vs_real}});
  auto kinds = [](const std::vector<KindComparison>& list) {
    nlohmann::ordered_json a = nlohmann::ordered_json::array();
    for (const KindComparison& k : list) {
      nlohmann::ordered_json e = {{"pass", k.pass == 1 ? "cold" : "warm"}};
      if (k.prompt) e["prompt"] = k.prompt;
      e.update({{"command", std::string(engine::ToString(k.kind))}, {"real_count", k.real.count},
                {"sim_count", k.sim.count}, {"bytes", k.real.bytes}, {"real_ns", k.real.busy_ns},
                {"sim_ns", k.sim.busy_ns}});
      a.push_back(e);
    }
    return a;
  };
  j["kinds"] = kinds(r.kinds);
  j["prompt_kinds"] = kinds(r.prompt_kinds);
  return j.dump(2) + "\n";
}

}  // namespace residency::harness
