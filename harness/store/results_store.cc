#include "harness/store/results_store.h"

#include <cstdio>
#include <filesystem>
#include <functional>

#include "harness/store/run_figures.h"
#include "harness/store/schema.h"

namespace residency::store {
namespace {

// "a.makespan_ns, a.load_ns, ..." for the figure columns.
std::string FigureList(const std::string& prefix) {
  std::string out;
  for (const FigureColumn& c : FigureColumns()) out += (out.empty() ? "" : ", ") + prefix + c.name;
  return out;
}

const std::string kRunColumns =
    "trace_id, profile_id, policy_id, seed, code_version, host, started_at, duration_s, outcome, "
    "event_log_hash, result_json";

}  // namespace

std::string ContentHash(std::string_view bytes) {
  std::uint64_t h = 1469598103934665603ull;
  for (unsigned char c : bytes) {
    h ^= c;
    h *= 1099511628211ull;
  }
  char out[17];
  std::snprintf(out, sizeof out, "%016llx", static_cast<unsigned long long>(h));
  return out;
}

Result<std::unique_ptr<ResultsStore>> ResultsStore::Open(const std::string& path) {
  RESIDENCY_ASSIGN_OR_RETURN(Database db, Database::Open(path));
  RESIDENCY_RETURN_IF_ERROR(Migrate(db));
  return std::unique_ptr<ResultsStore>(new ResultsStore(std::move(db)));
}

Result<std::int64_t> ResultsStore::PutNamed(const std::string& table, const std::string& name,
                                            const std::string& body, const std::string& provenance,
                                            bool* created) {
  const std::string hash = ContentHash(body);
  const bool is_trace = table == "traces";
  const std::string insert =
      is_trace ? "INSERT OR IGNORE INTO traces(hash, name, provenance, bytes, body) VALUES (?1, ?2, ?3, ?4, ?5)"
               : "INSERT OR IGNORE INTO " + table + "(hash, name, body) VALUES (?1, ?2, ?5)";
  std::lock_guard lock(mu_);
  RESIDENCY_ASSIGN_OR_RETURN(Statement ins, db_.Prepare(insert));
  ins.Bind(1, hash).Bind(2, name);
  if (is_trace) ins.Bind(3, provenance).Bind(4, static_cast<std::int64_t>(body.size()));
  if (is_trace) {
    ins.BindBlob(5, body);
  } else {
    ins.Bind(5, body);
  }
  RESIDENCY_RETURN_IF_ERROR(ins.Run());
  if (created) *created = db_.Changes() > 0;
  RESIDENCY_ASSIGN_OR_RETURN(Statement sel, db_.Prepare("SELECT id FROM " + table + " WHERE hash = ?1"));
  sel.Bind(1, hash);
  RESIDENCY_ASSIGN_OR_RETURN(bool row, sel.Step());
  if (!row) return Internal(db_.path() + ": " + table + " row " + hash + " vanished after insert");
  return sel.Int(0);
}

Result<std::int64_t> ResultsStore::PutTrace(const std::string& name, const std::string& provenance,
                                            const std::string& body, bool* created) {
  return PutNamed("traces", name, body, provenance, created);
}
Result<std::int64_t> ResultsStore::PutProfile(const std::string& name, const std::string& body) {
  return PutNamed("profiles", name, body, "", nullptr);
}
Result<std::int64_t> ResultsStore::PutPolicy(const std::string& name, const std::string& body) {
  return PutNamed("policies", name, body, "", nullptr);
}

Result<bool> ResultsStore::HasRun(const RunInputs& in) {
  std::lock_guard lock(mu_);
  RESIDENCY_ASSIGN_OR_RETURN(
      Statement st, db_.Prepare("SELECT 1 FROM runs WHERE trace_id=?1 AND profile_id=?2 AND policy_id=?3 "
                                "AND seed=?4 AND code_version=?5"));
  st.Bind(1, in.trace_id).Bind(2, in.profile_id).Bind(3, in.policy_id)
      .Bind(4, static_cast<std::int64_t>(in.seed)).Bind(5, in.code_version);
  return st.Step();
}

Result<std::int64_t> ResultsStore::InsertRun(const RunInputs& in, const RunMeta& meta, const std::string& outcome,
                                             const sim::SimResult* r, const std::string& result_json,
                                             const std::vector<std::pair<std::string, std::string>>& violations) {
  std::lock_guard lock(mu_);
  RESIDENCY_ASSIGN_OR_RETURN(Transaction tx, Transaction::Begin(db_));
  std::string placeholders;
  const std::size_t n = FigureColumns().size();
  for (std::size_t i = 0; i < n; ++i) placeholders += ", ?" + std::to_string(12 + i);
  RESIDENCY_ASSIGN_OR_RETURN(
      Statement ins, db_.Prepare("INSERT OR IGNORE INTO runs(" + kRunColumns + ", " + FigureList("") +
                                 ") VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11" + placeholders + ")"));
  ins.Bind(1, in.trace_id).Bind(2, in.profile_id).Bind(3, in.policy_id)
      .Bind(4, static_cast<std::int64_t>(in.seed)).Bind(5, in.code_version).Bind(6, meta.host)
      .Bind(7, meta.started_at).Bind(8, meta.duration_s).Bind(9, outcome).Bind(11, result_json);
  if (r) {
    char hash[17];
    std::snprintf(hash, sizeof hash, "%016llx", static_cast<unsigned long long>(r->event_log_hash));
    ins.Bind(10, std::string_view(hash));
    for (std::size_t i = 0; i < n; ++i) ins.Bind(static_cast<int>(12 + i), FigureColumns()[i].get(*r));
  } else {
    ins.BindNull(10);
  }
  RESIDENCY_RETURN_IF_ERROR(ins.Run());
  RESIDENCY_ASSIGN_OR_RETURN(
      Statement sel, db_.Prepare("SELECT id, changes() FROM runs WHERE trace_id=?1 AND profile_id=?2 AND "
                                 "policy_id=?3 AND seed=?4 AND code_version=?5"));
  sel.Bind(1, in.trace_id).Bind(2, in.profile_id).Bind(3, in.policy_id)
      .Bind(4, static_cast<std::int64_t>(in.seed)).Bind(5, in.code_version);
  RESIDENCY_ASSIGN_OR_RETURN(bool row, sel.Step());
  if (!row) return Internal(db_.path() + ": run vanished after insert");
  const std::int64_t id = sel.Int(0);
  const bool inserted = sel.Int(1) > 0;
  if (inserted && r) {
    RESIDENCY_ASSIGN_OR_RETURN(
        Statement p, db_.Prepare("INSERT INTO prompts(run_id, prompt, begin_ns, wall_ns, measured_wall_ns, "
                                 "disk_read_bytes) VALUES (?1, ?2, ?3, ?4, ?5, ?6)"));
    for (const sim::PromptTiming& t : r->prompts) {
      p.Reset();
      p.Bind(1, id).Bind(2, static_cast<std::int64_t>(t.prompt)).Bind(3, t.begin_ns).Bind(4, t.wall_ns());
      if (t.measured_wall_ns >= 0) {
        p.Bind(5, t.measured_wall_ns);
      } else {
        p.BindNull(5);
      }
      p.Bind(6, t.disk_read_bytes);
      RESIDENCY_RETURN_IF_ERROR(p.Run());
    }
  }
  if (inserted) {
    RESIDENCY_ASSIGN_OR_RETURN(
        Statement v, db_.Prepare("INSERT INTO violations(run_id, ordinal, kind, message) VALUES (?1, ?2, ?3, ?4)"));
    std::int64_t ordinal = 0;
    for (const auto& [kind, message] : violations) {
      v.Reset();
      v.Bind(1, id).Bind(2, ordinal++).Bind(3, kind).Bind(4, message);
      RESIDENCY_RETURN_IF_ERROR(v.Run());
    }
  }
  RESIDENCY_RETURN_IF_ERROR(tx.Commit());
  return id;
}

Result<std::int64_t> ResultsStore::PutRun(const RunInputs& in, const RunMeta& meta, const sim::SimResult& r,
                                          const std::string& result_json) {
  std::vector<std::pair<std::string, std::string>> violations;
  if (r.oom.happened) violations.emplace_back("oom", r.oom.message);
  for (const std::string& v : r.violations) violations.emplace_back("invariant", v);
  for (const std::string& f : r.tally.failed_ops) violations.emplace_back("failed_op", f);
  return InsertRun(in, meta, Outcome(r), &r, result_json, violations);
}

Result<std::int64_t> ResultsStore::PutFailedRun(const RunInputs& in, const RunMeta& meta,
                                                const std::string& message) {
  return InsertRun(in, meta, "error", nullptr, "{}", {{"error", message}});
}

namespace {

Result<std::vector<RunRow>> ReadRuns(Database& db, const std::string& where,
                                     const std::function<void(Statement&)>& bind) {
  RESIDENCY_ASSIGN_OR_RETURN(
      Statement st,
      db.Prepare("SELECT r.id, t.name, t.hash, pr.name, po.name, r.seed, r.code_version, r.host, r.started_at, "
                 "r.outcome, r.duration_s, " + FigureList("r.") +
                 " FROM runs r JOIN traces t ON t.id = r.trace_id JOIN profiles pr ON pr.id = r.profile_id "
                 "JOIN policies po ON po.id = r.policy_id " + where));
  bind(st);
  RESIDENCY_ASSIGN_OR_RETURN(
      Statement viol, db.Prepare("SELECT kind, message FROM violations WHERE run_id = ?1 ORDER BY ordinal"));
  std::vector<RunRow> rows;
  for (;;) {
    RESIDENCY_ASSIGN_OR_RETURN(bool more, st.Step());
    if (!more) break;
    RunRow row;
    row.id = st.Int(0);
    row.trace = st.Text(1);
    row.trace_hash = st.Text(2);
    row.profile = st.Text(3);
    row.policy = st.Text(4);
    row.seed = static_cast<std::uint64_t>(st.Int(5));
    row.code_version = st.Text(6);
    row.host = st.Text(7);
    row.started_at = st.Text(8);
    row.outcome = st.Text(9);
    row.duration_s = st.Double(10);
    for (std::size_t i = 0; i < FigureColumns().size(); ++i) {
      const int col = static_cast<int>(11 + i);
      if (!st.IsNull(col)) row.figures[FigureColumns()[i].name] = st.Int(col);
    }
    viol.Reset();
    viol.Bind(1, row.id);
    for (;;) {
      RESIDENCY_ASSIGN_OR_RETURN(bool v, viol.Step());
      if (!v) break;
      row.violations.push_back(viol.Text(0) + ": " + viol.Text(1));
    }
    rows.push_back(std::move(row));
  }
  return rows;
}

}  // namespace

Result<std::vector<RunRow>> ResultsStore::ListRuns(const RunFilter& f) {
  std::lock_guard lock(mu_);
  return ReadRuns(db_,
                  "WHERE (?1 = '' OR t.name = ?1) AND (?2 = '' OR pr.name = ?2) AND (?3 = '' OR po.name = ?3) "
                  "ORDER BY r.id LIMIT ?4 OFFSET ?5",
                  [&](Statement& st) {
                    st.Bind(1, f.trace).Bind(2, f.profile).Bind(3, f.policy).Bind(4, f.limit).Bind(5, f.offset);
                  });
}

Result<std::optional<RunRow>> ResultsStore::GetRun(std::int64_t id, std::string* result_json) {
  std::lock_guard lock(mu_);
  RESIDENCY_ASSIGN_OR_RETURN(std::vector<RunRow> rows,
                             ReadRuns(db_, "WHERE r.id = ?1", [&](Statement& st) { st.Bind(1, id); }));
  if (rows.empty()) return std::optional<RunRow>();
  if (result_json) {
    RESIDENCY_ASSIGN_OR_RETURN(Statement st, db_.Prepare("SELECT result_json FROM runs WHERE id = ?1"));
    st.Bind(1, id);
    RESIDENCY_ASSIGN_OR_RETURN(bool row, st.Step());
    *result_json = row ? st.Text(0) : "{}";
  }
  return std::optional<RunRow>(std::move(rows.front()));
}

Result<std::optional<RunRow>> ResultsStore::FindRun(const RunInputs& in) {
  std::lock_guard lock(mu_);
  RESIDENCY_ASSIGN_OR_RETURN(
      std::vector<RunRow> rows,
      ReadRuns(db_,
               "WHERE r.trace_id = ?1 AND r.profile_id = ?2 AND r.policy_id = ?3 AND r.seed = ?4 AND "
               "r.code_version = ?5 ORDER BY r.id DESC LIMIT 1",
               [&](Statement& st) {
                 st.Bind(1, in.trace_id).Bind(2, in.profile_id).Bind(3, in.policy_id)
                     .Bind(4, static_cast<std::int64_t>(in.seed)).Bind(5, in.code_version);
               }));
  if (rows.empty()) return std::optional<RunRow>();
  return std::optional<RunRow>(std::move(rows.front()));
}

Result<std::int64_t> ResultsStore::CountRuns() {
  std::lock_guard lock(mu_);
  RESIDENCY_ASSIGN_OR_RETURN(Statement st, db_.Prepare("SELECT count(*) FROM runs"));
  RESIDENCY_ASSIGN_OR_RETURN(bool row, st.Step());
  return row ? st.Int(0) : 0;
}

Result<std::optional<StoredTrace>> ResultsStore::GetTrace(const std::string& hash) {
  std::lock_guard lock(mu_);
  RESIDENCY_ASSIGN_OR_RETURN(Statement st,
                             db_.Prepare("SELECT id, hash, name, provenance, body FROM traces WHERE hash = ?1"));
  st.Bind(1, hash);
  RESIDENCY_ASSIGN_OR_RETURN(bool row, st.Step());
  if (!row) return std::optional<StoredTrace>();
  return std::optional<StoredTrace>(StoredTrace{st.Int(0), st.Text(1), st.Text(2), st.Text(3), st.Text(4)});
}

Result<std::optional<StoredTrace>> ResultsStore::GetTraceById(std::int64_t id) {
  std::lock_guard lock(mu_);
  RESIDENCY_ASSIGN_OR_RETURN(Statement st,
                             db_.Prepare("SELECT id, hash, name, provenance, body FROM traces WHERE id = ?1"));
  st.Bind(1, id);
  RESIDENCY_ASSIGN_OR_RETURN(bool row, st.Step());
  if (!row) return std::optional<StoredTrace>();
  return std::optional<StoredTrace>(StoredTrace{st.Int(0), st.Text(1), st.Text(2), st.Text(3), st.Text(4)});
}

Result<std::vector<StoredTrace>> ResultsStore::ListTraces() {
  std::lock_guard lock(mu_);
  RESIDENCY_ASSIGN_OR_RETURN(Statement st, db_.Prepare("SELECT id, hash, name, provenance FROM traces ORDER BY id"));
  std::vector<StoredTrace> out;
  for (;;) {
    RESIDENCY_ASSIGN_OR_RETURN(bool row, st.Step());
    if (!row) return out;
    out.push_back(StoredTrace{st.Int(0), st.Text(1), st.Text(2), st.Text(3), ""});
  }
}

Status ResultsStore::MergeFrom(const std::string& other_path) {
  std::error_code ec;
  if (!std::filesystem::is_regular_file(other_path, ec)) return NotFound(other_path + ": no such results database");
  {
    // Bring the other file to this schema first (and refuse a newer one).
    RESIDENCY_ASSIGN_OR_RETURN(Database other, Database::Open(other_path));
    RESIDENCY_RETURN_IF_ERROR(Migrate(other));
  }
  std::lock_guard lock(mu_);
  RESIDENCY_ASSIGN_OR_RETURN(Statement attach, db_.Prepare("ATTACH DATABASE ?1 AS src"));
  attach.Bind(1, other_path);
  RESIDENCY_RETURN_IF_ERROR(attach.Run());
  Status s = [&]() -> Status {
    RESIDENCY_ASSIGN_OR_RETURN(Transaction tx, Transaction::Begin(db_));
    RESIDENCY_RETURN_IF_ERROR(db_.Exec(
        "INSERT OR IGNORE INTO traces(hash, name, provenance, bytes, body, added_at) "
        "SELECT hash, name, provenance, bytes, body, added_at FROM src.traces ORDER BY id;"
        "INSERT OR IGNORE INTO profiles(hash, name, body) SELECT hash, name, body FROM src.profiles ORDER BY id;"
        "INSERT OR IGNORE INTO policies(hash, name, body) SELECT hash, name, body FROM src.policies ORDER BY id;"));
    const std::string figures = FigureList("");
    RESIDENCY_RETURN_IF_ERROR(db_.Exec(
        "INSERT OR IGNORE INTO runs(" + kRunColumns + ", " + figures + ") "
        "SELECT mt.id, mp.id, mo.id, r.seed, r.code_version, r.host, r.started_at, r.duration_s, r.outcome, "
        "r.event_log_hash, r.result_json, " + FigureList("r.") +
        " FROM src.runs r JOIN src.traces st ON st.id = r.trace_id JOIN src.profiles sp ON sp.id = r.profile_id "
        "JOIN src.policies so ON so.id = r.policy_id JOIN main.traces mt ON mt.hash = st.hash "
        "JOIN main.profiles mp ON mp.hash = sp.hash JOIN main.policies mo ON mo.hash = so.hash ORDER BY r.id;"
        "CREATE TEMP TABLE IF NOT EXISTS run_map(src_id INTEGER PRIMARY KEY, dst_id INTEGER);"
        "DELETE FROM temp.run_map;"
        "INSERT INTO temp.run_map SELECT r.id, m.id FROM src.runs r "
        "JOIN src.traces st ON st.id = r.trace_id JOIN src.profiles sp ON sp.id = r.profile_id "
        "JOIN src.policies so ON so.id = r.policy_id JOIN main.traces mt ON mt.hash = st.hash "
        "JOIN main.profiles mp ON mp.hash = sp.hash JOIN main.policies mo ON mo.hash = so.hash "
        "JOIN main.runs m ON m.trace_id = mt.id AND m.profile_id = mp.id AND m.policy_id = mo.id "
        "AND m.seed = r.seed AND m.code_version = r.code_version;"
        "INSERT OR IGNORE INTO prompts(run_id, prompt, begin_ns, wall_ns, measured_wall_ns, disk_read_bytes) "
        "SELECT map.dst_id, p.prompt, p.begin_ns, p.wall_ns, p.measured_wall_ns, p.disk_read_bytes "
        "FROM src.prompts p JOIN temp.run_map map ON map.src_id = p.run_id;"
        "INSERT OR IGNORE INTO violations SELECT map.dst_id, v.ordinal, v.kind, v.message "
        "FROM src.violations v JOIN temp.run_map map ON map.src_id = v.run_id;"));
    return tx.Commit();
  }();
  const Status detach = db_.Exec("DETACH DATABASE src");
  if (!s.ok()) return Status(s.code(), "merging " + other_path + ": " + s.message());
  return detach;
}

Result<std::int64_t> ResultsStore::AddSweep(const std::string& spec_json) {
  std::lock_guard lock(mu_);
  RESIDENCY_ASSIGN_OR_RETURN(Statement st, db_.Prepare("INSERT INTO sweeps(spec, status) VALUES (?1, 'queued')"));
  st.Bind(1, spec_json);
  RESIDENCY_RETURN_IF_ERROR(st.Run());
  return db_.LastInsertId();
}

Status ResultsStore::UpdateSweep(std::int64_t id, const std::string& status, std::int64_t runs_total,
                                 std::int64_t runs_done, const std::string& message) {
  std::lock_guard lock(mu_);
  RESIDENCY_ASSIGN_OR_RETURN(
      Statement st,
      db_.Prepare("UPDATE sweeps SET status = ?2, runs_total = ?3, runs_done = ?4, message = ?5, "
                  "finished_at = CASE WHEN ?2 IN ('done','failed') THEN strftime('%Y-%m-%dT%H:%M:%fZ','now') "
                  "ELSE NULL END WHERE id = ?1"));
  st.Bind(1, id).Bind(2, status).Bind(3, runs_total).Bind(4, runs_done).Bind(5, message);
  return st.Run();
}

namespace {
Result<std::vector<SweepRow>> ReadSweeps(Statement& st) {
  std::vector<SweepRow> out;
  for (;;) {
    RESIDENCY_ASSIGN_OR_RETURN(bool row, st.Step());
    if (!row) return out;
    out.push_back(SweepRow{st.Int(0), st.Text(1), st.Text(2), st.Text(3), st.Text(4), st.Int(5), st.Int(6)});
  }
}
const char* kSweepColumns = "SELECT id, spec, status, message, created_at, runs_total, runs_done FROM sweeps ";
}  // namespace

Result<std::optional<SweepRow>> ResultsStore::GetSweep(std::int64_t id) {
  std::lock_guard lock(mu_);
  RESIDENCY_ASSIGN_OR_RETURN(Statement st, db_.Prepare(std::string(kSweepColumns) + "WHERE id = ?1"));
  st.Bind(1, id);
  RESIDENCY_ASSIGN_OR_RETURN(std::vector<SweepRow> rows, ReadSweeps(st));
  if (rows.empty()) return std::optional<SweepRow>();
  return std::optional<SweepRow>(rows.front());
}

Result<std::vector<SweepRow>> ResultsStore::UnfinishedSweeps() {
  std::lock_guard lock(mu_);
  RESIDENCY_ASSIGN_OR_RETURN(
      Statement st, db_.Prepare(std::string(kSweepColumns) + "WHERE status IN ('queued','running') ORDER BY id"));
  return ReadSweeps(st);
}

}  // namespace residency::store
