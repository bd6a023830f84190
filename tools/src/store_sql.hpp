// Internal: direct SQL on the tables of the event store at --db, on either backend, for the commands that
// need what the EventStore interface does not expose (the streams table, statistics, integrity checks, the
// event of an id) or change it (snapshots drop). Both backends have the same tables and columns
// (eventstore/src/sqlite_schema.cpp, eventstore/src/pg/pg_schema.cpp), so a query is written once for both:
// parameters as $1, $2, ... (SQLite reads them as named parameters), CAST(x AS bigint) around a computed
// integer (PostgreSQL's sum() is numeric), and backend-specific SQL only where the dialects differ
// (postgres()). Failures throw evs::Exception with the backend's message.
#pragma once

#include "commands.hpp"

#include "evs/core/uuid.hpp"

#include <cstdint>
#include <functional>
#include <memory>
#include <string_view>
#include <vector>

namespace evs::cli {

// One statement parameter; text and uuid views must outlive the call they are passed to.
struct SqlParam {
  enum class Kind : std::uint8_t { text, integer, uuid };
  Kind kind = Kind::integer;
  std::string_view bytes;
  std::int64_t integer = 0;

  static SqlParam text(std::string_view s) { return {Kind::text, s, 0}; }
  static SqlParam of(std::int64_t n) { return {Kind::integer, {}, n}; }
  static SqlParam uuid(const Uuid& id) { return {Kind::uuid, id.bytes_view(), 0}; }
};

// One result row; views are valid during the row callback only.
class SqlRow {
 public:
  virtual ~SqlRow() = default;
  virtual std::int64_t integer(int column) const = 0;  // an integer column; NULL reads as 0
  virtual std::string_view text(int column) const = 0;  // a text or blob/bytea column's bytes; NULL: empty
  virtual bool is_null(int column) const = 0;
};

class StoreSql {
 public:
  using Params = std::vector<SqlParam>;
  virtual ~StoreSql() = default;

  virtual bool postgres() const = 0;

  // Runs a query and calls `row` for each row in order.
  virtual void each(std::string_view sql, const Params& params, const std::function<void(const SqlRow&)>& row) = 0;
  // Runs a statement that changes rows; returns how many it changed.
  virtual std::uint64_t change(std::string_view sql, const Params& params) = 0;
  // The first column of the first row; 0 without a row or for NULL.
  std::int64_t scalar(std::string_view sql, const Params& params = {});
  // Whether the database (on PostgreSQL: its schema) has the table `name`.
  bool has_table(std::string_view name);

  // Until end_read(), every query reads one snapshot of the store.
  virtual void begin_read() = 0;
  virtual void end_read() = 0;
};

// The tables of the store at ctx's --db, which must exist (open it with Context::open_store first: that
// checks it is an evs store and, when writable, brings its schema up to date). A read of a closed SQLite
// file opens it as immutable (see closed_database).
std::unique_ptr<StoreSql> open_store_sql(const Context& ctx, bool writable);
// The same over any database named like --db: a projection database (ProjectionOptions::database), say. A
// SQLite file must exist.
std::unique_ptr<StoreSql> open_sql_at(const Context& ctx, const std::string& location, bool writable);

}  // namespace evs::cli
