// SqlDatabase: a database with a SqlSession on it, outside the projection engine: a private in-memory
// SQLite database for running a SQL projection's setup() and handlers (what evs::testing::ProjectionScenario
// runs SQL read models on), or a projection database opened by its location, to query read models from an
// application on either backend. The engine does not use it (it opens its own connections).
#pragma once

#include "evs/projections/sql_session.hpp"

#include <filesystem>
#include <functional>
#include <memory>

namespace evs {

class SqlDatabase {
 public:
  // A private, empty in-memory database; it disappears with this object. Throws evs::Exception(io_error)
  // when SQLite cannot open one (out of memory).
  static SqlDatabase in_memory();
  // The projection database at `location`, as ProjectionOptions::database names it: a SQLite file, or a
  // PostgreSQL schema ("postgresql://...?evs_schema=NAME"). Creates what the engine would create there when
  // missing (the file or the schema, and the engine's checkpoint, dead-letter and inbox tables), so a read
  // model's tables exist only once its projection has run setup(). Throws evs::Exception as the engine's
  // start() does when it cannot open the database (io_error, unavailable, invalid_argument).
  static SqlDatabase open(const std::filesystem::path& location);

  // The session on this database. Outside run_transaction() every statement commits on its own.
  SqlSession& session();

  // Runs `work(session())` in one transaction, as the engine runs a batch: committed when `work` returns,
  // rolled back when it throws (the exception propagates unchanged). Throws evs::Exception(io_error) when
  // `work` ended the transaction itself (COMMIT, ROLLBACK, INSERT OR ROLLBACK), which the engine refuses too.
  void run_transaction(const std::function<void(SqlSession&)>& work);

  SqlDatabase(SqlDatabase&&) noexcept;
  SqlDatabase& operator=(SqlDatabase&&) noexcept;
  ~SqlDatabase();
  SqlDatabase(const SqlDatabase&) = delete;
  SqlDatabase& operator=(const SqlDatabase&) = delete;

 private:
  struct Impl;
  explicit SqlDatabase(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace evs
