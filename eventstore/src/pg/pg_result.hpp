// RAII ownership of a PGresult (internal: the libpq layer).
//
// A PgResult holds the rows of one statement run by PgConnection::query / prepared, which always ask for
// binary results: integers and floats arrive in network byte order, bytea and text as their raw bytes.
// Row and column indexes are 0-based. The accessors do not check types: reading a column as the wrong type
// is a programming error (asserted in debug builds). Views stay valid while the PgResult lives.
#pragma once

#include <libpq-fe.h>

#include <cstdint>
#include <memory>
#include <string_view>

namespace evs::pg {

class PgResult {
 public:
  PgResult() = default;
  // Takes ownership of `result` (may be null: an empty result).
  explicit PgResult(PGresult* result) : result_(result) {}

  int rows() const { return result_ ? PQntuples(result_.get()) : 0; }
  int columns() const { return result_ ? PQnfields(result_.get()) : 0; }
  Oid column_type(int column) const { return PQftype(result_.get(), column); }

  bool is_null(int row, int column) const { return PQgetisnull(result_.get(), row, column) != 0; }
  // An int2, int4 or int8 column, widened. NULL reads as 0 (check is_null first where NULL is possible).
  std::int64_t int64(int row, int column) const;
  // A float8 column. NULL reads as 0.
  double float64(int row, int column) const;
  // A text, varchar or name column's bytes (UTF-8). NULL reads as empty.
  std::string_view text(int row, int column) const { return raw(row, column); }
  // A bytea column's bytes. NULL reads as empty.
  std::string_view bytes(int row, int column) const { return raw(row, column); }

  // The number of rows an INSERT, UPDATE or DELETE touched (PQcmdTuples); 0 for other statements.
  std::int64_t affected_rows() const;
  // The command tag ("INSERT 0 1", "COMMIT", "ROLLBACK", ...).
  std::string_view command_tag() const;

  PGresult* handle() const { return result_.get(); }

 private:
  std::string_view raw(int row, int column) const {
    return {PQgetvalue(result_.get(), row, column), static_cast<std::size_t>(PQgetlength(result_.get(), row, column))};
  }

  struct Clear {
    void operator()(PGresult* r) const noexcept { PQclear(r); }
  };
  std::unique_ptr<PGresult, Clear> result_;
};

}  // namespace evs::pg
