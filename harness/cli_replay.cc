// `residency replay`: a trace through the engine inside the simulator.
#include <iostream>
#include <memory>

#include "harness/cli.h"
#include "harness/replay.h"
#include "harness/report.h"

namespace residency::cli {
namespace {

struct ReplayArgs {
  harness::ReplayRequest request;
  std::vector<std::string> compare;
  bool json = false;
  std::string timeline, svg, event_log;
};

int RunReplay(ReplayArgs& a) {
  a.request.keep_event_log = !a.event_log.empty();
  auto result = harness::Replay(a.request);
  if (!result.ok()) return Fail(result.status());
  const auto& r = result.value();
  if (!a.timeline.empty() && !WriteTextFile(a.timeline, harness::TimelineJson(r))) return 2;
  if (!a.svg.empty() && !WriteTextFile(a.svg, harness::MemorySvg(r))) return 2;
  if (!a.event_log.empty()) {
    std::string text;
    for (const std::string& line : r.event_log) text += line + "\n";
    if (!WriteTextFile(a.event_log, text)) return 2;
  }
  if (a.json) {
    std::cout << harness::ResultJson(r).dump(2) << "\n";
  } else if (!a.compare.empty()) {
    std::cout << harness::FormatReport(r) << "\n";
    for (const std::string& other : a.compare) {
      harness::ReplayRequest second = a.request;
      second.policy = other;
      auto b = harness::Replay(second);
      if (!b.ok()) return Fail(b.status());
      std::cout << "Side by side\n" << harness::FormatComparison(r, b.value()) << "\n";
    }
  } else {
    std::cout << harness::FormatReport(r);
  }
  if (!a.timeline.empty()) std::cerr << "timeline written to " << a.timeline << " (open in ui.perfetto.dev)\n";
  if (!a.svg.empty()) std::cerr << "memory picture written to " << a.svg << "\n";
  if (!r.violations.empty()) return 1;
  // A prompt that failed (an infeasible load, say) is the run's answer, not
  // bad input: exit 3, so a script can tell it from a clean run.
  for (const sim::PromptTiming& p : r.prompts)
    if (p.failed()) return 3;
  if (r.oom.happened) return 3;  // the prompt it cut short failed too
  return 0;
}

}  // namespace

Subcommand AddReplay(CLI::App& app) {
  auto a = std::make_shared<ReplayArgs>();
  CLI::App* rp = app.add_subcommand("replay", "Replay a trace under a profile and policy in the simulator");
  rp->add_option("trace", a->request.trace_path, "Trace file (JSON Lines)")->required();
  rp->add_option("--profile", a->request.profile,
                 "Bundled profile name or profile JSON file; 'captured' (or 'captured:BASE') builds one from a "
                 "captured trace's machine record, 'auto' does so when the trace has one")
      ->capture_default_str();
  rp->add_option("--policy", a->request.policy, "Bundled policy name or policy JSON file")->capture_default_str();
  rp->add_option("--compare", a->compare, "Also run these policies and print them side by side");
  rp->add_option("--seed", a->request.seed, "Seed for the simulator's random choices")->capture_default_str();
  a->request.max_wall_seconds = 600;
  rp->add_option("--max-wall", a->request.max_wall_seconds,
                 "Stop a run that takes longer than this many seconds of wall time (0: no limit; docs/LIMITS.md)")
      ->capture_default_str()
      ->check(CLI::NonNegativeNumber);
  rp->add_flag("--json", a->json, "Print one JSON object instead of the report");
  rp->add_option("--timeline", a->timeline, "Write a Chrome Trace Event timeline (Perfetto)");
  rp->add_option("--svg", a->svg, "Write an SVG picture of memory per tier");
  rp->add_option("--event-log", a->event_log, "Write the full event log, one line per event");
  return {rp, [a] { return RunReplay(*a); }};
}

}  // namespace residency::cli
