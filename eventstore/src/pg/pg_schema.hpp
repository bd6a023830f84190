// The PostgreSQL store's tables and their migrations (internal; the layout is in docs/postgresql.md).
#pragma once

#include <cstdint>
#include <string_view>

#include "evs/core/error.hpp"
#include "pg_connection.hpp"

namespace evs::pg {

// The schema version this build writes.
inline constexpr int store_schema_version = 2;  // 1: without events_by_correlation

// Global positions are (transaction id + tx offset) * 2^20 + the event's index in its transaction.
inline constexpr int position_shift = 20;
inline constexpr std::uint64_t max_events_per_transaction = (std::uint64_t{1} << position_shift) - 1;
// Transaction ids (with the offset) must stay below this for positions to fit a signed 64-bit column.
inline constexpr std::uint64_t max_tx = std::uint64_t{1} << (63 - position_shift);

// SQL for the readers' fence: the first position no reader may pass yet, (oldest running transaction id +
// tx offset) * 2^20, evaluated in the statement's own snapshot.
inline constexpr std::string_view fence_sql =
    "((pg_snapshot_xmin(pg_current_snapshot())::text::bigint"
    " + (SELECT value::bigint FROM evs_meta WHERE key = 'tx_offset')) * 1048576)";

// A 64-bit advisory-lock key for `name` within the store's `schema` (FNV-1a).
std::int64_t advisory_key(std::string_view schema, std::string_view name);
// The NOTIFY channel of the store in `schema`: "evs:" + schema, or "evs:#" + 16 hex digits of a hash of the
// name where that would pass PostgreSQL's 63-byte identifiers (pg_notify refuses a longer channel, LISTEN
// cuts it short).
std::string notify_channel(std::string_view schema);
// Tells every process following the store to look (a notification's payload is never trusted), in a
// statement whose transaction's commit does not wait for the WAL flush: a lost notification costs a
// fallback poll, never an event. Parameter: notify_params(channel).
inline constexpr std::string_view notify_sql =
    "SELECT set_config('synchronous_commit', 'off', true), pg_notify($1, '')";
PgParams notify_params(std::string_view channel);
// The lock a SQL projection's batch holds shared and a rebuild's swap takes exclusively, for the projection
// `projection` whose database is the schema `schema` (projections/src/pg_projection_db.cpp,
// tools/src/pg_read_model_db.cpp).
std::int64_t projection_batch_key(std::string_view schema, std::string_view projection);

// Raises the tx offset, inside the transaction open on `connection` (it takes that transaction's id), when
// the newest stored position is at or past what the next transaction would get, so new events sort after
// every stored one. open_pg_schema runs it; so does the end of an import (StoreTransfer::finish_import).
Result<void> align_tx_offset(PgConnection& connection);

// Makes `connection`'s schema (its search_path) hold a current evs store: creates the schema and tables
// when there are none, checks the format and version otherwise, all under an advisory lock so concurrent
// openers wait for each other. Raises the tx offset when stored positions are ahead of the server's
// transaction ids (after a dump and restore, or a copy from SQLite), so new events sort after them.
// read_only: checks only, creates nothing. Errors: not_an_evs_database (the schema holds other tables, or
// an evs store of a newer version), read_only, unavailable, io_error.
Result<void> open_pg_schema(PgConnection& connection, std::string_view schema, bool read_only);

}  // namespace evs::pg
