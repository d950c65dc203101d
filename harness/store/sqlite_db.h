// A thin RAII layer over SQLite: a connection, prepared statements and an
// IMMEDIATE transaction. Every error names the database file and the SQL
// that failed; nothing throws.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "runtime/base/status.h"

struct sqlite3;
struct sqlite3_stmt;

namespace residency::store {

class Statement {
 public:
  Statement() = default;
  Statement(sqlite3_stmt* stmt, std::string where);
  Statement(Statement&&) noexcept = default;
  Statement& operator=(Statement&&) noexcept = default;

  // Parameters are 1-based, as in SQLite.
  Statement& Bind(int index, std::int64_t value);
  Statement& Bind(int index, double value);
  Statement& Bind(int index, std::string_view text);
  Statement& BindBlob(int index, std::string_view bytes);
  Statement& BindNull(int index);
  // True while a row is available; false when done.
  Result<bool> Step();
  // Runs to completion, ignoring rows (INSERT, UPDATE, DELETE).
  Status Run();
  void Reset();

  std::int64_t Int(int column) const;
  double Double(int column) const;
  std::string Text(int column) const;
  bool IsNull(int column) const;

 private:
  struct Finalize {
    void operator()(sqlite3_stmt* s) const;
  };
  std::unique_ptr<sqlite3_stmt, Finalize> stmt_;
  std::string where_;
  Status bind_error_;
};

class Database {
 public:
  // Opens (creating if needed) a database in WAL mode with foreign keys on,
  // synchronous=FULL (a commit survives a crash) and a busy timeout, so
  // several processes may share one file.
  static Result<Database> Open(const std::string& path);
  Database(Database&&) noexcept = default;
  Database& operator=(Database&&) noexcept = default;

  Status Exec(const std::string& sql);
  Result<Statement> Prepare(const std::string& sql);
  std::int64_t LastInsertId() const;
  // Rows the last INSERT, UPDATE or DELETE changed.
  std::int64_t Changes() const;
  const std::string& path() const { return path_; }

 private:
  Database() = default;
  struct Close {
    void operator()(sqlite3* db) const;
  };
  std::unique_ptr<sqlite3, Close> db_;
  std::string path_;
};

// BEGIN IMMEDIATE ... COMMIT; rolls back unless Commit() was called.
class Transaction {
 public:
  static Result<Transaction> Begin(Database& db);
  Transaction(Transaction&& other) noexcept : db_(other.db_) { other.db_ = nullptr; }
  Transaction& operator=(Transaction&&) = delete;
  ~Transaction();
  Status Commit();

 private:
  explicit Transaction(Database* db) : db_(db) {}
  Database* db_;
};

}  // namespace residency::store
