#include "harness/fleet/slurm.h"
#include "runtime/io/whole_file.h"

#include <chrono>
#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>

#include "harness/common/build_info.h"
#include "harness/fleet/subprocess.h"
#include "harness/store/sqlite_db.h"
#include "harness/sweep/sweep_spec.h"
#include "traces/json_fields.h"

namespace residency::fleet {
namespace fs = std::filesystem;
using nlohmann::json;

namespace {

std::string Quote(const std::string& s) {  // for /bin/bash
  std::string out = "'";
  for (char c : s) out += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return out + "'";
}

std::string AbsoluteIfPath(const std::string& arg) {
  const bool is_path = arg.find('/') != std::string::npos ||
                       (arg.size() > 5 && (arg.substr(arg.size() - 5) == ".json" || arg.substr(arg.size() - 6) == ".jsonl"));
  return is_path ? fs::absolute(arg).lexically_normal().string() : arg;
}

std::string ShardDb(const SlurmJob& job, int i) {
  return (fs::path(job.out_dir) / "shards" / ("shard-" + std::to_string(i) + ".db")).string();
}

json ToJson(const SlurmJob& j) {
  return json{{"traces", j.traces},        {"profiles", j.profiles},
              {"policies", j.policies},    {"seeds", j.seeds},
              {"shards", j.shards},        {"out_dir", j.out_dir},
              {"partition", j.partition},  {"time", j.time_limit},
              {"jobs_per_shard", j.jobs_per_shard}, {"residency_bin", j.residency_bin},
              {"data_dir", j.data_dir},    {"code_version", harness::CodeVersion()}};
}

std::string SweepArgs(const SlurmJob& job) {
  std::string a;
  const auto list = [&](const char* flag, const std::vector<std::string>& v) {
    a += std::string(" ") + flag;
    for (const std::string& s : v) a += " " + Quote(s);
  };
  list("--traces", job.traces);
  list("--profiles", job.profiles);
  list("--policies", job.policies);
  a += " --seeds";
  for (std::uint64_t s : job.seeds) a += " " + std::to_string(s);
  return a;
}

std::string Header(const SlurmJob& job, const std::string& name, const std::string& log) {
  std::string h = "#!/bin/bash\n#SBATCH --job-name=" + name + "\n#SBATCH --output=" + log + "\n";
  if (!job.partition.empty()) h += "#SBATCH --partition=" + job.partition + "\n";
  if (!job.time_limit.empty()) h += "#SBATCH --time=" + job.time_limit + "\n";
  return h;
}

}  // namespace

Result<SlurmJob> PrepareJob(SlurmJob job) {
  if (job.shards < 1 || job.shards > 10000) return InvalidArgument("--shards must be between 1 and 10000");
  if (job.jobs_per_shard < 1) return InvalidArgument("--jobs-per-shard must be >= 1");
  for (auto* list : {&job.traces, &job.profiles, &job.policies})
    for (std::string& s : *list) s = AbsoluteIfPath(s);
  job.out_dir = fs::absolute(job.out_dir).lexically_normal().string();
  if (job.residency_bin.empty()) job.residency_bin = SelfExecutable();
  job.data_dir = fs::absolute(job.data_dir).lexically_normal().string();
  // The whole plan is validated here, on the submit host, not in 1,000 tasks.
  RESIDENCY_ASSIGN_OR_RETURN(sweep::SweepSpec spec,
                             sweep::LoadSweepSpec(job.traces, job.profiles, job.policies, job.seeds));
  const fs::path dir(job.out_dir);
  std::error_code ec;
  if (fs::exists(dir / "job.json", ec))
    return FailedPrecondition(job.out_dir + " already holds a job (job.json); use `slurm status` or another --out");
  fs::create_directories(dir / "shards", ec);
  fs::create_directories(dir / "logs", ec);
  if (ec) return FailedPrecondition(job.out_dir + ": cannot create: " + ec.message());
  std::ofstream(dir / "job.json") << ToJson(job).dump(2) << "\n";
  std::ofstream(dir / "shard.sbatch") << ShardScript(job);
  std::ofstream(dir / "merge.sbatch") << MergeScript(job);
  if (!fs::exists(dir / "merge.sbatch", ec)) return FailedPrecondition(job.out_dir + ": cannot write the scripts");
  return job;
}

Result<SlurmJob> ReadJob(const std::string& out_dir) {
  const std::string path = (fs::path(out_dir) / "job.json").string();
  RESIDENCY_ASSIGN_OR_RETURN(std::string text, io::ReadWholeFile(path));
  json j = json::parse(text, nullptr, false);
  if (j.is_discarded() || !j.is_object()) return InvalidArgument(path + ": not a JSON object");
  SlurmJob job;
  try {
    job.traces = j.at("traces").get<std::vector<std::string>>();
    job.profiles = j.at("profiles").get<std::vector<std::string>>();
    job.policies = j.at("policies").get<std::vector<std::string>>();
    job.seeds = j.at("seeds").get<std::vector<std::uint64_t>>();
    job.shards = j.at("shards").get<int>();
    job.out_dir = j.at("out_dir").get<std::string>();
    job.partition = j.at("partition").get<std::string>();
    job.time_limit = j.at("time").get<std::string>();
    job.jobs_per_shard = j.at("jobs_per_shard").get<int>();
    job.residency_bin = j.at("residency_bin").get<std::string>();
    job.data_dir = j.at("data_dir").get<std::string>();
  } catch (const std::exception& e) {
    return InvalidArgument(path + ": " + e.what());
  }
  return job;
}

std::string ShardScript(const SlurmJob& job) {
  std::string s = Header(job, "residency-shard", job.out_dir + "/logs/shard-%a.out");
  s += "#SBATCH --array=0-" + std::to_string(job.shards - 1) + "\n";
  s += "#SBATCH --cpus-per-task=" + std::to_string(job.jobs_per_shard) + "\n";
  s += "# Written by `residency slurm submit`: one task per shard of the sweep.\n";
  s += "set -euo pipefail\n";
  s += "export RESIDENCY_DATA_DIR=" + Quote(job.data_dir) + "\n";
  s += "i=${SLURM_ARRAY_TASK_ID:?run me with sbatch --array}\n";
  s += "exec " + Quote(job.residency_bin) + " sweep" + SweepArgs(job) + " --shard \"$i/" +
       std::to_string(job.shards) + "\" --db " + Quote(job.out_dir) + "/shards/shard-\"$i\".db -j " +
       std::to_string(job.jobs_per_shard) + " -q\n";
  return s;
}

std::string MergeScript(const SlurmJob& job) {
  std::string s = Header(job, "residency-merge", job.out_dir + "/logs/merge-%j.out");
  s += "# Written by `residency slurm submit`: runs after every shard succeeded.\n";
  s += "set -euo pipefail\nexport RESIDENCY_DATA_DIR=" + Quote(job.data_dir) + "\n";
  s += Quote(job.residency_bin) + " merge " + Quote(job.out_dir + "/results.db");
  for (int i = 0; i < job.shards; ++i) s += " " + Quote(ShardDb(job, i));
  s += "\n# Fails (and says which shards) unless every planned run is in results.db.\n";
  s += "exec " + Quote(job.residency_bin) + " slurm status --out " + Quote(job.out_dir) + " --require-merged\n";
  return s;
}

Result<Submission> Submit(const SlurmJob& job, const std::vector<int>& shards,
                          const std::vector<std::string>& also_after) {
  Submission sub;
  std::vector<std::string> argv = {"sbatch", "--parsable"};
  if (!shards.empty()) {
    std::string list;
    for (int i : shards) list += (list.empty() ? "" : ",") + std::to_string(i);
    argv.push_back("--array=" + list);
    sub.shards = shards;
  } else {
    for (int i = 0; i < job.shards; ++i) sub.shards.push_back(i);
  }
  argv.push_back(job.out_dir + "/shard.sbatch");
  RESIDENCY_ASSIGN_OR_RETURN(CommandResult array, RunCommand(argv, CommandLimit(job)));
  if (array.exit_code != 0) return FailedPrecondition("sbatch (shards) failed: " + array.err + array.out);
  sub.array_job = array.out.substr(0, array.out.find_first_of(";\n"));
  std::string dependency = "--dependency=afterok:" + sub.array_job;
  for (const std::string& j : also_after) dependency += ",afterany:" + j;
  RESIDENCY_ASSIGN_OR_RETURN(CommandResult merge,
                             RunCommand({"sbatch", "--parsable", dependency, "--kill-on-invalid-dep=yes",
                                         job.out_dir + "/merge.sbatch"},
                                        CommandLimit(job)));
  if (merge.exit_code != 0) return FailedPrecondition("sbatch (merge) failed: " + merge.err + merge.out);
  sub.merge_job = merge.out.substr(0, merge.out.find_first_of(";\n"));
  std::ofstream(fs::path(job.out_dir) / "submissions.jsonl", std::ios::app)
      << json{{"array_job", sub.array_job}, {"merge_job", sub.merge_job}, {"shards", sub.shards}}.dump() << "\n";
  return sub;
}

Result<std::vector<Submission>> ReadSubmissions(const std::string& out_dir) {
  std::vector<Submission> out;
  std::ifstream in(fs::path(out_dir) / "submissions.jsonl");
  std::string line;
  while (std::getline(in, line)) {
    json j = json::parse(line, nullptr, false);
    if (j.is_discarded()) return DataLoss(out_dir + "/submissions.jsonl: a line is not JSON");
    out.push_back(Submission{j.value("array_job", ""), j.value("merge_job", ""), j.value("shards", std::vector<int>{})});
  }
  return out;
}

namespace {

// Runs stored in a results database by this build (0 when it does not exist).
Result<std::int64_t> StoredRuns(const std::string& path) {
  std::error_code ec;
  if (!fs::exists(path, ec)) return std::int64_t{0};
  RESIDENCY_ASSIGN_OR_RETURN(store::Database db, store::Database::Open(path));
  auto st = db.Prepare("SELECT count(*) FROM runs WHERE code_version = ?1");
  if (!st.ok()) return std::int64_t{0};  // not migrated yet: nothing stored
  st->Bind(1, harness::CodeVersion());
  RESIDENCY_ASSIGN_OR_RETURN(bool row, st->Step());
  return row ? st->Int(0) : 0;
}

}  // namespace

Result<JobState> QueryState(const SlurmJob& job) {
  RESIDENCY_ASSIGN_OR_RETURN(sweep::SweepSpec spec,
                             sweep::LoadSweepSpec(job.traces, job.profiles, job.policies, job.seeds));
  RESIDENCY_ASSIGN_OR_RETURN(std::vector<Submission> subs, ReadSubmissions(job.out_dir));
  // Queue state of every task and merge job we submitted: "A_i STATE" lines.
  std::map<std::string, std::string> queued;
  if (!subs.empty()) {
    std::string ids;
    for (const Submission& s : subs) ids += (ids.empty() ? "" : ",") + s.array_job + "," + s.merge_job;
    RESIDENCY_ASSIGN_OR_RETURN(CommandResult q, RunCommand({"squeue", "-h", "-r", "-j", ids, "-o", "%i %T"}, CommandLimit(job)));
    std::istringstream lines(q.out);
    std::string id, state;
    while (lines >> id >> state) queued[id] = state;
  }
  JobState st;
  std::set<std::string> arrays_queued;
  for (int i = 0; i < job.shards; ++i) {
    ShardState s;
    s.shard = i;
    s.planned = static_cast<std::int64_t>(sweep::PlanRuns(spec, {i, job.shards}).size());
    RESIDENCY_ASSIGN_OR_RETURN(s.stored, StoredRuns(ShardDb(job, i)));
    for (const Submission& sub : subs) {
      if (std::find(sub.shards.begin(), sub.shards.end(), i) == sub.shards.end()) continue;
      s.job = sub.array_job + "_" + std::to_string(i);
      const auto it = queued.find(s.job);
      s.state = it == queued.end() ? "" : it->second;
      if (!s.state.empty()) arrays_queued.insert(sub.array_job);
    }
    if (s.stored >= s.planned && s.state.empty()) s.state = "done";
    if (s.state.empty()) s.state = subs.empty() ? "not-submitted" : "failed";
    st.planned_runs += s.planned;
    st.shards.push_back(s);
  }
  st.queued_arrays.assign(arrays_queued.begin(), arrays_queued.end());
  RESIDENCY_ASSIGN_OR_RETURN(st.merged_runs, StoredRuns(job.out_dir + "/results.db"));
  st.merge = st.merged_runs >= st.planned_runs ? "merged" : "not-merged";
  for (const Submission& sub : subs) {
    const auto it = queued.find(sub.merge_job);
    if (it == queued.end()) continue;
    st.pending_merges.push_back(sub.merge_job);
    if (st.merge != "merged") st.merge = it->second;
  }
  return st;
}

std::chrono::milliseconds CommandLimit(const SlurmJob& job) {
  return std::chrono::milliseconds(static_cast<long long>(job.command_timeout_s * 1000));
}

}  // namespace residency::fleet
