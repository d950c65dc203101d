#include "harness/store/schema.h"

#include <string>
#include <vector>

namespace residency::store {
namespace {

// Append only: a shipped migration never changes.
const std::vector<std::string>& Migrations() {
  static const std::vector<std::string> kMigrations = {
      // v1: inputs by content hash, runs with every figure of `replay --json`.
      R"sql(
CREATE TABLE traces (
  id INTEGER PRIMARY KEY,
  hash TEXT NOT NULL UNIQUE,
  name TEXT NOT NULL,
  provenance TEXT NOT NULL DEFAULT '',
  bytes INTEGER NOT NULL,
  body BLOB NOT NULL,
  added_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ','now')));
CREATE TABLE profiles (
  id INTEGER PRIMARY KEY,
  hash TEXT NOT NULL UNIQUE,
  name TEXT NOT NULL,
  body TEXT NOT NULL);
CREATE TABLE policies (
  id INTEGER PRIMARY KEY,
  hash TEXT NOT NULL UNIQUE,
  name TEXT NOT NULL,
  body TEXT NOT NULL);
CREATE TABLE runs (
  id INTEGER PRIMARY KEY,
  trace_id INTEGER NOT NULL REFERENCES traces(id),
  profile_id INTEGER NOT NULL REFERENCES profiles(id),
  policy_id INTEGER NOT NULL REFERENCES policies(id),
  seed INTEGER NOT NULL,
  code_version TEXT NOT NULL,
  host TEXT NOT NULL,
  started_at TEXT NOT NULL,
  duration_s REAL NOT NULL,
  outcome TEXT NOT NULL CHECK (outcome IN ('ok','infeasible','oom','violation','error')),
  makespan_ns INTEGER, load_ns INTEGER,
  disk_read_bytes INTEGER, page_cache_read_bytes INTEGER, h2d_bytes INTEGER, d2h_bytes INTEGER,
  spill_write_bytes INTEGER, ram_cache_hits INTEGER, device_hits INTEGER, disk_loads INTEGER,
  spill_loads INTEGER, pin_fallbacks INTEGER, finalizers INTEGER,
  peak_host_bytes INTEGER, peak_pinned_bytes INTEGER, peak_device_bytes INTEGER,
  peak_page_cache_bytes INTEGER, events INTEGER, commands INTEGER,
  event_log_hash TEXT,
  result_json TEXT NOT NULL,
  UNIQUE (trace_id, profile_id, policy_id, seed, code_version));
CREATE TABLE prompts (
  run_id INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
  prompt INTEGER NOT NULL,
  begin_ns INTEGER NOT NULL,
  wall_ns INTEGER NOT NULL,
  measured_wall_ns INTEGER,
  PRIMARY KEY (run_id, prompt));
CREATE TABLE violations (
  run_id INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
  ordinal INTEGER NOT NULL,
  kind TEXT NOT NULL CHECK (kind IN ('invariant','failed_op','oom','error')),
  message TEXT NOT NULL,
  PRIMARY KEY (run_id, ordinal));
CREATE INDEX runs_by_inputs ON runs(trace_id, profile_id, policy_id);
)sql",
      // v2: sweeps queued through the agent, so a restart can resume them.
      R"sql(
CREATE TABLE sweeps (
  id INTEGER PRIMARY KEY,
  spec TEXT NOT NULL,
  status TEXT NOT NULL CHECK (status IN ('queued','running','done','failed')),
  runs_total INTEGER NOT NULL DEFAULT 0,
  runs_done INTEGER NOT NULL DEFAULT 0,
  message TEXT NOT NULL DEFAULT '',
  created_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ','now')),
  finished_at TEXT);
)sql",
      // v3: what each prompt read from disk (a RAM cache shows as zeros).
      R"sql(
ALTER TABLE prompts ADD COLUMN disk_read_bytes INTEGER;
)sql",
      // v4: the peak of all RAM a run takes (host + page cache at once), so
      // mmap'd weights compare like with like against anonymous copies.
      R"sql(
ALTER TABLE runs ADD COLUMN peak_ram_bytes INTEGER;
)sql",
      // v5: captured traffic. Captured traces wait in a queue that survives a
      // restart; each is replayed on its own machine (fidelity, per prompt)
      // and under the agent's gate (one verdict per profile and candidate).
      R"sql(
CREATE TABLE captured_queue (
  trace_id INTEGER PRIMARY KEY REFERENCES traces(id),
  state TEXT NOT NULL CHECK (state IN ('queued','running','done','failed')),
  attempts INTEGER NOT NULL DEFAULT 0,
  message TEXT NOT NULL DEFAULT '',
  queued_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ','now')),
  finished_at TEXT);
CREATE INDEX captured_queue_by_state ON captured_queue(state, trace_id);
CREATE TABLE fidelity (
  trace_id INTEGER NOT NULL REFERENCES traces(id),
  code_version TEXT NOT NULL,
  host TEXT NOT NULL,
  policy_detail TEXT NOT NULL,
  prompt INTEGER NOT NULL,
  status TEXT NOT NULL,
  captured_ns INTEGER,
  simulated_ns INTEGER NOT NULL,
  error REAL,
  PRIMARY KEY (trace_id, code_version, prompt));
CREATE TABLE verdicts (
  trace_id INTEGER NOT NULL REFERENCES traces(id),
  code_version TEXT NOT NULL,
  gate TEXT NOT NULL,
  profile TEXT NOT NULL,
  baseline TEXT NOT NULL,
  candidate TEXT NOT NULL,
  metric TEXT NOT NULL,
  threshold_pct REAL NOT NULL,
  verdict TEXT NOT NULL,
  baseline_outcome TEXT NOT NULL,
  candidate_outcome TEXT NOT NULL,
  baseline_value INTEGER,
  candidate_value INTEGER,
  delta_pct REAL,
  baseline_run INTEGER REFERENCES runs(id),
  candidate_run INTEGER REFERENCES runs(id),
  created_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ','now')),
  PRIMARY KEY (trace_id, code_version, gate, profile, candidate));
)sql",
  };
  return kMigrations;
}

Result<int> UserVersion(Database& db) {
  RESIDENCY_ASSIGN_OR_RETURN(Statement st, db.Prepare("PRAGMA user_version"));
  RESIDENCY_ASSIGN_OR_RETURN(bool row, st.Step());
  return row ? static_cast<int>(st.Int(0)) : 0;
}

}  // namespace

int SchemaVersion() { return static_cast<int>(Migrations().size()); }

Status Migrate(Database& db) {
  for (;;) {
    RESIDENCY_ASSIGN_OR_RETURN(Transaction tx, Transaction::Begin(db));
    RESIDENCY_ASSIGN_OR_RETURN(int have, UserVersion(db));
    if (have > SchemaVersion()) {
      return FailedPrecondition(db.path() + ": schema v" + std::to_string(have) +
                                " is newer than this build's v" + std::to_string(SchemaVersion()) +
                                "; use a newer residency");
    }
    if (have == SchemaVersion()) return Status::Ok();
    RESIDENCY_RETURN_IF_ERROR(db.Exec(Migrations()[static_cast<std::size_t>(have)]));
    RESIDENCY_RETURN_IF_ERROR(db.Exec("PRAGMA user_version = " + std::to_string(have + 1)));
    RESIDENCY_RETURN_IF_ERROR(tx.Commit());
  }
}

}  // namespace residency::store
