// A sweep as a Slurm job array: one task per shard, each running
// `residency sweep --shard $SLURM_ARRAY_TASK_ID/N` into its own database,
// and a merge job that runs once every shard succeeded (afterok). The job
// folder holds everything: job.json (the inputs), the two sbatch scripts,
// shards/, logs/, submissions.jsonl and, at the end, results.db.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

#include "runtime/base/status.h"

namespace residency::fleet {

struct SlurmJob {
  std::vector<std::string> traces, profiles, policies;  // absolute paths or bundled names
  std::vector<std::uint64_t> seeds = {1};
  int shards = 1;
  std::string out_dir;  // absolute
  std::string partition, time_limit;
  int jobs_per_shard = 1;
  std::string residency_bin;  // absolute
  std::string data_dir;       // RESIDENCY_DATA_DIR for the tasks
  // Not in job.json: how long one sbatch, squeue or scancel may take.
  double command_timeout_s = 60;
};
// command_timeout_s as RunCommand takes it.
std::chrono::milliseconds CommandLimit(const SlurmJob& job);

// Validates the inputs (a full sweep plan), makes paths absolute and writes
// job.json and the two scripts. Refuses a folder that holds another job.
Result<SlurmJob> PrepareJob(SlurmJob job);
Result<SlurmJob> ReadJob(const std::string& out_dir);

std::string ShardScript(const SlurmJob& job);
std::string MergeScript(const SlurmJob& job);

struct Submission {
  std::string array_job, merge_job;
  std::vector<int> shards;
};
// sbatch the array (all shards, or `shards`) and a merge job depending on it
// (and on `also_after`, jobs whose tasks must end first); appended to
// submissions.jsonl.
Result<Submission> Submit(const SlurmJob& job, const std::vector<int>& shards,
                          const std::vector<std::string>& also_after);
Result<std::vector<Submission>> ReadSubmissions(const std::string& out_dir);

struct ShardState {
  int shard = 0;
  std::int64_t planned = 0, stored = 0;
  std::string state;  // done | PENDING | RUNNING | ... (squeue) | failed
  std::string job;    // the array task id, "A_i"
};
struct JobState {
  std::vector<ShardState> shards;
  std::string merge;  // merged | PENDING | RUNNING | ... | not-merged
  std::int64_t merged_runs = 0, planned_runs = 0;
  std::vector<std::string> queued_arrays;  // array jobs with tasks still queued
  std::vector<std::string> pending_merges;
};
Result<JobState> QueryState(const SlurmJob& job);

}  // namespace residency::fleet
