#include "pg_schema.hpp"

#include "pg_transaction.hpp"

#include <cstdio>
#include <string>

namespace evs::pg {
namespace {

constexpr std::string_view create_tables = R"sql(
CREATE TABLE evs_meta (key text PRIMARY KEY, value text NOT NULL);
INSERT INTO evs_meta VALUES ('format', 'evs'), ('schema_version', '2'), ('tx_offset', '0');

-- category: the stream id up to the first '-'. Times: microseconds since the unix epoch.
CREATE TABLE streams (
  id         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  name       text NOT NULL UNIQUE,
  category   text NOT NULL,
  version    bigint NOT NULL,
  updated_at bigint NOT NULL
);
CREATE INDEX streams_by_category ON streams (category);

CREATE TABLE event_types (id integer GENERATED ALWAYS AS IDENTITY PRIMARY KEY, name text NOT NULL UNIQUE);

-- position: (writer's transaction id + tx_offset) * 2^20 + index in the transaction (see docs/postgresql.md).
CREATE TABLE events (
  position       bigint PRIMARY KEY,
  stream         bigint NOT NULL,
  version        bigint NOT NULL,
  event_id       uuid NOT NULL UNIQUE,
  type           integer NOT NULL,
  schema_version integer NOT NULL,
  encoding       smallint NOT NULL,
  recorded_at    bigint NOT NULL,
  correlation_id text NOT NULL,
  causation_id   text NOT NULL,
  metadata       bytea,
  payload        bytea NOT NULL,
  UNIQUE (stream, version)
);
CREATE INDEX events_by_type ON events (type, position);
CREATE INDEX events_by_time ON events (recorded_at);
-- Schema version 2: the events of one correlation id in log order (the operations server's correlation
-- view); partial, so an event without one ('') costs nothing.
CREATE INDEX events_by_correlation ON events (correlation_id, position) WHERE correlation_id <> '';

CREATE TABLE snapshots (
  stream           text PRIMARY KEY,
  version          bigint NOT NULL,
  state_type       text NOT NULL,
  fingerprint      bigint NOT NULL,
  encoding         smallint NOT NULL,
  payload          bytea NOT NULL,
  recorded_at      bigint NOT NULL,
  snapshot_version integer NOT NULL
);

CREATE TABLE event_schemas (
  type           text NOT NULL,
  schema_version integer NOT NULL,
  fingerprint    bigint NOT NULL,
  members        text NOT NULL,
  recorded_at    bigint NOT NULL,
  PRIMARY KEY (type, schema_version)
);
)sql";

Error not_evs(const PgConnection& c, std::string_view schema, const std::string& why) {
  return {errc::not_an_evs_database,
          "open the event store in schema " + std::string(schema) + " of " + c.target() + ": " + why};
}

}  // namespace

Result<void> align_tx_offset(PgConnection& c) {
  auto r = c.query(
      "SELECT coalesce((SELECT max(position) FROM events), 0),"
      " pg_current_xact_id()::text::bigint, (SELECT value::bigint FROM evs_meta WHERE key = 'tx_offset')",
      {}, "open the event store in");
  if (!r) return r.error();
  const std::int64_t max_position = r->int64(0, 0), xid = r->int64(0, 1), offset = r->int64(0, 2);
  const std::int64_t next_tx = xid + offset;
  if ((max_position >> position_shift) < next_tx) return {};
  const std::int64_t raised = (max_position >> position_shift) + 1 - xid + 1000;
  PgParams p;
  p.text(std::to_string(raised));
  auto u = c.query("UPDATE evs_meta SET value = $1 WHERE key = 'tx_offset'", p, "open the event store in");
  if (!u) return u.error();
  return {};
}

std::int64_t advisory_key(std::string_view schema, std::string_view name) {
  std::uint64_t h = 14695981039346656037ull;
  auto mix = [&](std::string_view s) {
    for (const char c : s) {
      h ^= static_cast<unsigned char>(c);
      h *= 1099511628211ull;
    }
  };
  mix(schema);
  mix(std::string_view("\0", 1));
  mix(name);
  return static_cast<std::int64_t>(h);
}

std::string notify_channel(std::string_view schema) {
  constexpr std::size_t max_identifier = 63;
  std::string channel = "evs:" + std::string(schema);
  if (channel.size() <= max_identifier) return channel;
  char hex[17];
  std::snprintf(hex, sizeof hex, "%016llx",
                static_cast<unsigned long long>(advisory_key(schema, std::string_view("\x03" "channel"))));
  return "evs:#" + std::string(hex);
}

PgParams notify_params(std::string_view channel) {
  PgParams p;
  p.text(channel);
  return p;
}

std::int64_t projection_batch_key(std::string_view schema, std::string_view projection) {
  return advisory_key(schema, "\x02projection " + std::string(projection));
}

Result<void> open_pg_schema(PgConnection& c, std::string_view schema, bool read_only) {
  const std::string action = "open the event store in";
  auto tx = PgTransaction::begin(c, action);
  if (!tx) return tx.error();
  PgParams key;
  key.int64(advisory_key(schema, "\x01migrate"));
  if (!read_only) {
    if (auto r = c.query("SELECT pg_advisory_xact_lock($1)", key, action); !r) return r.error();
    if (auto r = c.exec("CREATE SCHEMA IF NOT EXISTS " + quote_identifier(schema), action); !r) return r.error();
  }
  PgParams name;
  name.text(schema);
  auto tables = c.query("SELECT count(*), count(*) FILTER (WHERE tablename = 'evs_meta') FROM pg_tables"
                        " WHERE schemaname = $1",
                        name, action);
  if (!tables) return tables.error();
  if (tables->int64(0, 1) == 0) {
    if (tables->int64(0, 0) != 0)
      return not_evs(c, schema, "the schema holds other tables but no evs_meta table: not an evs event store");
    if (read_only)
      return Error{errc::read_only, action + " schema " + std::string(schema) + " of " + c.target() +
                                        ": there is no event store there, and a read-only open creates none"};
    if (auto r = c.exec(create_tables, action); !r) return r.error();
    return tx->commit(action);
  }
  auto meta = c.query("SELECT (SELECT value FROM evs_meta WHERE key = 'format'),"
                      " (SELECT value FROM evs_meta WHERE key = 'schema_version')",
                      {}, action);
  if (!meta) return meta.error();
  if (meta->text(0, 0) != "evs") return not_evs(c, schema, "evs_meta does not say format 'evs'");
  const std::string version(meta->text(0, 1));
  // Version 1 lacks only the correlation index: a read-only open reads it as it is, a writable one adds it.
  if (version == "1" && !read_only) {
    if (auto r = c.exec("CREATE INDEX IF NOT EXISTS events_by_correlation ON events (correlation_id, position) "
                        "WHERE correlation_id <> ''; UPDATE evs_meta SET value = '2' WHERE key = 'schema_version'",
                        action);
        !r)
      return r.error();
  } else if (version != "1" && version != std::to_string(store_schema_version)) {
    return not_evs(c, schema, "the store has schema version " + version + ", this build reads version " +
                                  std::to_string(store_schema_version) + " (a newer evs wrote it?)");
  }
  if (!read_only)
    if (auto r = align_tx_offset(c); !r) return r.error();
  return tx->commit(action);
}

}  // namespace evs::pg
