// `residency slurm submit | status | resubmit`: a sweep fanned out as a Slurm
// job array (harness/fleet/slurm.h).
#include <cstdio>
#include <filesystem>
#include <iostream>
#include <memory>

#include "harness/cli/cli.h"
#include "harness/fleet/agent_client.h"
#include "harness/fleet/slurm.h"
#include "harness/fleet/subprocess.h"
#include "traces/bundled.h"

namespace residency::cli {
namespace {
namespace fs = std::filesystem;

struct SlurmArgs {
  fleet::SlurmJob job;
  std::string out;
  std::vector<std::string> traces_from;
  std::string token_file;
  bool dry_run = false, failed = false, require_merged = false;
};

void PrintState(const fleet::JobState& st) {
  std::size_t done = 0;
  for (const fleet::ShardState& s : st.shards) {
    done += s.state == "done";
    std::printf("shard %3d  %-10s %6lld/%-6lld runs  %s\n", s.shard, s.state.c_str(), static_cast<long long>(s.stored),
                static_cast<long long>(s.planned), s.job.c_str());
  }
  std::printf("%zu/%zu shards done; merge: %s (%lld/%lld runs in results.db)\n", done, st.shards.size(),
              st.merge.c_str(), static_cast<long long>(st.merged_runs), static_cast<long long>(st.planned_runs));
}

// --traces-from: the agents' captured traces, written into the job folder
// (every node reads them there), and "captured" joins the profiles and policies.
Status FetchIntoJob(SlurmArgs& a) {
  const fs::path dir = fs::path(a.out) / "traces-from";
  std::error_code ec;
  if (fs::exists(fs::path(a.out) / "job.json", ec))
    return FailedPrecondition(a.out + " already holds a job (job.json); use `slurm status` or another --out");
  RESIDENCY_ASSIGN_OR_RETURN(std::vector<fleet::FetchedTrace> got,
                             fleet::FetchFromAgents(a.traces_from, a.token_file, a.job.command_timeout_s));
  if (got.empty()) return NotFound("the agents store no captured traces");
  fs::create_directories(dir, ec);
  if (ec) return FailedPrecondition(dir.string() + ": cannot create: " + ec.message());
  for (const fleet::FetchedTrace& t : got)
    if (!WriteTextFile((dir / (t.name + ".jsonl")).string(), t.body)) return FailedPrecondition("cannot write " + dir.string());
  std::printf("fetched %zu captured trace%s from %zu agent%s into %s\n", got.size(), got.size() == 1 ? "" : "s",
              a.traces_from.size(), a.traces_from.size() == 1 ? "" : "s", dir.string().c_str());
  a.job.traces.push_back(dir.string());
  AddCapturedInputs(a.job.profiles, a.job.policies);
  return Status::Ok();
}

int RunSubmit(SlurmArgs& a) {
  if (a.job.traces.empty() && a.traces_from.empty()) return Fail(InvalidArgument("give --traces or --traces-from"));
  if (!a.traces_from.empty())
    if (Status s = FetchIntoJob(a); !s.ok()) return Fail(s);
  a.job.out_dir = a.out;
  a.job.data_dir = traces::DataDir();
  auto job = fleet::PrepareJob(a.job);
  if (!job.ok()) return Fail(job.status());
  std::printf("wrote %s/shard.sbatch (array 0-%d) and %s/merge.sbatch\n", job->out_dir.c_str(), job->shards - 1,
              job->out_dir.c_str());
  if (a.dry_run) return 0;
  auto sub = fleet::Submit(*job, {}, {});
  if (!sub.ok()) return Fail(sub.status());
  std::printf("submitted array job %s (%d shards) and merge job %s (afterok)\n", sub->array_job.c_str(),
              job->shards, sub->merge_job.c_str());
  return 0;
}

int RunStatus(const SlurmArgs& a) {
  auto job = fleet::ReadJob(a.out);
  if (!job.ok()) return Fail(job.status());
  job->command_timeout_s = a.job.command_timeout_s;
  auto st = fleet::QueryState(*job);
  if (!st.ok()) return Fail(st.status());
  PrintState(*st);
  if (a.require_merged && st->merge != "merged") {
    std::fprintf(stderr, "residency: results.db holds %lld of %lld planned runs\n",
                 static_cast<long long>(st->merged_runs), static_cast<long long>(st->planned_runs));
    return 1;
  }
  return 0;
}

int RunResubmit(const SlurmArgs& a) {
  if (!a.failed) return Fail(InvalidArgument("say which shards: --failed"));
  auto job = fleet::ReadJob(a.out);
  if (!job.ok()) return Fail(job.status());
  job->command_timeout_s = a.job.command_timeout_s;
  auto st = fleet::QueryState(*job);
  if (!st.ok()) return Fail(st.status());
  std::vector<int> failed;
  for (const fleet::ShardState& s : st->shards)
    if (s.state == "failed") failed.push_back(s.shard);
  if (failed.empty()) {
    std::printf("no failed shards\n");
    return 0;
  }
  // A merge still waiting on the old array would never run (or run early).
  for (const std::string& m : st->pending_merges)
    (void)fleet::RunCommand({"scancel", m}, fleet::CommandLimit(*job));
  auto sub = fleet::Submit(*job, failed, st->queued_arrays);
  if (!sub.ok()) return Fail(sub.status());
  std::string list;
  for (int i : failed) list += (list.empty() ? "" : ",") + std::to_string(i);
  std::printf("resubmitted shards %s as array job %s (each resumes from its database); merge job %s\n",
              list.c_str(), sub->array_job.c_str(), sub->merge_job.c_str());
  return 0;
}

}  // namespace

Subcommand AddSlurm(CLI::App& app) {
  auto a = std::make_shared<SlurmArgs>();
  CLI::App* c = app.add_subcommand("slurm", "Run a sweep as a Slurm job array (submit, status, resubmit)");
  c->require_subcommand(1);
  CLI::App* submit = c->add_subcommand("submit", "Write the sbatch scripts and submit the shards and the merge");
  submit->add_option("--traces", a->job.traces, "Trace files or folders");
  submit->add_option("--traces-from", a->traces_from,
                     "Agents (http://HOST:PORT) whose captured traces to sweep too, fetched into OUT/traces-from/; "
                     "each also runs on its own machine under its server's settings ('captured')");
  submit->add_option("--token-file", a->token_file, "Bearer token for --traces-from agents");
  submit->add_option("--profiles", a->job.profiles, "Bundled profile names or files")->required();
  submit->add_option("--policies", a->job.policies, "Bundled policy names or files")->required();
  submit->add_option("--seeds,--seed", a->job.seeds, "Simulator seeds")->capture_default_str();
  submit->add_option("--shards", a->job.shards, "Array tasks")->required();
  submit->add_option("--out", a->out, "Job folder (shared by every node)")->required();
  submit->add_option("--partition", a->job.partition, "Slurm partition");
  submit->add_option("--time", a->job.time_limit, "Slurm time limit per task (e.g. 1:00:00)");
  submit->add_option("--jobs-per-shard", a->job.jobs_per_shard, "Threads (and CPUs) per task")->capture_default_str();
  submit->add_flag("--dry-run", a->dry_run, "Write the scripts, submit nothing");
  CLI::App* status = c->add_subcommand("status", "Shard and merge state of a submitted job");
  status->add_option("--out", a->out, "Job folder")->required();
  status->add_flag("--require-merged", a->require_merged, "Exit 1 unless results.db holds every planned run");
  CLI::App* resubmit = c->add_subcommand("resubmit", "Submit again the shards that died, and a new merge");
  resubmit->add_option("--out", a->out, "Job folder")->required();
  resubmit->add_flag("--failed", a->failed, "Shards neither done nor queued");
  for (CLI::App* sub : {submit, status, resubmit})
    sub->add_option("--command-timeout", a->job.command_timeout_s,
                    "Seconds one sbatch, squeue or scancel may take before it is killed")
        ->check(CLI::Range(0.1, 86400.0))
        ->capture_default_str();
  return {c, [a, submit, status, resubmit] {
            if (submit->parsed()) return RunSubmit(*a);
            if (status->parsed()) return RunStatus(*a);
            if (resubmit->parsed()) return RunResubmit(*a);
            return 2;
          }};
}

}  // namespace residency::cli
