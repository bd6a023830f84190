#include "pg_fast_group.hpp"

#include <string>
#include <unordered_set>
#include <vector>

#include "pg_group_sql.hpp"
#include "pg_schema.hpp"

namespace evs::pg {
namespace {

constexpr std::string_view action = "append to";

// The group's type ids when it is eligible (see the header); empty otherwise.
std::vector<std::int32_t> eligible(StoreShared& shared, std::span<const PendingAppend> group) {
  std::vector<std::int32_t> types;
  std::unordered_set<std::string_view> streams;
  std::unordered_set<Uuid, UuidHash> ids;
  const bool schemas = shared.options.schema_check != SchemaCheck::off;
  std::lock_guard lock(shared.cache_mutex);
  for (const PendingAppend& a : group) {
    if (a.events.empty() || !streams.insert(a.stream).second) return {};
    for (const PendingEvent& e : a.events) {
      if (!ids.insert(e.id).second) return {};
      auto type = shared.type_ids.find(e.type);
      if (type == shared.type_ids.end()) return {};
      if (schemas && e.fingerprint != 0) {
        auto recorded = shared.schemas.find({e.type, e.schema_version});
        if (recorded == shared.schemas.end() || recorded->second.fingerprint != e.fingerprint) return {};
      }
      types.push_back(type->second);
    }
  }
  return types;
}

std::int16_t kind_code(ExpectedVersion::Kind kind) {
  switch (kind) {
    case ExpectedVersion::Kind::any: return 0;
    case ExpectedVersion::Kind::no_stream: return 1;
    case ExpectedVersion::Kind::stream_exists: return 2;
    case ExpectedVersion::Kind::exact: return 3;
  }
  return 3;
}

const std::string& fast_sql() {
  static const std::string sql =
      "WITH a AS MATERIALIZED (SELECT u.n, u.c, u.k, u.ev, u.cnt, u.ord, coalesce(st.version, 0) AS cur"
      " FROM unnest($1::text[], $2::text[], $3::smallint[], $4::bigint[], $5::bigint[])"
      " WITH ORDINALITY AS u(n, c, k, ev, cnt, ord) LEFT JOIN streams st ON st.name = u.n),"
      " ok AS (SELECT bool_and(CASE a.k WHEN 0 THEN true WHEN 1 THEN a.cur = 0 WHEN 2 THEN a.cur > 0"
      " ELSE a.cur = a.ev END) AND NOT EXISTS (SELECT 1 FROM events WHERE event_id = ANY($9::uuid[])) AS go FROM a),"
      " " +
      group_write_sql({.stream_columns = "a.n, a.c, a.cur + a.cnt",
                       .stream_rows = "FROM a CROSS JOIN ok WHERE ok.go",
                       .gate = "FROM ok WHERE ok.go",
                       .first = 6,
                       .version = "a.cur + u.v",
                       .events_join = "JOIN a ON a.n = u.sn"}) +
      " SELECT ok.go::int, x.tx, a.cur FROM a CROSS JOIN ok LEFT JOIN x ON true ORDER BY a.ord";
  return sql;
}

}  // namespace

std::optional<GroupOutcome> commit_group_fast(StoreShared& shared, PgConnection& c,
                                              std::span<const PendingAppend> group) {
  const std::vector<std::int32_t> types = eligible(shared, group);
  if (types.empty()) return std::nullopt;

  PgArray names(text_oid), categories(text_oid), kinds(int2_oid), expected(int8_oid), counts(int8_oid);
  EventColumns events;
  std::uint64_t index = 0;
  for (const PendingAppend& a : group) {
    names.raw(a.stream);
    categories.raw(stream_category(a.stream));
    kinds.int16(kind_code(a.expected.kind()));
    expected.int64(to_db(a.expected.version()));
    counts.int64(static_cast<std::int64_t>(a.events.size()));
    for (std::size_t i = 0; i < a.events.size(); ++i, ++index)
      events.add(index, a.stream, i + 1, a.events[i], types[index]);
  }
  PgArray keys = lock_keys(shared.options.schema, group);
  PgParams lock, write;
  lock.binary(keys.bytes(), keys.array_type());
  write.binary(names.bytes(), names.array_type())
      .binary(categories.bytes(), categories.array_type())
      .binary(kinds.bytes(), kinds.array_type())
      .binary(expected.bytes(), expected.array_type())
      .binary(counts.bytes(), counts.array_type());
  events.bind(write);
  const PgParams channel = notify_params(shared.channel);
  const PgConnection::Statement statements[] = {{begin_group_sql, nullptr, false},
                                                {lock_streams_sql, &lock},
                                                {fast_sql(), &write},
                                                {"COMMIT", nullptr, false},
                                                {notify_sql, &channel, true, ResultFormat::binary, true}};

  auto r = c.pipeline(statements, action);
  if (!r) {
    if (!c.broken()) (void)c.exec("ROLLBACK", action);  // BEGIN ran, a later statement failed
    return group_failure(r.error());
  }
  const PgResult& written = (*r)[2];
  if (written.rows() != static_cast<int>(group.size()))
    return group_failure({errc::io_error, "append to " + shared.describe() + ": the group statement answered " +
                                              std::to_string(written.rows()) + " rows"});
  if (written.int64(0, 0) == 0) return std::nullopt;  // a check failed; nothing was written
  if ((*r)[3].command_tag() == "ROLLBACK")
    return group_failure({errc::io_error, "append to " + shared.describe() + ": PostgreSQL rolled the group back"});
  auto base = first_position(shared, written.int64(0, 1));
  if (!base) return group_failure(base.error());
  GroupOutcome out;
  out.kind = GroupOutcome::Kind::committed;
  out.stored = true;
  out.notified = notified((*r)[4]);
  out.results.reserve(group.size());
  std::uint64_t first = *base;
  for (std::size_t i = 0; i < group.size(); ++i) {
    const std::uint64_t n = group[i].events.size();
    const auto current = static_cast<std::uint64_t>(written.int64(static_cast<int>(i), 2));
    out.results.emplace_back(AppendResult{current + n, first, first + n - 1, false});
    first += n;
  }
  return out;
}

}  // namespace evs::pg
