// The statements both ways of committing a group share (internal; pg_group_commit.cpp, pg_fast_group.cpp).
#pragma once

#include <cstdint>
#include <span>
#include <string_view>

#include "pg_array.hpp"
#include "pg_params.hpp"
#include "pg_writer.hpp"

namespace evs::pg {

// Opens a group's transaction. READ COMMITTED whatever the database's default: each statement's snapshot
// is then taken when it starts, so the one after the locks sees every append that held them before. Under
// a REPEATABLE READ or SERIALIZABLE default the snapshot would predate the locks, and a group that raced
// another writer would fail with a serialization error and run again (at most 16 times) instead.
inline constexpr std::string_view begin_group_sql = "BEGIN ISOLATION LEVEL READ COMMITTED";

// Takes the advisory locks of the group's streams in key order (deadlock-free between writers; they take
// no transaction id). Parameter: lock_keys().
inline constexpr std::string_view lock_streams_sql =
    "SELECT pg_advisory_xact_lock(k) FROM unnest($1::bigint[]) WITH ORDINALITY AS u(k, n) ORDER BY n";

// A group's pipeline ends, after its COMMIT, with notify_sql (pg_schema.hpp) in a transaction of its own:
// never inside the group's, since a transaction that notifies holds the cluster's notify queue lock through
// its WAL flush, which would serialize every commit. Run as a PgConnection::Statement with `may_fail`: the
// group stands whether the notification is sent or not. Whether it went out, from its result (empty when
// it failed or was not reached):
inline bool notified(const PgResult& r) { return r.rows() == 1; }

// The sorted, distinct advisory keys of the group's streams.
PgArray lock_keys(std::string_view schema, std::span<const PendingAppend> appends);

// The columns of the events a group stores, one array each, in row (position) order. `number` is the
// event's version, or its place in its append (1..n) where the statement adds the stream's version.
struct EventColumns {
  PgArray indexes{int8_oid}, streams{text_oid}, numbers{int8_oid}, ids{uuid_oid}, types{int4_oid},
      schema_versions{int4_oid}, encodings{int2_oid}, correlations{text_oid}, causations{text_oid},
      metadata{bytea_oid}, payloads{bytea_oid};

  void add(std::uint64_t index, std::string_view stream, std::uint64_t number, const PendingEvent& e,
           std::int32_t type);
  // Appends the eleven arrays to `p`, in the order above.
  void bind(PgParams& p);
};

// How a group statement writes, as its CTEs `s`, `x` and `e`, to follow its own CTEs after a comma:
//   s: upserts the streams `SELECT <stream_columns> (name, category, new version), now <stream_rows>`;
//   x: the transaction's id (`tx`, which makes the positions) and the time (`at`), taken `<gate>`;
//   e: inserts the events from EventColumns' eleven arrays, starting at parameter `$first`, as rows
//      `u(ix, sn, v, i, t, sv, e, c, ca, m, pl)` joined with `s` by name `<events_join>`, at version `<version>`.
// The general statement passes its own streams and versions; the one-round-trip statement passes what it
// read and checked, and gates `s` and `x` on its checks, so that nothing is written and no transaction id
// is taken when one fails.
struct GroupWrite {
  std::string_view stream_columns;  // "n, c, v"
  std::string_view stream_rows;     // "FROM unnest(...) AS u(n, c, v)"
  std::string_view gate;            // "" or "FROM ok WHERE ok.go"
  int first = 0;                    // the parameter number of the first event array
  std::string_view version;         // "u.v"
  std::string_view events_join;     // "" or "JOIN a ON a.n = u.sn"
};
std::string group_write_sql(const GroupWrite& w);

// The transaction's first position, from the tx column a group statement returns; an error when it does not
// fit the 2^43 transactions positions can encode.
Result<std::uint64_t> first_position(const StoreShared& shared, std::int64_t tx);

}  // namespace evs::pg
