#include "harness/store/sqlite_db.h"

#include <sqlite3.h>

namespace residency::store {
namespace {

Status SqlError(sqlite3* db, const std::string& where, int rc) {
  const char* msg = db ? sqlite3_errmsg(db) : sqlite3_errstr(rc);
  const StatusCode code = (rc == SQLITE_CORRUPT || rc == SQLITE_NOTADB) ? StatusCode::kDataLoss
                          : rc == SQLITE_CONSTRAINT                     ? StatusCode::kFailedPrecondition
                                                                        : StatusCode::kInternal;
  return Status(code, where + ": " + msg);
}

}  // namespace

void Statement::Finalize::operator()(sqlite3_stmt* s) const { sqlite3_finalize(s); }
void Database::Close::operator()(sqlite3* db) const { sqlite3_close_v2(db); }

Statement::Statement(sqlite3_stmt* stmt, std::string where)
    : stmt_(stmt), where_(std::move(where)) {}

namespace {
Status BindResult(sqlite3_stmt* s, int rc, const std::string& where) {
  if (rc == SQLITE_OK) return Status::Ok();
  return SqlError(sqlite3_db_handle(s), where + " (bind)", rc);
}
}  // namespace

Statement& Statement::Bind(int index, std::int64_t value) {
  if (bind_error_.ok()) bind_error_ = BindResult(stmt_.get(), sqlite3_bind_int64(stmt_.get(), index, value), where_);
  return *this;
}
Statement& Statement::Bind(int index, double value) {
  if (bind_error_.ok()) bind_error_ = BindResult(stmt_.get(), sqlite3_bind_double(stmt_.get(), index, value), where_);
  return *this;
}
Statement& Statement::Bind(int index, std::string_view text) {
  if (bind_error_.ok())
    bind_error_ = BindResult(stmt_.get(),
                             sqlite3_bind_text64(stmt_.get(), index, text.data(), text.size(),
                                                 SQLITE_TRANSIENT, SQLITE_UTF8),
                             where_);
  return *this;
}
Statement& Statement::BindBlob(int index, std::string_view bytes) {
  if (bind_error_.ok())
    bind_error_ = BindResult(stmt_.get(),
                             sqlite3_bind_blob64(stmt_.get(), index, bytes.data(), bytes.size(), SQLITE_TRANSIENT),
                             where_);
  return *this;
}
Statement& Statement::BindNull(int index) {
  if (bind_error_.ok()) bind_error_ = BindResult(stmt_.get(), sqlite3_bind_null(stmt_.get(), index), where_);
  return *this;
}

Result<bool> Statement::Step() {
  if (!bind_error_.ok()) return bind_error_;
  const int rc = sqlite3_step(stmt_.get());
  if (rc == SQLITE_ROW) return true;
  if (rc == SQLITE_DONE) return false;
  return SqlError(sqlite3_db_handle(stmt_.get()), where_, rc);
}

Status Statement::Run() {
  for (;;) {
    RESIDENCY_ASSIGN_OR_RETURN(bool row, Step());
    if (!row) return Status::Ok();
  }
}

void Statement::Reset() {
  sqlite3_reset(stmt_.get());
  sqlite3_clear_bindings(stmt_.get());
  bind_error_ = Status::Ok();
}

std::int64_t Statement::Int(int column) const { return sqlite3_column_int64(stmt_.get(), column); }
double Statement::Double(int column) const { return sqlite3_column_double(stmt_.get(), column); }
std::string Statement::Text(int column) const {
  const void* p = sqlite3_column_blob(stmt_.get(), column);
  const int n = sqlite3_column_bytes(stmt_.get(), column);
  return p ? std::string(static_cast<const char*>(p), static_cast<std::size_t>(n)) : std::string();
}
bool Statement::IsNull(int column) const {
  return sqlite3_column_type(stmt_.get(), column) == SQLITE_NULL;
}

Result<Database> Database::Open(const std::string& path) {
  sqlite3* raw = nullptr;
  const int rc = sqlite3_open_v2(path.c_str(), &raw,
                                 SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_FULLMUTEX, nullptr);
  Database db;
  db.db_.reset(raw);
  db.path_ = path;
  if (rc != SQLITE_OK) return SqlError(raw, path + ": open", rc);
  sqlite3_busy_timeout(raw, 30000);
  sqlite3_extended_result_codes(raw, 0);
  RESIDENCY_RETURN_IF_ERROR(db.Exec("PRAGMA journal_mode=WAL"));
  RESIDENCY_RETURN_IF_ERROR(db.Exec("PRAGMA synchronous=FULL"));
  RESIDENCY_RETURN_IF_ERROR(db.Exec("PRAGMA foreign_keys=ON"));
  return db;
}

Status Database::Exec(const std::string& sql) {
  char* err = nullptr;
  const int rc = sqlite3_exec(db_.get(), sql.c_str(), nullptr, nullptr, &err);
  if (rc == SQLITE_OK) return Status::Ok();
  std::string msg = err ? err : sqlite3_errstr(rc);
  sqlite3_free(err);
  const std::string head = sql.substr(0, sql.find('\n'));
  const StatusCode code = (rc == SQLITE_CORRUPT || rc == SQLITE_NOTADB) ? StatusCode::kDataLoss : StatusCode::kInternal;
  return Status(code, path_ + ": " + head.substr(0, 60) + ": " + msg);
}

Result<Statement> Database::Prepare(const std::string& sql) {
  sqlite3_stmt* stmt = nullptr;
  const std::string where = path_ + ": " + sql.substr(0, 60);
  const int rc = sqlite3_prepare_v2(db_.get(), sql.c_str(), static_cast<int>(sql.size()), &stmt, nullptr);
  if (rc != SQLITE_OK) return SqlError(db_.get(), where, rc);
  return Statement(stmt, where);
}

std::int64_t Database::LastInsertId() const { return sqlite3_last_insert_rowid(db_.get()); }
std::int64_t Database::Changes() const { return sqlite3_changes64(db_.get()); }

Result<Transaction> Transaction::Begin(Database& db) {
  RESIDENCY_RETURN_IF_ERROR(db.Exec("BEGIN IMMEDIATE"));
  return Transaction(&db);
}

Transaction::~Transaction() {
  if (db_) (void)db_->Exec("ROLLBACK");
}

Status Transaction::Commit() {
  Database* db = db_;
  db_ = nullptr;
  return db->Exec("COMMIT");
}

}  // namespace residency::store
