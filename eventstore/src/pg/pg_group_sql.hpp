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
// must be taken when it starts, so the one after the locks sees every append that held them before.
inline constexpr std::string_view begin_group_sql = "BEGIN ISOLATION LEVEL READ COMMITTED";

// Takes the advisory locks of the group's streams in key order (deadlock-free between writers; they take
// no transaction id). Parameter: lock_keys().
inline constexpr std::string_view lock_streams_sql =
    "SELECT pg_advisory_xact_lock(k) FROM unnest($1::bigint[]) WITH ORDINALITY AS u(k, n) ORDER BY n";

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

// SQL of the INSERT into events, given CTEs `s` (the streams written: id, name), `x` (tx, at) and the source
// rows `u(ix, sn, v, i, t, sv, e, c, ca, m, pl)`, where `version` is the SQL expression of an event's
// version; `first` is the number of the first of EventColumns' eleven parameters.
std::string insert_events_sql(int first, std::string_view version, std::string_view extra_join);

// The transaction's first position, from the tx column a group statement returns; an error when it does not
// fit the 2^43 transactions positions can encode.
Result<std::uint64_t> first_position(const StoreShared& shared, std::int64_t tx);

}  // namespace evs::pg
