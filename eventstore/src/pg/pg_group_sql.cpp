#include "pg_group_sql.hpp"

#include <algorithm>
#include <string>
#include <vector>

#include "pg_schema.hpp"

namespace evs::pg {

PgArray lock_keys(std::string_view schema, std::span<const PendingAppend> appends) {
  std::vector<std::int64_t> keys;
  keys.reserve(appends.size());
  for (const PendingAppend& a : appends) keys.push_back(advisory_key(schema, a.stream));
  std::sort(keys.begin(), keys.end());
  keys.erase(std::unique(keys.begin(), keys.end()), keys.end());
  PgArray array(int8_oid);
  for (const std::int64_t k : keys) array.int64(k);
  return array;
}

void EventColumns::add(std::uint64_t index, std::string_view stream, std::uint64_t number, const PendingEvent& e,
                       std::int32_t type) {
  indexes.int64(static_cast<std::int64_t>(index));
  streams.raw(stream);
  numbers.int64(static_cast<std::int64_t>(number));
  ids.raw(e.id.bytes_view());
  types.int32(type);
  schema_versions.int32(static_cast<std::int32_t>(e.schema_version));
  encodings.int16(static_cast<std::int16_t>(e.encoding));
  correlations.raw(e.correlation_id);
  causations.raw(e.causation_id);
  if (e.metadata) {
    metadata.raw(*e.metadata);
  } else {
    metadata.null();
  }
  payloads.raw(e.payload);
}

void EventColumns::bind(PgParams& p) {
  for (PgArray* column : {&indexes, &streams, &numbers, &ids, &types, &schema_versions, &encodings, &correlations,
                          &causations, &metadata, &payloads})
    p.binary(column->bytes(), column->array_type());
}

std::string group_write_sql(const GroupWrite& w) {
  static constexpr std::string_view types[] = {"bigint", "text", "bigint",  "uuid", "integer", "integer",
                                               "smallint", "text", "text", "bytea", "bytea"};
  std::string sql = "s AS (INSERT INTO streams (name, category, version, updated_at) SELECT ";
  sql.append(w.stream_columns)
      .append(", (SELECT (extract(epoch FROM clock_timestamp()) * 1000000)::bigint) ")  // a scalar: one time
      .append(w.stream_rows)
      .append(" ON CONFLICT (name) DO UPDATE SET version = excluded.version, updated_at = excluded.updated_at"
              " RETURNING id, name, updated_at),"
              " x AS (SELECT pg_current_xact_id()::text::bigint"
              " + (SELECT value::bigint FROM evs_meta WHERE key = 'tx_offset') AS tx,"
              " (SELECT max(updated_at) FROM s) AS at ")
      .append(w.gate)
      .append("), e AS (INSERT INTO events (position, stream, version, event_id, type, schema_version, encoding,"
              " recorded_at, correlation_id, causation_id, metadata, payload) SELECT x.tx * 1048576 + u.ix, s.id, ")
      .append(w.version)
      .append(", u.i, u.t, u.sv, u.e, x.at, u.c, u.ca, u.m, u.pl FROM unnest(");
  for (int i = 0; i < 11; ++i) {
    if (i != 0) sql.append(", ");
    sql.append("$").append(std::to_string(w.first + i)).append("::").append(types[i]).append("[]");
  }
  sql.append(") AS u(ix, sn, v, i, t, sv, e, c, ca, m, pl) JOIN s ON s.name = u.sn ")
      .append(w.events_join)
      .append(" CROSS JOIN x)");
  return sql;
}

Result<std::uint64_t> first_position(const StoreShared& shared, std::int64_t tx) {
  const auto first = static_cast<std::uint64_t>(tx);
  if (first >= max_tx)
    return Error{errc::io_error, "append to " + shared.describe() + ": the transaction id " + std::to_string(first) +
                                     " is beyond the 2^43 that positions can encode"};
  return first << position_shift;
}

}  // namespace evs::pg
