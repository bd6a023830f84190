// The SqlSession of a SQL read model kept in PostgreSQL (internal): one PgConnection, used by one thread at
// a time. ?N and ? parameters are rewritten to $N outside quoted text and comments; rows come back in text
// form and are converted by column type (integers and booleans to int64, float4/8 to double, numeric to
// int64 when integral and in range, else double, bytea to SqlBlob, everything else text), so a query
// answers with the same value kinds as on SQLite.
#pragma once

#include "evs/projections/sql_session.hpp"
#include "pg/pg_connection.hpp"

#include <string>
#include <unordered_map>

namespace evs::detail {

// `sql` with ?N / ? parameters as $N, and the number of parameters it takes (the largest index).
struct PgSql {
  std::string text;
  int parameters = 0;
};
PgSql to_pg_parameters(std::string_view sql);

class PgSqlSession final : public SqlSession {
 public:
  explicit PgSqlSession(pg::PgConnection& connection) : connection_(connection) {}

  void exec(std::string_view sql, std::initializer_list<SqlValue> params = {}) override;
  std::vector<SqlRow> query(std::string_view sql, std::initializer_list<SqlValue> params = {}) override;
  std::optional<SqlValue> scalar(std::string_view sql, std::initializer_list<SqlValue> params = {}) override;
  std::int64_t changes() const override { return changes_; }
  SqlDialect dialect() const override { return SqlDialect::postgresql; }

 private:
  pg::PgResult run(std::string_view sql, std::initializer_list<SqlValue> params);

  pg::PgConnection& connection_;
  std::unordered_map<std::string, PgSql> rewritten_;
  std::int64_t changes_ = 0;
};

}  // namespace evs::detail
