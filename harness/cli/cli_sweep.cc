// `residency sweep` (the cross product into a results database) and
// `residency merge` (shard databases into one).
#include <csignal>
#include <iostream>
#include <memory>

#include "harness/common/build_info.h"
#include "harness/cli/cli.h"
#include "harness/common/progress_line.h"
#include "harness/fleet/agent_client.h"
#include "harness/sweep/sweep_runner.h"
#include "runtime/io/thread_pool.h"

namespace residency::cli {
namespace {

struct SweepArgs {
  std::vector<std::string> traces, profiles, policies, traces_from;
  std::string token_file;
  std::vector<std::uint64_t> seeds = {1};
  std::string db = "results.db";
  int jobs = 0;
  std::string shard = "0/1";
  bool quiet = false;
};

std::atomic<bool> g_stop{false};
extern "C" void OnInterrupt(int) { g_stop = true; }

int RunSweepCommand(const SweepArgs& a) {
  auto shard = sweep::ParseShard(a.shard);
  if (!shard.ok()) return Fail(shard.status());
  std::vector<sweep::TraceText> fetched;
  std::vector<std::string> profiles = a.profiles, policies = a.policies;
  if (!a.traces_from.empty()) {
    auto got = fleet::FetchFromAgents(a.traces_from, a.token_file, 60);
    if (!got.ok()) return Fail(got.status());
    for (fleet::FetchedTrace& t : *got) fetched.push_back({t.name, "agent trace " + t.id, std::move(t.body)});
    std::fprintf(stderr, "fetched %zu captured trace%s from %zu agent%s\n", fetched.size(),
                 fetched.size() == 1 ? "" : "s", a.traces_from.size(), a.traces_from.size() == 1 ? "" : "s");
    if (fetched.empty() && a.traces.empty()) return Fail(NotFound("the agents store no captured traces"));
    AddCapturedInputs(profiles, policies);
  }
  if (a.traces.empty() && a.traces_from.empty()) return Fail(InvalidArgument("give --traces or --traces-from"));
  auto spec = sweep::LoadSweepSpec(a.traces, profiles, policies, a.seeds, fetched);
  if (!spec.ok()) return Fail(spec.status());
  auto store = store::ResultsStore::Open(a.db);
  if (!store.ok()) return Fail(store.status());

  sweep::SweepOptions options;
  options.jobs = a.jobs > 0 ? a.jobs : io::CoreCount();
  options.shard = *shard;
  options.code_version = harness::CodeVersion();
  options.host = harness::HostName();
  options.stop = &g_stop;
  sweep::ProgressLine progress(stderr, "sweep");
  std::size_t problems = 0;
  options.on_run = [&](const sweep::RunDone& d, std::size_t done, std::size_t total) {
    if (d.outcome != "ok" && d.outcome != "skipped") ++problems;
    if (!a.quiet) progress.Update(done, total, problems ? std::to_string(problems) + " not ok" : "");
  };
  // Ctrl-C finishes the runs in flight (each is stored whole) and stops.
  std::signal(SIGINT, OnInterrupt);
  std::signal(SIGTERM, OnInterrupt);
  auto summary = sweep::RunSweep(**store, *spec, options);
  std::signal(SIGINT, SIG_DFL);
  std::signal(SIGTERM, SIG_DFL);
  progress.Finish();
  if (!summary.ok()) return Fail(summary.status());
  const sweep::SweepSummary& s = *summary;
  std::printf("sweep %s into %s: %zu planned, %zu ran, %zu already stored (skipped); %zu OOM, %zu infeasible, "
              "%zu with violations, %zu failed\n",
              a.shard.c_str(), a.db.c_str(), s.planned, s.ran, s.skipped, s.ooms, s.infeasible, s.violations,
              s.errors);
  if (s.ran > 0) {
    // A rate over a handful of runs or a fraction of a second says nothing:
    // then only the time per run.
    const char* jobs = options.jobs == 1 ? "job" : "jobs";
    if (s.ran >= 10 && s.wall_s >= 1.0)
      std::printf("%.2f s wall on %d %s: %.1f runs/s, %.1f runs/s per core (%.3f s per run)\n", s.wall_s,
                  options.jobs, jobs, static_cast<double>(s.ran) / s.wall_s,
                  static_cast<double>(s.ran) / s.run_s, s.run_s / static_cast<double>(s.ran));
    else
      std::printf("%.2f s wall on %d %s for %zu run%s (%.3f s per run)\n", s.wall_s, options.jobs, jobs, s.ran,
                  s.ran == 1 ? "" : "s", s.run_s / static_cast<double>(s.ran));
  }
  if (s.stopped) {
    std::fprintf(stderr, "residency: sweep interrupted; run the same command again to resume\n");
    return 130;
  }
  return 0;
}

int RunMerge(const std::string& out, const std::vector<std::string>& inputs) {
  auto store = store::ResultsStore::Open(out);
  if (!store.ok()) return Fail(store.status());
  auto before = (*store)->CountRuns();
  if (!before.ok()) return Fail(before.status());
  for (const std::string& in : inputs) {
    const Status s = (*store)->MergeFrom(in);
    if (!s.ok()) return Fail(s);
  }
  auto after = (*store)->CountRuns();
  if (!after.ok()) return Fail(after.status());
  std::printf("merged %zu database(s) into %s: %lld runs added, %lld in total\n", inputs.size(), out.c_str(),
              static_cast<long long>(*after - *before), static_cast<long long>(*after));
  return 0;
}

}  // namespace

Subcommand AddSweep(CLI::App& app) {
  auto a = std::make_shared<SweepArgs>();
  CLI::App* c = app.add_subcommand("sweep", "Simulate traces x profiles x policies x seeds into a results database");
  c->add_option("--traces", a->traces, "Trace files or folders of *.jsonl");
  c->add_option("--traces-from", a->traces_from,
                "Agents (http://HOST:PORT) whose captured traces to sweep too; each also runs on its own machine "
                "under its server's settings (profile and policy 'captured')");
  c->add_option("--token-file", a->token_file, "Bearer token for --traces-from agents");
  c->add_option("--profiles", a->profiles,
                "Bundled profile names or profile JSON files; 'captured': each captured trace's own machine")
      ->required();
  c->add_option("--policies", a->policies,
                "Bundled policy names or policy JSON files; 'captured': each captured trace's server settings")
      ->required();
  c->add_option("--seeds,--seed", a->seeds, "Simulator seeds")->capture_default_str();
  c->add_option("--db", a->db, "Results database (SQLite; created if missing)")->capture_default_str();
  c->add_option("--jobs,-j", a->jobs, "Parallel runs (default: one per core)")->check(CLI::NonNegativeNumber);
  c->add_option("--shard", a->shard, "Run only shard i of N (i/N): deterministic partition")->capture_default_str();
  c->add_flag("--quiet,-q", a->quiet, "No progress output");
  return {c, [a] { return RunSweepCommand(*a); }};
}

Subcommand AddMerge(CLI::App& app) {
  auto out = std::make_shared<std::string>();
  auto inputs = std::make_shared<std::vector<std::string>>();
  CLI::App* c = app.add_subcommand("merge", "Merge results databases into one (idempotent)");
  c->add_option("out", *out, "Database to merge into (created if missing)")->required();
  c->add_option("inputs", *inputs, "Databases to merge from")->required();
  return {c, [out, inputs] { return RunMerge(*out, *inputs); }};
}

}  // namespace residency::cli
