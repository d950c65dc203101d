// `residency run`: a trace executed for real (files, threads, host memory,
// a device) by the same engine `replay` simulates; --capture writes the run
// back as a trace with measured timings.
#include <cstdio>
#include <memory>

#include "harness/cli/cli.h"
#include "harness/cli/device_choice.h"
#include "harness/fidelity/real_run_capture.h"
#include "harness/metrics/run_sample.h"
#include "harness/report/real_timeline.h"
#include "harness/report/report.h"
#include "runtime/executor/real_executor.h"
#include "traces/bundled.h"
#include "traces/trace.h"

namespace residency::cli {
namespace {

struct RunArgs {
  std::string trace, models, device = "host", capture, profile, policy = "ram-lru", metrics_file, timeline;
  std::size_t device_capacity = 4ull << 30;
  double time_scale = 1.0;
};

int RunRun(const RunArgs& a) {
  auto trace = traces::ReadTraceFile(a.trace);
  if (!trace.ok()) return Fail(trace.status());
  auto workload = traces::ToWorkload(trace.value(), a.trace);
  if (!workload.ok()) return Fail(workload.status());
  auto policy = traces::LoadPolicy(a.policy);
  if (!policy.ok()) return Fail(policy.status());
  engine::MachineLimits machine = fidelity::ThisMachine(a.device_capacity);
  std::uint64_t capacity = a.device_capacity;
  if (!a.profile.empty()) {
    auto profile = traces::LoadProfile(a.profile);
    if (!profile.ok()) return Fail(profile.status());
    machine = profile->Limits();
    capacity = static_cast<std::uint64_t>(machine.device_bytes);
  }
  if (Status room = CheckDeviceRoom(machine, policy.value()); !room.ok()) return Fail(room);
  auto device = MakeDevice(a.device, capacity);
  if (!device.ok()) return Fail(device.status());
  executor::RunOptions options;
  options.models_dir = a.models;
  options.time_scale = a.time_scale;
  options.record_timeline = !a.timeline.empty();
  std::fprintf(stderr, "running %s on %s with policy %s...\n", a.trace.c_str(),
               device.value()->name().c_str(), policy->name.c_str());
  auto result = executor::RunWorkload(workload.value(), machine, policy.value(), *device.value(), options);
  if (!result.ok()) return Fail(result.status());
  const executor::RunResult& r = result.value();

  std::printf("run %s: %zu ops, %llu commands, wall %s\n", trace->header.name.c_str(),
              workload->ops.size(), static_cast<unsigned long long>(r.tally.commands),
              harness::HumanDuration(r.wall_ns).c_str());
  std::printf("  read %s from model files, %s host->device, %s device->host, %s spilled\n",
              harness::HumanBytes(r.tally.disk_read_bytes).c_str(),
              harness::HumanBytes(r.tally.h2d_bytes).c_str(),
              harness::HumanBytes(r.tally.d2h_bytes).c_str(),
              harness::HumanBytes(r.tally.spill_write_bytes).c_str());
  std::printf("  peak host %s, peak pinned %s, peak device %s, finalizers %lld, pin fallbacks %lld\n",
              harness::HumanBytes(r.tally.peak_host_bytes).c_str(),
              harness::HumanBytes(r.tally.peak_pinned_bytes).c_str(),
              harness::HumanBytes(r.tally.peak_device_bytes).c_str(),
              static_cast<long long>(r.tally.finalizers), static_cast<long long>(r.tally.pin_fallbacks));
  std::printf("  decisions:");
  for (const auto& [kind, count] : r.tally.notices)
    std::printf(" %s=%lld", std::string(engine::ToString(kind)).c_str(), static_cast<long long>(count));
  std::printf("\n");
  const traces::Trace captured = fidelity::CapturedTrace(trace.value(), r);
  for (const traces::TraceEvent& e : captured.events)
    if (e.type == traces::EventType::kPromptEnd && e.measured_wall_ns >= 0)
      std::printf("  prompt %d: %s\n", e.prompt, harness::HumanDuration(e.measured_wall_ns).c_str());
  for (const std::string& f : r.tally.failed_ops) std::printf("  FAILED %s\n", f.c_str());
  for (const std::string& v : r.violations) std::printf("  INVARIANT %s\n", v.c_str());
  if (!a.capture.empty()) {
    if (!WriteTextFile(a.capture, traces::WriteTrace(captured))) return 2;
    std::fprintf(stderr, "captured trace written to %s (replay it with `residency replay`)\n",
                 a.capture.c_str());
  }
  if (!a.timeline.empty()) {
    const sim::SimResult picture = harness::RealRunPicture(r, workload.value(),
                                                           a.profile.empty() ? "this-machine" : a.profile, policy->name);
    if (!WriteTextFile(a.timeline, harness::TimelineJson(picture))) return 2;
    std::fprintf(stderr, "timeline written to %s (open it in ui.perfetto.dev)\n", a.timeline.c_str());
  }
  if (!a.metrics_file.empty()) {
    const std::string profile = a.profile.empty() ? "this-machine" : a.profile;
    if (!WriteTextFile(a.metrics_file, metrics::RealRunMetricsText(r, workload.value(), profile, policy->name))) return 2;
    std::fprintf(stderr, "metrics written to %s\n", a.metrics_file.c_str());
  }
  return r.tally.failed_ops.empty() && r.violations.empty() ? 0 : 1;
}

}  // namespace

Subcommand AddRun(CLI::App& app) {
  auto a = std::make_shared<RunArgs>();
  CLI::App* c = app.add_subcommand("run", "Execute a trace for real on model files (see gen-model)");
  c->add_option("trace", a->trace, "Trace file (JSON Lines)")->required();
  c->add_option("--models", a->models, "Directory holding the trace's model files")->required();
  c->add_option("--device", a->device, "host (emulated device) or cuda")
      ->check(CLI::IsMember({"host", "cuda"}))->capture_default_str();
  c->add_option("--device-capacity", a->device_capacity, "Emulated device size without --profile")
      ->transform(ByteSize())->capture_default_str();
  c->add_option("--profile", a->profile, "Take RAM/VRAM limits from this profile instead of this machine");
  c->add_option("--policy", a->policy, "Bundled policy name or policy JSON file")->capture_default_str();
  c->add_option("--time-scale", a->time_scale, "Multiply compute step durations (0: no waiting)")
      ->capture_default_str()->check(CLI::NonNegativeNumber);
  c->add_option("--capture", a->capture, "Write the run as a trace with measured timings");
  c->add_option("--timeline", a->timeline,
                "Write the run as a Chrome/Perfetto timeline, in replay --timeline's tracks");
  c->add_option("--metrics-file", a->metrics_file,
                "Write the run's Prometheus metrics (the agent's names, source=\"real\") to this file");
  return {c, [a] { return RunRun(*a); }};
}

}  // namespace residency::cli
