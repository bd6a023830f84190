// The store's routes: overview, categories, streams, a stream's events, one event, a correlation's events.
#include "api.hpp"
#include "site.hpp"

#include "format.hpp"

namespace evs::http {

namespace {

constexpr std::uint64_t max_page = 1000;
// A page of events ends early once its JSON passes this size (at least one event is always shown), so a
// request for many large events cannot make the server hold an unbounded answer.
constexpr std::size_t max_page_bytes = 4 * 1024 * 1024;

std::string micros_time(std::int64_t micros) { return cli::iso_time(micros); }

}  // namespace

std::string event_json(Site& site, const RecordedEvent& e) { return cli::event_json(e, site.registry(), true); }

std::optional<RecordedEvent> event_at(Site& site, std::uint64_t position) {
  if (position == 0) return std::nullopt;
  ReadAllBatch batch = must(site.store().read_all(position, 1));
  if (batch.events.empty() || batch.events.front().position != position) return std::nullopt;
  return std::move(batch.events.front());
}

Response api_overview(Site& site, const Request&) {
  const std::uint64_t head = must(site.store().last_position());
  const std::int64_t streams = site.stream_count();
  cli::JsonObject o;
  o.str("store", cli::without_password(site.store_location()))
      .str("backend", site.postgres() ? "postgresql" : "sqlite")
      .num("head", head)
      .inum("streams", streams)
      .num("appends", site.metrics().appends())
      .num("events_appended", site.metrics().events_appended())
      .boolean("read_only", site.options().read_only)
      .str("now", cli::iso_time(std::chrono::time_point_cast<std::chrono::microseconds>(Clock::now())))
      .str("version", EVS_VERSION);
  return json_response(o.text());
}

Response api_categories(Site& site, const Request&) {
  std::vector<cli::JsonObject> out;
  site.with_store_sql([&](cli::StoreSql& sql) {
    sql.each("SELECT category, count(*) FROM streams GROUP BY category ORDER BY category LIMIT 10000", {},
             [&](const cli::SqlRow& row) { out.emplace_back().str("name", row.text(0)).inum("streams", row.integer(1)); });
  });
  cli::JsonObject o;
  o.objects("categories", out);
  return json_response(o.text());
}

Response api_streams(Site& site, const Request& r) {
  const std::string category = query_text(r, "category");
  const std::string q = query_text(r, "q");
  const std::string after = query_text(r, "after");
  const auto limit = static_cast<std::int64_t>(std::max<std::uint64_t>(query_number(r, "limit", 50, max_page), 1));
  std::vector<cli::JsonObject> out;
  std::string last_shown;
  bool more = false;
  site.with_store_sql([&](cli::StoreSql& sql) {
    // A substring match on both dialects; names compare by bytes on both (SQLite's BINARY, PostgreSQL's "C").
    const std::string contains = sql.postgres() ? "strpos(name, $2) > 0" : "instr(name, $2) > 0";
    const std::string order = sql.postgres() ? " COLLATE \"C\"" : "";
    sql.each("SELECT name, category, version, updated_at FROM streams WHERE ($1 = '' OR category = $1) AND "
             "($2 = '' OR " + contains + ") AND name" + order + " > $3 ORDER BY name" + order + " LIMIT $4",
             {cli::SqlParam::text(category), cli::SqlParam::text(q), cli::SqlParam::text(after),
              cli::SqlParam::of(limit + 1)},
             [&](const cli::SqlRow& row) {
               if (static_cast<std::int64_t>(out.size()) == limit) {
                 more = true;
                 return;
               }
               last_shown = std::string(row.text(0));
               out.emplace_back()
                   .str("id", last_shown)
                   .str("category", row.text(1))
                   .inum("version", row.integer(2))
                   .str("updated_at", micros_time(row.integer(3)));
             });
  });
  cli::JsonObject o;
  o.objects("streams", out);
  if (more)
    o.str("next", last_shown);
  else
    o.null("next");
  return json_response(o.text());
}

Response api_stream(Site& site, const Request& r, const std::string& stream) {
  const std::uint64_t from = std::max<std::uint64_t>(query_number(r, "from", 1, UINT64_MAX - 1), 1);
  const std::uint64_t limit = std::max<std::uint64_t>(query_number(r, "limit", 100, max_page), 1);
  ReadStreamOptions options;
  options.from_version = from;
  options.max_count = static_cast<std::size_t>(limit + 1);
  auto events = site.store().read_stream(stream, options);
  if (!events && events.error().is(errc::stream_not_found)) throw HttpError(404, "no stream '" + stream + "'");
  std::vector<RecordedEvent> list = must(std::move(events));
  bool more = list.size() > limit;
  if (more) list.resize(static_cast<std::size_t>(limit));
  std::vector<std::string> json;
  std::size_t bytes = 0;
  for (std::size_t i = 0; i < list.size(); ++i) {
    if (i > 0 && bytes > max_page_bytes) {
      list.resize(i);
      more = true;
      break;
    }
    json.push_back(event_json(site, list[i]));
    bytes += json.back().size();
  }
  cli::JsonObject o;
  o.str("stream", stream).num("version", must(site.store().stream_version(stream)));
  o.raw("events", json_array(json));
  if (more)
    o.num("next", list.back().version + 1);
  else
    o.null("next");
  return json_response(o.text());
}

Response api_event(Site& site, const Request&, const std::string& position) {
  const std::uint64_t at = parse_number(position, "position", UINT64_MAX);
  const auto e = event_at(site, at);
  if (!e) throw HttpError(404, "no event at position " + position);
  return json_response(event_json(site, *e));
}

Response api_correlation(Site& site, const Request& r, const std::string& correlation_id) {
  const auto limit = static_cast<std::int64_t>(std::max<std::uint64_t>(query_number(r, "limit", 500, max_page), 1));
  const auto after = static_cast<std::int64_t>(query_number(r, "after", 0, INT64_MAX));
  std::vector<std::uint64_t> positions;
  site.with_store_sql([&](cli::StoreSql& sql) {
    // The condition of the partial index events_by_correlation, spelled out so that both planners use it.
    sql.each(std::string("SELECT position FROM events WHERE correlation_id = $1 AND ") +
                 (sql.postgres() ? "correlation_id <> ''" : "correlation_id IS NOT NULL") +
                 " AND position > $3 ORDER BY position LIMIT $2",
             {cli::SqlParam::text(correlation_id), cli::SqlParam::of(limit + 1), cli::SqlParam::of(after)},
             [&](const cli::SqlRow& row) { positions.push_back(static_cast<std::uint64_t>(row.integer(0))); });
  });
  bool more = positions.size() > static_cast<std::size_t>(limit);
  if (more) positions.resize(static_cast<std::size_t>(limit));
  std::vector<std::string> json;
  std::size_t bytes = 0;
  std::uint64_t last = 0;
  for (const std::uint64_t p : positions) {
    if (!json.empty() && bytes > max_page_bytes) {
      more = true;
      break;
    }
    if (const auto e = event_at(site, p)) {
      json.push_back(event_json(site, *e));
      bytes += json.back().size();
    }
    last = p;
  }
  cli::JsonObject o;
  o.str("correlation_id", correlation_id);
  o.raw("events", json_array(json));
  if (more)
    o.num("next", last);
  else
    o.null("next");
  return json_response(o.text());
}

}  // namespace evs::http
