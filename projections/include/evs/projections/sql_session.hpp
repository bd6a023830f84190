// SqlSession: what a SQL read model's handlers write through. It runs inside the transaction the projection
// engine opened for the current batch on the projection's database (SQLite or PostgreSQL), so the handler's
// changes and the projection's checkpoint commit together (exactly-once effect on the read model).
//
// Parameters are written ?1, ?2, ... (or ?) on both databases; on PostgreSQL evs rewrites them to $1, $2, ...
// outside quoted text before sending. Handlers that keep to SQL both databases accept (CREATE TABLE IF NOT
// EXISTS, INSERT ... ON CONFLICT ... DO UPDATE, UPDATE, DELETE, SELECT with standard functions; types
// bigint/integer, double precision/real, text, and bytea/BLOB spelled per dialect() where they differ) run
// unchanged on either; see docs/projections.md.
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

// A SQL value: NULL, integer, real, text or blob.
struct SqlBlob {
  std::string bytes;
  friend bool operator==(const SqlBlob&, const SqlBlob&) = default;
};
using SqlValue = std::variant<std::nullptr_t, std::int64_t, double, std::string, SqlBlob>;
using SqlRow = std::vector<SqlValue>;

enum class SqlDialect : std::uint8_t { sqlite, postgresql };

class SqlSession {
 public:
  virtual ~SqlSession() = default;

  // Runs one statement with positional parameters (?1, ?2, ... or ?). Prepared statements are cached by
  // their SQL text, so passing the same literal SQL is cheap. `sql` must be exactly one statement: SQL
  // with a second statement after the first (`CREATE ...; CREATE ...`) is refused with invalid_argument
  // before anything runs; call exec once per statement. Throws evs::Exception (io_error, disk_full,
  // database_locked, unavailable, invalid_argument for bad SQL, more than one statement, the wrong number
  // of parameters, or a value over the database's length limit) — inside a projection handler that counts
  // as a failed event and goes through the projection's retry policy. query and scalar take one statement
  // too.
  virtual void exec(std::string_view sql, std::initializer_list<SqlValue> params = {}) = 0;
  // Runs a query and returns all rows. Integers (and booleans, as 0/1) come back as int64, floating-point
  // numbers as double, binary data as SqlBlob, everything else (text, and on PostgreSQL numeric, dates,
  // uuids, ... in PostgreSQL's text form) as text.
  virtual std::vector<SqlRow> query(std::string_view sql, std::initializer_list<SqlValue> params = {}) = 0;
  // The first column of the first row, or nullopt when there is no row.
  virtual std::optional<SqlValue> scalar(std::string_view sql, std::initializer_list<SqlValue> params = {}) = 0;
  // Rows changed by the last exec.
  virtual std::int64_t changes() const = 0;
  // The database the session writes to, for the rare statement that must be spelled per database.
  virtual SqlDialect dialect() const = 0;

 protected:
  SqlSession() = default;
  SqlSession(const SqlSession&) = delete;
  SqlSession& operator=(const SqlSession&) = delete;
};

// Helpers to read SqlValues: throws evs::Exception(invalid_argument) on a type mismatch.
std::int64_t sql_int(const SqlValue& v);
double sql_real(const SqlValue& v);
const std::string& sql_text(const SqlValue& v);
bool sql_is_null(const SqlValue& v);

}  // namespace evs
