// `residency fidelity TRACE --models DIR`: real run vs simulation on this
// machine (harness/fidelity/fidelity.h).
#include <filesystem>
#include <iostream>
#include <memory>

#include "harness/calibrate/calibrate.h"
#include "harness/fidelity/captured_fidelity.h"
#include "harness/report/replay.h"
#include "harness/cli/cli.h"
#include "harness/fidelity/fidelity.h"
#include "harness/report/real_timeline.h"
#include "runtime/device/device_backend.h"
#include "traces/bundled.h"
#include "traces/json_fields.h"
#include "traces/trace.h"
#include "runtime/io/whole_file.h"

namespace residency::cli {
namespace {

struct FidelityArgs {
  std::string trace, profile, policy, save_real_runs, real_runs, timeline_dir;
  bool json = false, captured = false;
  harness::FidelityOptions options;
};

// --captured: the capture was the real run; simulate it on its own machine.
int RunCapturedFidelity(const FidelityArgs& a) {
  harness::ReplayRequest request;
  request.trace_path = a.trace;
  request.profile = a.profile.empty() ? "captured" : a.profile;
  request.policy = a.policy.empty() ? "captured" : a.policy;
  request.record_timeline = false;
  std::vector<std::string> warnings;
  auto r = harness::Replay(request, &warnings);
  if (!r.ok()) return Fail(r.status());
  PrintWarnings(warnings);
  const harness::CapturedFidelity f = harness::CompareCaptured(*r);
  std::cout << (a.json ? harness::CapturedFidelityJson(f) : harness::FormatCapturedFidelity(f));
  return 0;
}

// --timeline DIR: the first counted real run, the simulation, and both in
// one file, one process track each, so a person sees where they part.
int WriteFidelityTimelines(const std::string& dir, const harness::FidelityReport& r) {
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec) {
    std::cerr << "residency: --timeline: cannot create " << dir << ": " << ec.message() << "\n";
    return 2;
  }
  const std::filesystem::path d(dir);
  if (!WriteTextFile((d / "simulated.json").string(), r.sim_timeline_json)) return 2;
  if (r.real_timeline_json.empty()) {
    std::cerr << "timeline of the simulation written to " << (d / "simulated.json").string()
              << "; none of the real runs (--real-runs gives their times, not their timelines)\n";
    return 0;
  }
  if (!WriteTextFile((d / "real.json").string(), r.real_timeline_json)) return 2;
  if (!WriteTextFile((d / "side-by-side.json").string(),
                     harness::TimelinesSideBySide(r.real_timeline_json, r.sim_timeline_json)))
    return 2;
  std::cerr << "timelines written to " << dir << ": real.json, simulated.json and side-by-side.json "
            << "(open it in ui.perfetto.dev: the real run above the simulated one)\n";
  return 0;
}

int RunFidelityCommand(FidelityArgs& a) {
  if (a.captured) {
    if (!a.options.models_dir.empty() || !a.real_runs.empty() || !a.save_real_runs.empty()) {
      std::cerr << "residency: --captured compares the trace's own captured times; it takes no --models, "
                   "--real-runs or --save-real-runs\n";
      return 2;
    }
    return RunCapturedFidelity(a);
  }
  auto workload = traces::ReadWorkloadFile(a.trace);
  if (!workload.ok()) return Fail(workload.status());
  auto policy = traces::LoadPolicy(a.policy.empty() ? "ram-lru" : a.policy);
  if (!policy.ok()) return Fail(policy.status());
  if (a.options.models_dir.empty() && (a.real_runs.empty() || a.profile.empty())) {
    std::cerr << "residency: --models is required (it may be left out only with both --real-runs and --profile)\n";
    return 2;
  }
  std::string profile_path = a.profile;
  if (profile_path.empty()) {
    // Calibrate once per models folder: the disk measured is the one the models live on.
    profile_path = (std::filesystem::path(a.options.models_dir) / "calibrated.json").string();
    if (!std::filesystem::exists(profile_path)) {
      std::filesystem::create_directories(a.options.models_dir);
      std::cerr << "calibrating this machine into " << profile_path << " ...\n";
      harness::CalibrateOptions co;
      co.dir = a.options.models_dir;
      auto device = device::MakeHostDevice(co.memory_bytes);
      auto p = harness::Calibrate(co, device.get(), [](const std::string& l) { std::cerr << "  " << l << "\n"; });
      if (!p.ok()) return Fail(p.status());
      if (!WriteTextFile(profile_path, traces::WriteProfile(*p))) return 2;
    }
  }
  auto profile = traces::LoadProfile(profile_path);
  if (!profile.ok()) return Fail(profile.status());
  if (!a.real_runs.empty()) {
    auto text = io::ReadWholeFile(a.real_runs);
    if (!text.ok()) return Fail(text.status());
    auto runs = harness::ParseRecordedRuns(*text, a.real_runs);
    if (!runs.ok()) return Fail(runs.status());
    std::cerr << "simulating " << a.trace << " against " << runs->runs.size() << " recorded real run(s) from "
              << a.real_runs << " (scale " << a.options.scale << ")...\n";
    a.options.recorded_real_runs = std::move(*runs);
  } else {
    std::cerr << "running " << a.trace << " for real and in the simulator (scale " << a.options.scale << ")...\n";
  }
  if (!a.save_real_runs.empty()) {
    a.options.on_real_runs = [&a](const harness::RecordedRuns& runs) {
      if (!WriteTextFile(a.save_real_runs, harness::WriteRecordedRuns(runs)))
        return FailedPrecondition("--save-real-runs: the real runs were not saved");
      std::cerr << "real runs saved to " << a.save_real_runs << " (simulate against them with --real-runs)\n";
      return Status::Ok();
    };
  }
  a.options.timelines = !a.timeline_dir.empty();
  auto report = harness::RunFidelity(*workload, *profile, *policy, a.options);
  if (!report.ok()) return Fail(report.status());
  std::cout << (a.json ? harness::FidelityJson(*report) : harness::FormatFidelity(*report));
  if (!a.timeline_dir.empty()) return WriteFidelityTimelines(a.timeline_dir, *report);
  return 0;
}

}  // namespace

