// Hand-written libpq code for the raw-PostgreSQL baselines (no evs): a connection and its results, binary
// statement parameters, schema helpers, and the baselines' appender and readers. They work on a schema whose
// tables evs created (so the same tables and indexes: `events`, `streams`, `event_types`) and write the rows
// evs writes: the same columns and sizes, positions from the same (transaction id * 2^20 + index) rule.
// Bench-private: libpq stays out of every public header.
#pragma once

#include "domain.hpp"
#include "raw.hpp"

#include <libpq-fe.h>

#include <array>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

namespace rawpg {

// Type OIDs (pg_type.h is a server header).
inline constexpr Oid bytea_oid = 17;
inline constexpr Oid int8_oid = 20;
inline constexpr Oid int4_oid = 23;
inline constexpr Oid text_oid = 25;
inline constexpr Oid uuid_oid = 2950;

// Statement parameters, all in binary format except text. Values live in fixed slots reserved up front (no
// allocation per parameter); bytes() points at the caller's bytes, which must outlive the statement.
class Params {
 public:
  explicit Params(std::size_t capacity) {
    slots_.resize(capacity);
    values_.reserve(capacity);
    lengths_.reserve(capacity);
    formats_.reserve(capacity);
    types_.reserve(capacity);
  }
  void clear() {
    values_.clear();
    lengths_.clear();
    formats_.clear();
    types_.clear();
  }
  Params& int64(std::int64_t v);
  Params& int32(std::int32_t v);
  Params& uuid(const char* id) { return add(id, 16, 1, uuid_oid); }  // 16 bytes
  Params& bytes(std::string_view b) { return add(b.data(), b.size(), 1, bytea_oid); }
  Params& text(std::string_view t);  // copied into its slot (up to 31 bytes: stream names and categories)
  Params& null() { return add(nullptr, 0, 1, 0); }
  int size() const { return int(values_.size()); }
  const char* const* values() const { return values_.data(); }
  const int* lengths() const { return lengths_.data(); }
  const int* formats() const { return formats_.data(); }
  const Oid* types() const { return types_.data(); }

 private:
  Params& add(const char* p, std::size_t n, int format, Oid type);
  char* slot();
  struct Slot {
    char bytes[32];
  };
  std::vector<Slot> slots_;
  std::vector<const char*> values_;
  std::vector<int> lengths_, formats_;
  std::vector<Oid> types_;
};

// A PGresult, freed on destruction. Binary results: numbers in network byte order.
class Result {
 public:
  Result() = default;
  explicit Result(PGresult* r) : r_(r) {}
  ~Result() { PQclear(r_); }
  Result(Result&& o) noexcept : r_(std::exchange(o.r_, nullptr)) {}
  Result& operator=(Result&& o) noexcept {
    std::swap(r_, o.r_);
    return *this;
  }
  int rows() const { return PQntuples(r_); }
  bool null(int row, int col) const { return PQgetisnull(r_, row, col) != 0; }
  std::int64_t i64(int row, int col) const;  // int8 or int4 or int2 (by the result's column type)
  std::string_view bytes(int row, int col) const {
    return {PQgetvalue(r_, row, col), std::size_t(PQgetlength(r_, row, col))};
  }

 private:
  PGresult* r_ = nullptr;
};

class Conn {
 public:
  explicit Conn(const std::string& url);
  ~Conn() { PQfinish(c_); }
  Conn(const Conn&) = delete;
  Conn& operator=(const Conn&) = delete;
  // Parameterless statements (several allowed, text results).
  void exec(const std::string& sql);
  // One statement, binary results; throws on error.
  Result query(const char* sql, const Params& params);
  void prepare(const char* name, const std::string& sql);
  Result run(const char* name, const Params& params);
  PGconn* handle() const { return c_; }

 private:
  Result check(PGresult* r, const char* what);
  PGconn* c_ = nullptr;
};

// Quoted schema identifier (the benchmark's schema names are plain lower-case words).
std::string ident(std::string_view schema);
// DROP SCHEMA IF EXISTS ... CASCADE.
void drop_schema(const std::string& url, const std::string& schema);

// The store's type ids of bench.deposited / bench.withdrawn, inserted into event_types if missing (what evs
// does on its first append of each type), and every type id -> "is a deposit".
struct Types {
  std::int64_t deposited = 0, withdrawn = 0;
  std::unordered_map<std::int64_t, bool> kinds;
};
Types intern_types(Conn& db);
// The same without inserting (for readers).
Types load_types(Conn& db);
// Stream names by id, loaded once (as a hand-written reader would cache them).
std::vector<std::string> stream_names(Conn& db);

// Appends the benchmark's movements to a schema created by evs, one statement per transaction in autocommit
// (one round trip, one commit): a CTE upserts the stream row (its version and update time, kept in memory
// here) and inserts the events, each at position (transaction id * 2^20 + index), with `recorded_at` from
// this process's clock and empty correlation and causation ids (as evs stores them). One event per append uses its own prepared statement; a batch uses a multi-row
// statement prepared for its size.
class Appender {
 public:
  Appender(const std::string& url, const std::string& schema);

  // Appends `count` movements (seq first_seq...) to `stream` in one transaction. `notify`: the same statement
  // also NOTIFYs channel `evs_bench` (the live baseline).
  void append(const std::string& stream, std::int64_t first_seq, std::size_t count, bool notify = false);
  // Appends movement `seq` to each of `streams` (distinct), all in one statement and one transaction: a
  // commit group written with none of evs's checks (no stream locks, expectations or id lookups). What the
  // server alone can do with groups of this size: the scenarios report it as their "ceiling".
  void append_group(const std::vector<std::string>& streams, std::int64_t seq);
  Conn& conn() { return db_; }

 private:
  const char* prepared(std::size_t count, bool notify);
  const char* prepared_group(std::size_t count);
  Conn db_;
  Types types_;
  std::unordered_map<std::string, std::int64_t> versions_;
  std::unordered_map<std::uint64_t, std::string> statements_;  // (count, notify) -> statement name
  std::vector<std::string> payloads_;
  std::vector<std::array<char, 16>> ids_;
  Params params_;
  raw::IdGen gen_;
};

// The positions of a log, paged like a reader: `page` rows per SELECT ordered by position, resumed after the
// last position seen.
constexpr const char* select_page_all =
    "SELECT position, stream, version, event_id, type, schema_version, encoding, recorded_at, correlation_id, "
    "causation_id, metadata, payload FROM events WHERE position > $1 ORDER BY position LIMIT $2";
constexpr const char* select_page_payloads =
    "SELECT position, type, payload FROM events WHERE position > $1 ORDER BY position LIMIT $2";

}  // namespace rawpg
