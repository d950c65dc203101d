// The `residency` command line. Exceptions stop here: the libraries below
// return Status values, and this file turns them into one-line errors and
// exit codes (0 ok, 1 the run found a problem, 2 bad input).
#include <CLI/CLI.hpp>
#include <cstdio>
#include <fstream>
#include <iostream>

#include "harness/replay.h"
#include "harness/report.h"
#include "traces/bundled.h"

namespace {

using residency::harness::ReplayRequest;

int Fail(const residency::Status& s) {
  std::cerr << "residency: " << s.message() << "\n";
  return 2;
}

bool WriteFile(const std::string& path, const std::string& text) {
  std::ofstream out(path, std::ios::binary);
  out << text;
  out.close();
  if (!out) {
    std::cerr << "residency: cannot write " << path << "\n";
    return false;
  }
  return true;
}

int ListBundled(const std::string& kind) {
  const auto entries = residency::traces::ListBundled(kind);
  if (entries.empty()) {
    std::cerr << "residency: no bundled " << kind << " found in " << residency::traces::DataDir()
              << " (set RESIDENCY_DATA_DIR)\n";
    return 2;
  }
  for (const auto& e : entries) std::printf("%-22s %s\n", e.name.c_str(), e.description.c_str());
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"residency: model-weight residency engine, simulator and harness"};
  app.require_subcommand(1);

  ReplayRequest replay;
  std::vector<std::string> compare_policies;
  bool as_json = false;
  std::string timeline_path, svg_path;
  auto* rp = app.add_subcommand("replay", "Replay a trace under a profile and policy in the simulator");
  rp->add_option("trace", replay.trace_path, "Trace file (JSON Lines)")->required();
  rp->add_option("--profile", replay.profile, "Bundled profile name or profile JSON file")->capture_default_str();
  rp->add_option("--policy", replay.policy, "Bundled policy name or policy JSON file")->capture_default_str();
  rp->add_option("--compare", compare_policies, "Also run these policies and print them side by side");
  rp->add_option("--seed", replay.seed, "Seed for the simulator's random choices")->capture_default_str();
  rp->add_flag("--json", as_json, "Print one JSON object instead of the report");
  rp->add_option("--timeline", timeline_path, "Write a Chrome Trace Event timeline (Perfetto)");
  rp->add_option("--svg", svg_path, "Write an SVG picture of memory per tier");
  std::string event_log_path;
  rp->add_option("--event-log", event_log_path, "Write the full event log, one line per event");

  app.add_subcommand("policies", "List bundled policies");
  app.add_subcommand("profiles", "List bundled machine profiles");
  app.add_subcommand("traces", "List bundled example traces");

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e) == 0 ? 0 : 2;
  }

  if (app.got_subcommand("policies")) return ListBundled("policies");
  if (app.got_subcommand("profiles")) return ListBundled("profiles");
  if (app.got_subcommand("traces")) return ListBundled("examples");

  replay.keep_event_log = !event_log_path.empty();
  auto result = residency::harness::Replay(replay);
  if (!result.ok()) return Fail(result.status());
  const auto& r = result.value();
  if (!timeline_path.empty() && !WriteFile(timeline_path, residency::harness::TimelineJson(r))) return 2;
  if (!svg_path.empty() && !WriteFile(svg_path, residency::harness::MemorySvg(r))) return 2;
  if (!event_log_path.empty()) {
    std::string text;
    for (const std::string& line : r.event_log) text += line + "\n";
    if (!WriteFile(event_log_path, text)) return 2;
  }
  if (as_json) {
    std::cout << residency::harness::ResultJson(r).dump(2) << "\n";
  } else if (!compare_policies.empty()) {
    std::cout << residency::harness::FormatReport(r) << "\n";
    for (const std::string& other : compare_policies) {
      ReplayRequest second = replay;
      second.policy = other;
      auto b = residency::harness::Replay(second);
      if (!b.ok()) return Fail(b.status());
      std::cout << "Side by side\n" << residency::harness::FormatComparison(r, b.value()) << "\n";
    }
  } else {
    std::cout << residency::harness::FormatReport(r);
  }
  if (!timeline_path.empty()) std::cerr << "timeline written to " << timeline_path << " (open in ui.perfetto.dev)\n";
  if (!svg_path.empty()) std::cerr << "memory picture written to " << svg_path << "\n";
  return r.violations.empty() ? 0 : 1;
}