Subcommand AddFidelity(CLI::App& app) {
  auto a = std::make_shared<FidelityArgs>();
  CLI::App* c = app.add_subcommand("fidelity", "Run a trace for real and in the simulator; per-prompt error");
  c->add_option("trace", a->trace, "Trace file (JSON Lines)")->required();
  c->add_option("--models", a->options.models_dir,
                "Folder for the scaled model files (written if missing); not needed with --real-runs and --profile");
  c->add_option("--profile", a->profile, "Calibrated profile (default: calibrate into MODELS/calibrated.json)");
  c->add_option("--policy", a->policy,
                "Bundled policy name or policy JSON file (default: ram-lru; with --captured, 'captured': the "
                "server's own settings from the trace header, docs/CAPTURE.md)");
  c->add_option("--scale", a->options.scale, "Multiply every byte count so the trace fits this machine")
      ->capture_default_str();
  c->add_option("--repeat", a->options.repeat, "Real runs; each prompt compares against their median and the "
                 "spread between them is reported as the machine's noise")
      ->check(CLI::Range(1, 100))->capture_default_str();
  c->add_option("--warmup", a->options.warmup, "Real runs before the counted ones, not counted (a process's first "
                 "run may fault fresh memory in from a VM's hypervisor)")
      ->check(CLI::Range(0, 10))->capture_default_str();
  c->add_flag("--captured", a->captured,
              "TRACE was captured in a real server: compare its prompt times with the simulator's on --profile "
              "(default: captured, built from the trace's machine record); no real run");
  c->add_flag("--json", a->json, "Print one JSON object (every prompt, with each real run's error against the others)");
  c->add_flag("--copy-probe", a->options.probe_copies,
              "Simulate with copy rates probed on each real run's device instead of the profile's");
  c->add_option("--save-real-runs", a->save_real_runs, "Write the real runs' times to this file");
  c->add_option("--timeline", a->timeline_dir,
                "Write DIR/real.json (the first counted real run), DIR/simulated.json and DIR/side-by-side.json "
                "(both as Perfetto process tracks)");
  c->add_option("--real-runs", a->real_runs,
                "Simulate against real runs saved by --save-real-runs instead of running the trace")
      ->check(CLI::ExistingFile);
  c->add_option("--device-capacity", a->options.device_bytes, "Emulated device size, real and simulated")
      ->transform(ByteSize())->capture_default_str();
  return {c, [a] { return RunFidelityCommand(*a); }};
}

}  // namespace residency::cli
