// `residency replay`: a trace through the engine inside the simulator.
#include <algorithm>
#include <cctype>
#include <iostream>
#include <memory>

#include <nlohmann/json.hpp>

#include "harness/cli/cli.h"
#include "harness/report/replay.h"
#include "harness/report/report.h"

namespace residency::cli {
namespace {

struct ReplayArgs {
  harness::ReplayRequest request;
  std::vector<std::string> compare;
  bool json = false;
  std::string timeline, svg, event_log;
};

// With --compare, files for the compared policies go beside the first
// one's: memory.svg -> memory.ram-lru.svg (the policy's name, made safe).
std::string PathFor(const std::string& path, std::size_t index, const std::string& policy) {
  if (index == 0) return path;
  std::string name;
  for (char ch : policy) name += std::isalnum(static_cast<unsigned char>(ch)) || ch == '-' || ch == '_' ? ch : '_';
  const std::size_t slash = path.find_last_of('/');
  const std::size_t dot = path.find_last_of('.');
  if (dot == std::string::npos || (slash != std::string::npos && dot < slash)) return path + "." + name;
  return path.substr(0, dot) + "." + name + path.substr(dot);
}

// 0 clean, 1 an invariant broke, 3 a prompt failed or the run died of OOM.
int ExitCode(const sim::SimResult& r) {
  if (!r.violations.empty()) return 1;
  // A prompt that failed (an infeasible load, say) is the run's answer, not
  // bad input: exit 3, so a script can tell it from a clean run.
  for (const sim::PromptTiming& p : r.prompts)
    if (p.failed()) return 3;
  return r.oom.happened ? 3 : 0;  // the prompt OOM cut short failed too
}

int RunReplay(ReplayArgs& a) {
  a.request.keep_event_log = !a.event_log.empty();
  // The first policy, then every --compare one: each gets its files and a
  // place in --json, not only the first.
  std::vector<std::string> policies = {a.request.policy};
  policies.insert(policies.end(), a.compare.begin(), a.compare.end());
  std::vector<sim::SimResult> runs;
  std::vector<std::string> written;
  for (std::size_t i = 0; i < policies.size(); ++i) {
    harness::ReplayRequest request = a.request;
    request.policy = policies[i];
    std::vector<std::string> warnings;
    auto result = harness::Replay(request, &warnings);
    if (!result.ok()) return Fail(result.status());
    PrintWarnings(warnings);
    const sim::SimResult& r = result.value();
    auto write = [&](const std::string& path, const std::string& text, const std::string& what) {
      if (path.empty()) return true;
      const std::string target = PathFor(path, i, r.policy);
      if (!WriteTextFile(target, text)) return false;
      written.push_back(what + " written to " + target + (policies.size() > 1 ? " (" + r.policy + ")" : ""));
      return true;
    };
    if (!write(a.timeline, a.timeline.empty() ? "" : harness::TimelineJson(r), "timeline") ||
        !write(a.svg, a.svg.empty() ? "" : harness::MemorySvg(r), "memory picture"))
      return 2;
    if (!a.event_log.empty()) {
      std::string text;
      for (const std::string& line : r.event_log) text += line + "\n";
      if (!write(a.event_log, text, "event log")) return 2;
    }
    runs.push_back(std::move(result).value());
  }
  if (a.json && runs.size() == 1) {
    std::cout << harness::ResultJson(runs.front()).dump(2) << "\n";
  } else if (a.json) {
    nlohmann::ordered_json all = nlohmann::ordered_json::array();  // one object per policy, --policy first
    for (const sim::SimResult& r : runs) all.push_back(harness::ResultJson(r));
    std::cout << all.dump(2) << "\n";
  } else {
    std::cout << harness::FormatReport(runs.front());
    for (std::size_t i = 1; i < runs.size(); ++i)
      std::cout << "\nSide by side\n" << harness::FormatComparison(runs.front(), runs[i]);
    if (runs.size() > 1) std::cout << "\n";
  }
  for (const std::string& w : written) std::cerr << w << "\n";
  if (!a.timeline.empty()) std::cerr << "open a timeline in ui.perfetto.dev\n";
  // A broken invariant in any run outranks a failed prompt in another.
  int code = 0;
  for (const sim::SimResult& r : runs) code = ExitCode(r) == 1 || code == 1 ? 1 : std::max(code, ExitCode(r));
  return code;
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
  rp->add_option("--policy", a->request.policy,
                 "Bundled policy name or policy JSON file; 'captured' (or 'captured:PRESET') derives the server's "
                 "own from a captured trace's header (version, device, flags: docs/CAPTURE.md); 'auto' is "
                 "'captured' for a captured trace, ram-lru otherwise")
      ->capture_default_str();
  rp->add_option("--compare", a->compare,
                 "Also run these policies and print them side by side; --json then prints an array (one object "
                 "per policy) and --timeline/--svg/--event-log write one file per policy (NAME.POLICY.EXT)");
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
