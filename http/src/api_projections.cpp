// The projections' routes: health, dead letters (list, show, retry, skip), rebuilds in progress.
#include "api.hpp"
#include "site.hpp"

#include "format.hpp"
#include "read_model_db.hpp"

#include "evs/core/uuid.hpp"

#include <filesystem>

namespace evs::http {

namespace {

std::string at_time(Timestamp t) { return cli::iso_time(t); }

cli::JsonObject projection_json(const ProjectionView& v) {
  const ProjectionHealth& h = v.health;
  cli::JsonObject o;
  o.str("name", h.name).str_or_null("kind", v.kind).str("state", v.state);
  o.num("position", h.position).num("head", h.head).num("lag_events", h.lag_events).real("lag_seconds", h.lag_seconds);
  o.real("events_per_second", h.events_per_second).num("processed", h.processed).num("errors", h.errors);
  o.num("dead_letters", h.dead_letters).num("retry_queued", v.retry_queued).str("last_error", h.last_error);
  o.num("partitions", h.partitions).str_or_null("database", cli::without_password(v.database));
  o.str("node", h.node).num("partitions_held", h.partitions_held).num("fenced", h.fenced);
  std::vector<cli::JsonObject> claims;
  for (const PartitionClaim& c : h.claims)
    claims.emplace_back()
        .num("partition", c.partition)
        .str_or_null("owner", c.owner)
        .num("epoch", c.epoch)
        .str("lease_until", at_time(c.lease_until));
  o.objects("claims", claims);
  std::vector<cli::JsonObject> checkpoints;
  for (const auto& [partition, position] : v.partition_checkpoints)
    checkpoints.emplace_back().num("partition", partition).num("position", position);
  o.objects("checkpoints", checkpoints);
  o.strings("nodes", h.nodes);
  return o;
}

// ---- dead letters (docs/projections.md, "Dead-letter states")

constexpr const char* dead_letter_columns =
    "id, projection, position, event_id, stream, type, error, attempts, parked_at, status";

cli::JsonObject dead_letter_json(const cli::SqlRow& row) {
  cli::JsonObject o;
  o.inum("id", row.integer(0))
      .str("projection", row.text(1))
      .inum("position", row.integer(2))
      .str("event_id", Uuid::from_bytes(row.text(3)).value_or(Uuid{}).to_string())
      .str("stream", row.text(4))
      .str("type", row.text(5))
      .str("error", row.text(6))
      .inum("attempts", row.integer(7))
      .str("parked_at", cli::iso_time(row.integer(8)))
      .str("status", row.text(9));
  return o;
}

struct FoundDeadLetter {
  cli::JsonObject json;
  std::string status;
  std::uint64_t position = 0;
};

std::optional<FoundDeadLetter> find_dead_letter(cli::StoreSql& sql, const std::string& projection, std::int64_t id) {
  std::optional<FoundDeadLetter> found;
  if (!sql.has_table("evs_dead_letters")) return found;
  sql.each(std::string("SELECT ") + dead_letter_columns + " FROM evs_dead_letters WHERE id = $1 AND projection = $2",
           {cli::SqlParam::of(id), cli::SqlParam::text(projection)}, [&](const cli::SqlRow& row) {
             found = FoundDeadLetter{dead_letter_json(row), std::string(row.text(9)),
                                     static_cast<std::uint64_t>(row.integer(2))};
           });
  return found;
}

std::string database_for(Site& site, const std::string& projection) {
  const auto db = site.database_of(projection);
  if (!db) throw HttpError(404, "no projection '" + projection + "' with a database");
  return *db;
}

std::int64_t dead_letter_id(const std::string& id) {
  return static_cast<std::int64_t>(parse_number(id, "dead letter id", INT64_MAX));
}

}  // namespace

Response api_projections(Site& site, const Request&) {
  std::vector<cli::JsonObject> out;
  for (const ProjectionView& v : site.projections()) out.push_back(projection_json(v));
  cli::JsonObject o;
  o.objects("projections", out);
  return json_response(o.text());
}

Response api_dead_letters(Site& site, const Request& r) {
  const std::string projection = query_text(r, "projection");
  const std::string status = query_text(r, "status");
  const auto limit = static_cast<std::int64_t>(std::max<std::uint64_t>(query_number(r, "limit", 500, 5000), 1));
  std::vector<cli::JsonObject> out;
  for (const std::string& db : site.projection_databases()) {
    if (missing_sqlite_file(db)) continue;
    site.with_database(db, [&](cli::StoreSql& sql) {
      if (!sql.has_table("evs_dead_letters")) return;
      sql.each(std::string("SELECT ") + dead_letter_columns +
                   " FROM evs_dead_letters WHERE ($1 = '' OR projection = $1) AND ($2 = '' OR status = $2) "
                   "ORDER BY projection, id LIMIT $3",
               {cli::SqlParam::text(projection), cli::SqlParam::text(status), cli::SqlParam::of(limit)},
               [&](const cli::SqlRow& row) { out.push_back(dead_letter_json(row)); });
    });
  }
  cli::JsonObject o;
  o.objects("dead_letters", out);
  return json_response(o.text());
}

Response api_dead_letter(Site& site, const Request&, const std::string& projection, const std::string& id) {
  const std::int64_t n = dead_letter_id(id);
  std::optional<FoundDeadLetter> found;
  site.with_database(database_for(site, projection),
                     [&](cli::StoreSql& sql) { found = find_dead_letter(sql, projection, n); });
  if (!found) throw HttpError(404, "no dead letter " + id + " of projection '" + projection + "'");
  if (const auto e = event_at(site, found->position)) found->json.raw("event", event_json(site, *e));
  return json_response(found->json.text());
}

Response api_dead_letter_action(Site& site, const Request&, const std::string& projection, const std::string& id,
                                const std::string& action) {
  // The operator's transitions, checked in the UPDATE itself so that nothing the engine settles meanwhile is
  // overwritten: retry a parked row; skip a parked row or a queued retry.
  const bool retry = action == "retry";
  if (!retry && action != "skip") throw HttpError(404, "no action '" + action + "' (retry or skip)");
  const std::int64_t n = dead_letter_id(id);
  std::uint64_t changed = 0;
  std::optional<FoundDeadLetter> now;
  site.with_database(database_for(site, projection), [&](cli::StoreSql& sql) {
    changed = sql.change(
        retry ? "UPDATE evs_dead_letters SET status = 'retry' WHERE id = $1 AND projection = $2 AND status = 'parked'"
              : "UPDATE evs_dead_letters SET status = 'skipped' WHERE id = $1 AND projection = $2 AND "
                "status IN ('parked', 'retry')",
        {cli::SqlParam::of(n), cli::SqlParam::text(projection)});
    now = find_dead_letter(sql, projection, n);
  });
  if (!now) throw HttpError(404, "no dead letter " + id + " of projection '" + projection + "'");
  if (changed == 0)
    throw HttpError(409, "dead letter " + id + " is '" + now->status + "': " + action + " applies only to a dead letter in " +
                             (retry ? "'parked'" : "'parked' or 'retry'"));
  cli::JsonObject o;
  o.object("dead_letter", now->json);
  return json_response(o.text());
}

Response api_rebuilds(Site& site, const Request&) {
  std::vector<cli::JsonObject> out;
  const std::uint64_t head = must(site.store().last_position());
  for (const cli::ProjectionEntry& e : site.app().projections) {
    if (e.projection == nullptr || e.projection->kind() != ProjectionKind::sql || e.options.database.empty()) continue;
    const std::string name(e.projection->name());
    const std::string live = e.options.database.string();
    const std::string copy = cli::open_read_model_db(live)->copy_location("rebuild", name);
    const bool sqlite_copy = is_sqlite(copy);
    if (missing_sqlite_file(copy)) continue;
    std::uint64_t at = 0;
    bool found = false;
    site.read_once(copy, [&](cli::StoreSql& sql) {
      if (!sql.has_table("evs_checkpoints")) return;
      // As the rebuild counts it: the least partition checkpoint.
      sql.each("SELECT min(position), count(*) FROM evs_checkpoints WHERE projection = $1",
               {cli::SqlParam::text(name)}, [&](const cli::SqlRow& row) {
                 found = row.integer(1) > 0;
                 at = static_cast<std::uint64_t>(row.integer(0));
               });
    });
    if (!sqlite_copy && !found) continue;  // a PostgreSQL schema: no checkpoint yet, or none at all
    out.emplace_back()
        .str("projection", name)
        .num("position", at)
        .num("head", head)
        .real("progress", head == 0 ? 1.0 : std::min(1.0, static_cast<double>(at) / static_cast<double>(head)));
  }
  cli::JsonObject o;
  o.objects("rebuilds", out);
  return json_response(o.text());
}

}  // namespace evs::http
