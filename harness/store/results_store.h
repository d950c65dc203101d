// The results store (SQLite, schema in schema.cc): traces, profiles and
// policies by content hash; runs with every figure of `replay --json`, their
// prompts and violations; sweeps queued through the agent. Each run is
// written in one transaction. Thread-safe: one connection behind a mutex.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "harness/store/sqlite_db.h"
#include "sim/sim_result.h"

namespace residency::store {

// 16 hex digits of FNV-1a 64 over the bytes: how inputs are identified.
std::string ContentHash(std::string_view bytes);

struct RunInputs {
  std::int64_t trace_id = 0;
  std::int64_t profile_id = 0;
  std::int64_t policy_id = 0;
  std::uint64_t seed = 1;
  std::string code_version;
};

struct RunMeta {
  std::string host;
  std::string started_at;  // ISO 8601 UTC
  double duration_s = 0;
};

struct RunRow {
  std::int64_t id = 0;
  std::string trace, trace_hash, profile, policy;
  std::uint64_t seed = 0;
  std::string code_version, host, started_at, outcome;
  double duration_s = 0;
  std::map<std::string, std::int64_t> figures;  // FigureColumns() names
  std::vector<std::string> violations;          // "kind: message"
};

struct RunFilter {
  std::string trace, profile, policy;  // empty: any
  std::int64_t limit = -1;
  std::int64_t offset = 0;
};

struct StoredTrace {
  std::int64_t id = 0;
  std::string hash, name, provenance, body;
};

struct SweepRow {
  std::int64_t id = 0;
  std::string spec, status, message, created_at;
  std::int64_t runs_total = 0, runs_done = 0;
};

// Captured traffic (schema v5): what the agent replays of each captured
// trace it stores, and what it found.
struct QueuedTrace {
  std::int64_t trace_id = 0;
  std::string hash, name, state, message;
  std::int64_t attempts = 0;
};
struct QueueCounts {
  std::int64_t queued = 0, running = 0, done = 0, failed = 0;
};
struct FidelityRow {
  std::string trace_hash, trace, code_version, host, policy_detail;
  int prompt = 0;
  std::string status;            // ok, failed, interrupted (as captured); or simulated-failed
  std::int64_t captured_ns = -1;  // -1: the trace gives no time
  std::int64_t simulated_ns = 0;
  std::optional<double> error;   // (simulated - captured) / captured, when both are there
};
struct VerdictRow {
  std::string trace_hash, trace, code_version, gate, profile, baseline, candidate, metric;
  double threshold_pct = 0;
  std::string verdict;  // same improved regressed new_oom new_infeasible oom_both infeasible_both violation error
  std::string baseline_outcome, candidate_outcome;
  std::optional<std::int64_t> baseline_value, candidate_value;
  std::optional<double> delta_pct;
  std::int64_t baseline_run = 0, candidate_run = 0;
  std::string created_at;
};
struct VerdictFilter {
  std::string trace_hash, profile, candidate, verdict;  // empty: any
  std::int64_t limit = 10000;
};

class ResultsStore {
 public:
  static Result<std::unique_ptr<ResultsStore>> Open(const std::string& path);

  // Inserted unless the same bytes are there already; the id either way.
  Result<std::int64_t> PutTrace(const std::string& name, const std::string& provenance,
                                const std::string& body, bool* created = nullptr);
  Result<std::int64_t> PutProfile(const std::string& name, const std::string& body);
  Result<std::int64_t> PutPolicy(const std::string& name, const std::string& body);

  Result<bool> HasRun(const RunInputs& in);
  // One transaction: the run, its prompts and its violations. A run with the
  // same inputs already stored is kept; its id is returned.
  Result<std::int64_t> PutRun(const RunInputs& in, const RunMeta& meta, const sim::SimResult& r,
                              const std::string& result_json);
  // A run that could not be simulated (outcome 'error').
  Result<std::int64_t> PutFailedRun(const RunInputs& in, const RunMeta& meta, const std::string& message);

  Result<std::vector<RunRow>> ListRuns(const RunFilter& filter);
  Result<std::optional<RunRow>> GetRun(std::int64_t id, std::string* result_json = nullptr);
  Result<std::optional<StoredTrace>> GetTrace(const std::string& hash);
  Result<std::vector<StoredTrace>> ListTraces();  // without bodies
  Result<std::int64_t> CountRuns();

  // Copies every input and run of another results database into this one;
  // running it twice changes nothing.
  Status MergeFrom(const std::string& other_path);

  Result<std::int64_t> AddSweep(const std::string& spec_json);
  Status UpdateSweep(std::int64_t id, const std::string& status, std::int64_t runs_total,
                     std::int64_t runs_done, const std::string& message);
  Result<std::optional<SweepRow>> GetSweep(std::int64_t id);
  Result<std::vector<SweepRow>> UnfinishedSweeps();  // queued or running, oldest first

  // The newest run stored under exactly these inputs.
  Result<std::optional<RunRow>> FindRun(const RunInputs& in);
  Result<std::optional<StoredTrace>> GetTraceById(std::int64_t id);

  // A captured trace and its place in the replay queue, in one transaction:
  // stored and queued when new and fewer than `queue_limit` traces wait;
  // not stored at all (*queue_full) when new and the queue is full; found
  // (*created false) when the same bytes are stored already.
  Result<std::int64_t> PutCapturedTrace(const std::string& name, const std::string& provenance,
                                        const std::string& body, std::size_t queue_limit, bool* created,
                                        bool* queue_full);
  // Queued or running (a restart resumes both), oldest first.
  Result<std::vector<QueuedTrace>> PendingCaptured();
  Status SetCapturedState(std::int64_t trace_id, const std::string& state, const std::string& message);
  Result<QueueCounts> CountCaptured();
  // Replaces the trace's rows for this code version.
  Status PutFidelity(std::int64_t trace_id, const std::vector<FidelityRow>& rows);
  Result<std::vector<FidelityRow>> ListFidelity(const std::string& trace_hash, std::int64_t limit);
  Status PutVerdicts(std::int64_t trace_id, const std::vector<VerdictRow>& rows);
  Result<std::vector<VerdictRow>> ListVerdicts(const VerdictFilter& filter);

  const std::string& path() const { return db_.path(); }

 private:
  explicit ResultsStore(Database db) : db_(std::move(db)) {}
  Result<std::int64_t> PutNamed(const std::string& table, const std::string& name,
                                const std::string& body, const std::string& provenance, bool* created);
  Result<std::int64_t> InsertRun(const RunInputs& in, const RunMeta& meta, const std::string& outcome,
                                 const sim::SimResult* r, const std::string& result_json,
                                 const std::vector<std::pair<std::string, std::string>>& violations);

  std::mutex mu_;
  Database db_;
};

}  // namespace residency::store
