// SqlSession: what a SQL read model's handlers write through. It wraps one SQLite connection inside the
// transaction the projection engine opened for the current batch, so the handler's changes and the
// projection's checkpoint commit together (exactly-once effect on the read model).
#pragma once

#include "evs/core/error.hpp"

#include <cstdint>
#include <initializer_list>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

namespace evs {
namespace sqlite {
class Connection;
}

// A SQL value: NULL, integer, real, text or blob.
struct SqlBlob {
  std::string bytes;
  friend bool operator==(const SqlBlob&, const SqlBlob&) = default;
};
using SqlValue = std::variant<std::nullptr_t, std::int64_t, double, std::string, SqlBlob>;
using SqlRow = std::vector<SqlValue>;

class SqlSession {
 public:
  // Runs one statement with positional parameters (?1, ?2, ... or ?). Prepared statements are cached by
  // their SQL text, so passing the same literal SQL is cheap. `sql` must be exactly one statement: SQL
  // with a second statement after the first (`CREATE ...; CREATE ...`) is refused with invalid_argument
  // before anything runs; call exec once per statement. Throws evs::Exception (io_error, disk_full,
  // database_locked, invalid_argument for bad SQL, more than one statement, the wrong number of
  // parameters, or a value over SQLite's length limit) — inside a projection handler that counts as a
  // failed event and goes through the projection's retry policy. query and scalar take one statement too.
  void exec(std::string_view sql, std::initializer_list<SqlValue> params = {});
  // Runs a query and returns all rows.
  std::vector<SqlRow> query(std::string_view sql, std::initializer_list<SqlValue> params = {});
  // The first column of the first row, or nullopt when there is no row.
  std::optional<SqlValue> scalar(std::string_view sql, std::initializer_list<SqlValue> params = {});
  // Rows changed by the last exec.
  std::int64_t changes() const;

  // For the engine: wraps an open connection (used by one thread at a time).
  explicit SqlSession(sqlite::Connection& connection);
  ~SqlSession();
  SqlSession(const SqlSession&) = delete;
  SqlSession& operator=(const SqlSession&) = delete;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// Helpers to read SqlValues: throws evs::Exception(invalid_argument) on a type mismatch.
std::int64_t sql_int(const SqlValue& v);
double sql_real(const SqlValue& v);
const std::string& sql_text(const SqlValue& v);
bool sql_is_null(const SqlValue& v);

}  // namespace evs
