// SqlDatabase: a SQLite database of its own with a SqlSession on it, for running a SQL projection's
// setup() and handlers outside the projection engine — what evs::testing::ProjectionScenario runs SQL read
// models on. The engine does not use it (it opens its own connections, next to the checkpoints).
#pragma once

#include "evs/projections/sql_session.hpp"

#include <functional>
#include <memory>

namespace evs {

class SqlDatabase {
 public:
  // A private, empty in-memory database; it disappears with this object. Throws evs::Exception(io_error)
  // when SQLite cannot open one (out of memory).
  static SqlDatabase in_memory();

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
