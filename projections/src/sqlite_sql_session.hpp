// The SqlSession of a SQL read model kept in SQLite (internal): one connection, used by one thread at a time.
#pragma once

#include "evs/projections/sql_session.hpp"
#include "sqlite_connection.hpp"

namespace evs::detail {

class SqliteSqlSession final : public SqlSession {
 public:
  explicit SqliteSqlSession(sqlite::Connection& connection) : connection_(connection) {}

  void exec(std::string_view sql, std::initializer_list<SqlValue> params = {}) override;
  std::vector<SqlRow> query(std::string_view sql, std::initializer_list<SqlValue> params = {}) override;
  std::optional<SqlValue> scalar(std::string_view sql, std::initializer_list<SqlValue> params = {}) override;
  std::int64_t changes() const override { return changes_; }
  SqlDialect dialect() const override { return SqlDialect::sqlite; }

 private:
  sqlite::Connection& connection_;
  std::int64_t changes_ = 0;
};

}  // namespace evs::detail
