#include "sqlite_schema.hpp"

#include <span>
#include <string>

namespace evs::sqlite {
namespace {

struct Migration {
  int version;           // the user_version after this step
  std::string_view sql;  // DDL run inside the migration transaction
};

// ON-DISK FORMAT. Each entry is frozen once released: never edit a shipped step, append a new one
// (version N+1) and bump current_schema_version. Integers are SQLite INTEGER (int64); unsigned values
// (positions, versions, fingerprints) are stored as their int64 bit pattern.
constexpr Migration migrations[] = {
    {1, R"sql(
-- Marks the file as an evs store. key 'format' = 'evs'.
CREATE TABLE evs_meta (
  key   TEXT PRIMARY KEY,
  value TEXT NOT NULL
);
INSERT INTO evs_meta (key, value) VALUES ('format', 'evs');

-- One row per stream that has events. version = number of events = version of the last event.
-- category = the stream id up to the first '-'. updated_at: microseconds since the unix epoch.
CREATE TABLE streams (
  id         INTEGER PRIMARY KEY,
  name       TEXT NOT NULL UNIQUE,
  category   TEXT NOT NULL,
  version    INTEGER NOT NULL,
  updated_at INTEGER NOT NULL
);
CREATE INDEX streams_by_category ON streams (category);

-- Interned event type names.
CREATE TABLE event_types (
  id   INTEGER PRIMARY KEY,
  name TEXT NOT NULL UNIQUE
);

-- The global log. position: assigned explicitly as last + 1 by the single writer (no AUTOINCREMENT), so it
-- is gap-free and starts at 1. event_id: the 16 raw uuid bytes. encoding: evs::Encoding. recorded_at:
-- microseconds since the unix epoch, never decreasing along positions. correlation_id / causation_id:
-- NULL when not set. metadata: the user metadata map encoded with Encoding::binary, NULL when empty.
CREATE TABLE events (
  position       INTEGER PRIMARY KEY,
  stream         INTEGER NOT NULL,
  version        INTEGER NOT NULL,
  event_id       BLOB NOT NULL UNIQUE,
  type           INTEGER NOT NULL,
  schema_version INTEGER NOT NULL,
  encoding       INTEGER NOT NULL,
  recorded_at    INTEGER NOT NULL,
  correlation_id TEXT,
  causation_id   TEXT,
  metadata       BLOB,
  payload        BLOB NOT NULL,
  UNIQUE (stream, version)
);
CREATE INDEX events_by_type ON events (type, position);

-- Only the latest snapshot per stream (by stream name). fingerprint: the uint64 as its int64 bit pattern.
CREATE TABLE snapshots (
  stream      TEXT PRIMARY KEY,
  version     INTEGER NOT NULL,
  state_type  TEXT NOT NULL,
  fingerprint INTEGER NOT NULL,
  encoding    INTEGER NOT NULL,
  payload     BLOB NOT NULL,
  recorded_at INTEGER NOT NULL
);
)sql"},
    {2, R"sql(
-- Shape drift: per (event type name, schema version), the type that appended the first event of that
-- version with a fingerprint. fingerprint: the uint64 as its int64 bit pattern. members: the readable
-- member description (evs::schema_members), '' when the writing process had not registered the type.
-- recorded_at: microseconds since the unix epoch. Never updated once written.
CREATE TABLE event_schemas (
  type           TEXT NOT NULL,
  schema_version INTEGER NOT NULL,
  fingerprint    INTEGER NOT NULL,
  members        TEXT NOT NULL,
  recorded_at    INTEGER NOT NULL,
  PRIMARY KEY (type, schema_version)
);

-- The aggregate's snapshot_version when the snapshot was saved; a different one means "ignore".
ALTER TABLE snapshots ADD COLUMN snapshot_version INTEGER NOT NULL DEFAULT 1;
)sql"},
    {3, R"sql(
-- The events of one correlation id in log order, without a scan (the operations server's correlation
-- view). Partial: an event without a correlation id costs nothing.
CREATE INDEX events_by_correlation ON events (correlation_id, position) WHERE correlation_id IS NOT NULL;
)sql"},
};

static_assert(std::size(migrations) == current_schema_version, "one migration per schema version");

Result<std::int64_t> query_int(Connection& connection, std::string_view sql, std::string_view action) {
  auto statement = connection.cached(sql, action);
  if (!statement) return statement.error();
  auto row = (*statement)->step(action);
  if (!row) return row.error();
  return *row ? (*statement)->column_int64(0) : 0;
}

Error not_evs(const Connection& connection, std::string_view why) {
  return {errc::not_an_evs_database, "open " + connection.path() + ": " + std::string(why)};
}

}  // namespace

Result<int> inspect_schema(Connection& connection) {
  constexpr std::string_view action = "read the schema of";
  auto version = query_int(connection, "PRAGMA user_version", action);
  if (!version) return version.error();

  if (*version == 0) {
    auto objects = query_int(connection, "SELECT count(*) FROM sqlite_master", action);
    if (!objects) return objects.error();
    if (*objects != 0)
      return not_evs(
          connection,
          "this is a SQLite database of another application (it has tables but no evs schema); evs "
          "refuses to modify it. Point the store at a new or an evs file");
    return 0;
  }

  auto has_meta = query_int(
      connection, "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = 'evs_meta'", action);
  if (!has_meta) return has_meta.error();
  bool is_evs = false;
  if (*has_meta != 0) {
    auto statement = connection.cached("SELECT value FROM evs_meta WHERE key = 'format'", action);
    if (!statement) return statement.error();
    auto row = (*statement)->step(action);
    if (!row) return row.error();
    is_evs = *row && (*statement)->column_text(0) == "evs";
  }
  if (!is_evs)
    return not_evs(connection, "this is a SQLite database of another application (user_version " +
                                   std::to_string(*version) +
                                   ", no evs format marker); evs refuses to modify it. Point the store at a "
                                   "new or an evs file");
  if (*version > current_schema_version)
    return not_evs(connection, "the store has schema version " + std::to_string(*version) +
                                   ", newer than this build of evs supports (" +
                                   std::to_string(current_schema_version) + "); upgrade evs to open it");
  return static_cast<int>(*version);
}

Result<void> migrate_schema(Connection& connection) {
  auto version = inspect_schema(connection);
  if (!version) return version.error();
  if (*version == current_schema_version) return {};

  constexpr std::string_view action = "migrate the schema of";
  auto transaction = Transaction::begin(connection, Transaction::Mode::immediate, action);
  if (!transaction) return transaction.error();
  version = inspect_schema(connection);  // another process may have migrated while we waited for the lock
  if (!version) return version.error();
  for (const Migration& step : migrations) {
    if (step.version <= *version) continue;
    if (auto done = connection.exec(step.sql, action); !done) return done.error();
    if (auto done = connection.exec("PRAGMA user_version = " + std::to_string(step.version), action); !done)
      return done.error();
  }
  return transaction->commit(action);
}

}  // namespace evs::sqlite
