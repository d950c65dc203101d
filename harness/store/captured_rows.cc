// The results store's captured-traffic tables (schema v5): the replay queue,
// fidelity rows and gate verdicts. ResultsStore methods, kept apart from the
// runs and sweeps they sit beside.
#include "harness/store/results_store.h"

namespace residency::store {
namespace {

void BindOptional(Statement& st, int index, const std::optional<std::int64_t>& v) {
  if (v) {
    st.Bind(index, *v);
  } else {
    st.BindNull(index);
  }
}
void BindOptional(Statement& st, int index, const std::optional<double>& v) {
  if (v) {
    st.Bind(index, *v);
  } else {
    st.BindNull(index);
  }
}

}  // namespace

Result<std::int64_t> ResultsStore::PutCapturedTrace(const std::string& name, const std::string& provenance,
                                                    const std::string& body, std::size_t queue_limit, bool* created,
                                                    bool* queue_full) {
  *created = false;
  *queue_full = false;
  const std::string hash = ContentHash(body);
  std::lock_guard lock(mu_);
  RESIDENCY_ASSIGN_OR_RETURN(Transaction tx, Transaction::Begin(db_));
  RESIDENCY_ASSIGN_OR_RETURN(Statement have, db_.Prepare("SELECT id FROM traces WHERE hash = ?1"));
  have.Bind(1, hash);
  RESIDENCY_ASSIGN_OR_RETURN(bool found, have.Step());
  if (found) {
    const std::int64_t id = have.Int(0);
    RESIDENCY_RETURN_IF_ERROR(tx.Commit());
    return id;
  }
  RESIDENCY_ASSIGN_OR_RETURN(
      Statement waiting, db_.Prepare("SELECT count(*) FROM captured_queue WHERE state IN ('queued','running')"));
  RESIDENCY_ASSIGN_OR_RETURN(bool counted, waiting.Step());
  if (counted && waiting.Int(0) >= static_cast<std::int64_t>(queue_limit)) {
    *queue_full = true;
    return std::int64_t{0};  // the transaction rolls back: nothing stored
  }
  RESIDENCY_ASSIGN_OR_RETURN(
      Statement ins,
      db_.Prepare("INSERT INTO traces(hash, name, provenance, bytes, body) VALUES (?1, ?2, ?3, ?4, ?5)"));
  ins.Bind(1, hash).Bind(2, name).Bind(3, provenance).Bind(4, static_cast<std::int64_t>(body.size())).BindBlob(5, body);
  RESIDENCY_RETURN_IF_ERROR(ins.Run());
  const std::int64_t id = db_.LastInsertId();
  RESIDENCY_ASSIGN_OR_RETURN(Statement q,
                             db_.Prepare("INSERT INTO captured_queue(trace_id, state) VALUES (?1, 'queued')"));
  q.Bind(1, id);
  RESIDENCY_RETURN_IF_ERROR(q.Run());
  RESIDENCY_RETURN_IF_ERROR(tx.Commit());
  *created = true;
  return id;
}

Result<std::vector<QueuedTrace>> ResultsStore::PendingCaptured() {
  std::lock_guard lock(mu_);
  RESIDENCY_ASSIGN_OR_RETURN(
      Statement st, db_.Prepare("SELECT q.trace_id, t.hash, t.name, q.state, q.message, q.attempts FROM captured_queue q "
                                "JOIN traces t ON t.id = q.trace_id WHERE q.state IN ('queued','running') "
                                "ORDER BY q.queued_at, q.trace_id"));
  std::vector<QueuedTrace> out;
  for (;;) {
    RESIDENCY_ASSIGN_OR_RETURN(bool row, st.Step());
    if (!row) return out;
    out.push_back(QueuedTrace{st.Int(0), st.Text(1), st.Text(2), st.Text(3), st.Text(4), st.Int(5)});
  }
}

Status ResultsStore::SetCapturedState(std::int64_t trace_id, const std::string& state, const std::string& message) {
  std::lock_guard lock(mu_);
  RESIDENCY_ASSIGN_OR_RETURN(
      Statement st,
      db_.Prepare("UPDATE captured_queue SET state = ?2, message = ?3, "
                  "attempts = attempts + CASE WHEN ?2 = 'running' THEN 1 ELSE 0 END, "
                  "finished_at = CASE WHEN ?2 IN ('done','failed') THEN strftime('%Y-%m-%dT%H:%M:%fZ','now') "
                  "ELSE NULL END WHERE trace_id = ?1"));
  st.Bind(1, trace_id).Bind(2, state).Bind(3, message);
  return st.Run();
}

Result<QueueCounts> ResultsStore::CountCaptured() {
  std::lock_guard lock(mu_);
  RESIDENCY_ASSIGN_OR_RETURN(Statement st, db_.Prepare("SELECT state, count(*) FROM captured_queue GROUP BY state"));
  QueueCounts c;
  for (;;) {
    RESIDENCY_ASSIGN_OR_RETURN(bool row, st.Step());
    if (!row) return c;
    const std::string state = st.Text(0);
    const std::int64_t n = st.Int(1);
    if (state == "queued") c.queued = n;
    if (state == "running") c.running = n;
    if (state == "done") c.done = n;
    if (state == "failed") c.failed = n;
  }
}

Status ResultsStore::PutFidelity(std::int64_t trace_id, const std::vector<FidelityRow>& rows) {
  std::lock_guard lock(mu_);
  RESIDENCY_ASSIGN_OR_RETURN(Transaction tx, Transaction::Begin(db_));
  for (const FidelityRow& r : rows) {
    RESIDENCY_ASSIGN_OR_RETURN(
        Statement st, db_.Prepare("INSERT OR REPLACE INTO fidelity(trace_id, code_version, host, policy_detail, prompt, "
                                  "status, captured_ns, simulated_ns, error) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)"));
    st.Bind(1, trace_id).Bind(2, r.code_version).Bind(3, r.host).Bind(4, r.policy_detail)
        .Bind(5, static_cast<std::int64_t>(r.prompt)).Bind(6, r.status);
    BindOptional(st, 7, r.captured_ns >= 0 ? std::optional<std::int64_t>(r.captured_ns) : std::nullopt);
    st.Bind(8, r.simulated_ns);
    BindOptional(st, 9, r.error);
    RESIDENCY_RETURN_IF_ERROR(st.Run());
  }
  return tx.Commit();
}

Result<std::vector<FidelityRow>> ResultsStore::ListFidelity(const std::string& trace_hash, std::int64_t limit) {
  std::lock_guard lock(mu_);
  RESIDENCY_ASSIGN_OR_RETURN(
      Statement st,
      db_.Prepare("SELECT t.hash, t.name, f.code_version, f.host, f.policy_detail, f.prompt, f.status, f.captured_ns, "
                  "f.simulated_ns, f.error FROM fidelity f JOIN traces t ON t.id = f.trace_id "
                  "WHERE (?1 = '' OR t.hash = ?1) ORDER BY f.trace_id, f.code_version, f.prompt LIMIT ?2"));
  st.Bind(1, trace_hash).Bind(2, limit);
  std::vector<FidelityRow> out;
  for (;;) {
    RESIDENCY_ASSIGN_OR_RETURN(bool row, st.Step());
    if (!row) return out;
    FidelityRow r;
    r.trace_hash = st.Text(0);
    r.trace = st.Text(1);
    r.code_version = st.Text(2);
    r.host = st.Text(3);
    r.policy_detail = st.Text(4);
    r.prompt = static_cast<int>(st.Int(5));
    r.status = st.Text(6);
    r.captured_ns = st.IsNull(7) ? -1 : st.Int(7);
    r.simulated_ns = st.Int(8);
    if (!st.IsNull(9)) r.error = st.Double(9);
    out.push_back(std::move(r));
  }
}

Status ResultsStore::PutVerdicts(std::int64_t trace_id, const std::vector<VerdictRow>& rows) {
  std::lock_guard lock(mu_);
  RESIDENCY_ASSIGN_OR_RETURN(Transaction tx, Transaction::Begin(db_));
  for (const VerdictRow& v : rows) {
    RESIDENCY_ASSIGN_OR_RETURN(
        Statement st,
        db_.Prepare("INSERT OR REPLACE INTO verdicts(trace_id, code_version, gate, profile, baseline, candidate, metric, "
                    "threshold_pct, verdict, baseline_outcome, candidate_outcome, baseline_value, candidate_value, "
                    "delta_pct, baseline_run, candidate_run) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, "
                    "?12, ?13, ?14, ?15, ?16)"));
    st.Bind(1, trace_id).Bind(2, v.code_version).Bind(3, v.gate).Bind(4, v.profile).Bind(5, v.baseline)
        .Bind(6, v.candidate).Bind(7, v.metric).Bind(8, v.threshold_pct).Bind(9, v.verdict)
        .Bind(10, v.baseline_outcome).Bind(11, v.candidate_outcome);
    BindOptional(st, 12, v.baseline_value);
    BindOptional(st, 13, v.candidate_value);
    BindOptional(st, 14, v.delta_pct);
    BindOptional(st, 15, v.baseline_run ? std::optional<std::int64_t>(v.baseline_run) : std::nullopt);
    BindOptional(st, 16, v.candidate_run ? std::optional<std::int64_t>(v.candidate_run) : std::nullopt);
    RESIDENCY_RETURN_IF_ERROR(st.Run());
  }
  return tx.Commit();
}

Result<std::vector<VerdictRow>> ResultsStore::ListVerdicts(const VerdictFilter& f) {
  std::lock_guard lock(mu_);
  RESIDENCY_ASSIGN_OR_RETURN(
      Statement st,
      db_.Prepare("SELECT t.hash, t.name, v.code_version, v.gate, v.profile, v.baseline, v.candidate, v.metric, "
                  "v.threshold_pct, v.verdict, v.baseline_outcome, v.candidate_outcome, v.baseline_value, "
                  "v.candidate_value, v.delta_pct, v.baseline_run, v.candidate_run, v.created_at "
                  "FROM verdicts v JOIN traces t ON t.id = v.trace_id "
                  "WHERE (?1 = '' OR t.hash = ?1) AND (?2 = '' OR v.profile = ?2) AND (?3 = '' OR v.candidate = ?3) "
                  "AND (?4 = '' OR v.verdict = ?4) ORDER BY v.trace_id, v.profile, v.candidate LIMIT ?5"));
  st.Bind(1, f.trace_hash).Bind(2, f.profile).Bind(3, f.candidate).Bind(4, f.verdict).Bind(5, f.limit);
  std::vector<VerdictRow> out;
  for (;;) {
    RESIDENCY_ASSIGN_OR_RETURN(bool row, st.Step());
    if (!row) return out;
    VerdictRow v;
    v.trace_hash = st.Text(0);
    v.trace = st.Text(1);
    v.code_version = st.Text(2);
    v.gate = st.Text(3);
    v.profile = st.Text(4);
    v.baseline = st.Text(5);
    v.candidate = st.Text(6);
    v.metric = st.Text(7);
    v.threshold_pct = st.Double(8);
    v.verdict = st.Text(9);
    v.baseline_outcome = st.Text(10);
    v.candidate_outcome = st.Text(11);
    if (!st.IsNull(12)) v.baseline_value = st.Int(12);
    if (!st.IsNull(13)) v.candidate_value = st.Int(13);
    if (!st.IsNull(14)) v.delta_pct = st.Double(14);
    v.baseline_run = st.IsNull(15) ? 0 : st.Int(15);
    v.candidate_run = st.IsNull(16) ? 0 : st.Int(16);
    v.created_at = st.Text(17);
    out.push_back(std::move(v));
  }
}

}  // namespace residency::store
