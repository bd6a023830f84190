// `check`: the store's integrity, positions, stream versions and order, recorded times, and every stored
// event type against the program's registry (registered, not newer, no shape drift, every payload decodes).
#include "commands.hpp"
#include "format.hpp"
#include "sql.hpp"
#include "store_sql.hpp"
#include "sqlite_schema.hpp"

#include <algorithm>
#include <functional>
#include <limits>
#include <map>
#include <optional>

namespace evs::cli {
namespace {

// ---- check ------------------------------------------------------------------------------------------------

struct CheckArgs {
  bool quick = false;
};

struct CheckReport {
  Context& ctx;
  int failures = 0;
  Table table{{"check", "result"}};

  // One result; `ok` empty means "not checked". `extra` adds fields to the JSON line.
  void add(const std::string& check, std::optional<bool> ok, const std::string& detail,
           const std::function<void(JsonObject&)>& extra = {}) {
    if (ok == false) ++failures;
    if (ctx.json) {
      JsonObject json;
      json.str("check", check);
      if (ok)
        json.boolean("ok", *ok);
      else
        json.null("ok");
      json.str("detail", detail);
      if (extra) extra(json);
      ctx.out << json.text() << '\n';
    } else {
      table.row({check, (!ok ? std::string("not checked") : *ok ? "ok" : "FAILED") + (detail.empty() ? "" : ": " + detail)});
    }
  }
};

// The JSON fields of a drift: the member descriptions and each kind of change as strings.
void drift_fields(JsonObject& json, const SchemaDrift& d) {
  std::vector<std::string> added, removed, renamed, retyped;
  for (const SchemaMember& m : d.added) added.push_back(m.name + ":" + m.type);
  for (const SchemaMember& m : d.removed) removed.push_back(m.name + ":" + m.type);
  for (const auto& [from, to] : d.renamed) renamed.push_back(from.name + " -> " + to.name);
  for (const auto& [from, to] : d.retyped) retyped.push_back(from.name + ": " + from.type + " -> " + to.type);
  json.str("recorded_members", d.recorded_members)
      .str("registered_members", d.registered_members)
      .strings("added", added)
      .strings("removed", removed)
      .strings("renamed", renamed)
      .strings("retyped", retyped)
      .boolean("reordered", d.reordered);
}

// Global positions. SQLite: 1..N without gaps, except up to the position a log was imported through with
// gaps (evs_meta imported_through, written by an import from PostgreSQL). PostgreSQL: unique (the primary
// key) and positive; gaps are how its positions are made.
void check_positions(StoreSql& sql, CheckReport& report, std::int64_t imported_through) {
  const auto count = sql.scalar("SELECT count(*) FROM events");
  const auto min = sql.scalar("SELECT coalesce(min(position), 0) FROM events");
  const auto max = sql.scalar("SELECT coalesce(max(position), 0) FROM events");
  if (sql.postgres()) {
    const auto bad = sql.scalar("SELECT count(*) FROM events WHERE position <= 0");
    report.add("positions", bad == 0,
               bad != 0     ? plural(static_cast<std::uint64_t>(bad), "event has", "events have") + " a position <= 0"
               : count == 0 ? "no events"
                            : std::to_string(count) + " unique, ascending in log order, " + std::to_string(min) + ".." +
                                  std::to_string(max) + " (gaps are normal on PostgreSQL)");
    return;
  }
  const std::int64_t base = std::min(imported_through, max);  // gap-free above it
  const auto above = sql.scalar("SELECT count(*) FROM events WHERE position > $1", {SqlParam::of(base)});
  const std::string imported =
      base == 0 ? std::string()
                : "up to position " + std::to_string(base) + " imported with gaps (copied from another store)";
  if (above == max - base) {
    report.add("positions", true,
               count == 0   ? "no events"
               : base == 0  ? "1.." + std::to_string(max) + ", gap-free"
               : max > base ? imported + ", " + std::to_string(base + 1) + ".." + std::to_string(max) + ", gap-free"
                            : imported);
    return;
  }
  std::int64_t gap = base + 1;
  if (sql.scalar("SELECT count(*) FROM events WHERE position = $1", {SqlParam::of(gap)}) != 0)
    gap = sql.scalar(
        "SELECT e.position + 1 FROM events e WHERE e.position >= $1 AND NOT EXISTS (SELECT 1 FROM events n WHERE "
        "n.position = e.position + 1) ORDER BY e.position LIMIT 1",
        {SqlParam::of(gap)});
  report.add("positions", false,
             (imported.empty() ? "" : imported + "; ") + std::to_string(max - base - above) + " missing between " + std::to_string(base + 1) + " and " +
                 std::to_string(max) + " (first missing: " + std::to_string(gap) + ")");
}

// recorded_at never decreases along positions: what appends guarantee on SQLite. An imported log (up to
// imported_through) and a PostgreSQL log may step back where transactions overlapped: reported, not failed.
void check_recorded_order(StoreSql& sql, CheckReport& report, std::int64_t imported_through) {
  std::int64_t back = 0, back_after_import = 0, most = 0;
  sql.each(
      "SELECT count(*), CAST(coalesce(sum(CASE WHEN position > $1 THEN 1 ELSE 0 END), 0) AS bigint), "
      "CAST(coalesce(max(prev - recorded_at), 0) AS bigint) FROM (SELECT position, recorded_at, lag(recorded_at) "
      "OVER (ORDER BY position) AS prev FROM events) x WHERE recorded_at < prev",
      {SqlParam::of(sql.postgres() ? std::numeric_limits<std::int64_t>::max() : imported_through)},
      [&](const SqlRow& row) {
        back = row.integer(0);
        back_after_import = row.integer(1);
        most = row.integer(2);
      });
  const std::string steps = plural(static_cast<std::uint64_t>(back), "step goes", "steps go") + " back in time";
  const std::string by =
      " (by at most " +
      (most < 1000      ? std::to_string(most) + " us"
       : most < 1000000 ? std::to_string(most / 1000) + " ms"
                        : human_duration(static_cast<double>(most) / 1e6)) +
      ")";
  if (back == 0) {
    report.add("recorded_at order", true, "non-decreasing");
  } else if (sql.postgres()) {
    report.add("recorded_at order", std::nullopt,
               steps + by + ": on PostgreSQL, recorded times follow the log order only up to transactions that "
                            "overlapped");
  } else if (back_after_import == 0) {
    report.add("recorded_at order", true,
               "non-decreasing after position " + std::to_string(imported_through) + "; " + steps + by +
                   " up to it, as imported");
  } else {
    report.add("recorded_at order", false,
               plural(static_cast<std::uint64_t>(back_after_import), "step goes", "steps go") + " back in time" + by);
  }
}

void check(Context& ctx, const CheckArgs& args) {
  // Drift is reported below, per type, rather than refused or warned about at open.
  auto store = ctx.open_store(false, SchemaCheck::off);
  auto sql = open_store_sql(ctx, false);
  const bool pg = sql->postgres();
  const EventRegistry& registry = *ctx.app.registry;
  const bool have_registry = !registry.all().empty();
  CheckReport report{ctx};

  // 1. SQLite's own consistency check of the file (PostgreSQL checks its pages itself).
  if (!pg) {
    std::vector<std::string> problems;
    sql->each(args.quick ? "PRAGMA quick_check(20)" : "PRAGMA integrity_check(20)", {}, [&](const SqlRow& row) {
      if (row.text(0) != "ok") problems.emplace_back(row.text(0));
    });
    std::string detail;
    for (const auto& p : problems) detail += (detail.empty() ? "" : "; ") + p;
    report.add(args.quick ? "quick_check" : "integrity_check", problems.empty(), detail);
  }

  sql->begin_read();
  const auto scalar = [&](std::string_view query) { return sql->scalar(query); };

  // A SQLite store written before the schema records existed (and not opened writable since) has none to
  // compare.
  const auto store_schema =
      scalar(pg ? "SELECT CAST(value AS bigint) FROM evs_meta WHERE key = 'schema_version'" : "PRAGMA user_version");
  const bool has_schema_records = pg || store_schema >= sqlite::schema_records_since;
  const std::int64_t imported_through =
      pg ? 0 : scalar("SELECT CAST(value AS bigint) FROM evs_meta WHERE key = 'imported_through'");

  // 2. Global positions.
  check_positions(*sql, report, imported_through);

  // 3. Per-stream versions: 1..version, contiguous, matching the streams table; no dangling references.
  {
    std::vector<std::string> bad;
    std::uint64_t n_bad = 0;
    sql->each(
        "SELECT s.name, s.version, count(e.position), coalesce(min(e.version), 0), coalesce(max(e.version), 0) "
        "FROM streams s LEFT JOIN events e ON e.stream = s.id GROUP BY s.id "
        "HAVING count(e.position) != s.version OR coalesce(min(e.version), 1) != 1 OR "
        "coalesce(max(e.version), 0) != s.version ORDER BY s.name",
        {}, [&](const SqlRow& row) {
          ++n_bad;
          if (bad.size() < 5)
            bad.push_back(std::string(row.text(0)) + " (version " + std::to_string(row.integer(1)) + ", " +
                          std::to_string(row.integer(2)) + " events, versions " + std::to_string(row.integer(3)) +
                          ".." + std::to_string(row.integer(4)) + ")");
        });
    // Within a stream, a later version has a later global position (the stream's order is the log's).
    sql->each(
        "SELECT s.name, a.version, a.position, b.position FROM events a JOIN events b ON b.stream = a.stream AND "
        "b.version = a.version + 1 JOIN streams s ON s.id = a.stream WHERE b.position < a.position "
        "ORDER BY s.name, a.version",
        {}, [&](const SqlRow& row) {
          ++n_bad;
          if (bad.size() < 5)
            bad.push_back(std::string(row.text(0)) + " (version " + std::to_string(row.integer(1) + 1) +
                          " is at position " + std::to_string(row.integer(3)) + ", before version " +
                          std::to_string(row.integer(1)) + " at position " + std::to_string(row.integer(2)) + ")");
        });
    const auto orphans = scalar("SELECT count(*) FROM events WHERE stream NOT IN (SELECT id FROM streams)");
    const auto streams_n = scalar("SELECT count(*) FROM streams");
    std::string detail;
    for (const auto& b : bad) detail += (detail.empty() ? "" : "; ") + b;
    if (n_bad > bad.size()) detail += "; and " + std::to_string(n_bad - bad.size()) + " more";
    if (orphans > 0) detail += (detail.empty() ? "" : "; ") + plural(static_cast<std::uint64_t>(orphans), "event belongs", "events belong") + " to no stream";
    report.add("stream versions", n_bad == 0 && orphans == 0,
               n_bad == 0 && orphans == 0 ? plural(static_cast<std::uint64_t>(streams_n), "stream", "streams") + ", contiguous, in log order"
                                         : detail);
  }

  // 4. recorded_at never decreases along positions.
  check_recorded_order(*sql, report, imported_through);

  // 5. Every stored (type, schema version): registered, not newer than the code, every payload decodes.
  struct TypeCheck {
    std::uint64_t events = 0;
    std::uint64_t failed = 0;
    std::string first_failure;
  };
  std::map<std::pair<std::string, std::uint32_t>, TypeCheck> types;
  {
    const auto dangling = scalar("SELECT count(*) FROM events WHERE type NOT IN (SELECT id FROM event_types)");
    if (dangling > 0) report.add("event types", false, plural(static_cast<std::uint64_t>(dangling), "event has", "events have") + " an unknown type id");
    sql->each(
        "SELECT t.name, e.schema_version, count(*) FROM events e JOIN event_types t ON t.id = e.type "
        "GROUP BY t.name, e.schema_version ORDER BY t.name, e.schema_version",
        {}, [&](const SqlRow& row) {
          types[{std::string(row.text(0)), static_cast<std::uint32_t>(row.integer(1))}].events =
              static_cast<std::uint64_t>(row.integer(2));
        });
  }
  // The upcasting chains (older versions -> current types) are complete.
  bool chains_ok = true;
  if (have_registry) {
    auto chains = registry.validate();
    chains_ok = chains.has_value();
    report.add("upcasting chains", chains_ok, chains_ok ? "complete" : chains.error().message);
  }
  if (have_registry) {
    // Page by position, so a big store is never held in memory at once.
    for (std::int64_t after = std::numeric_limits<std::int64_t>::min();;) {
      std::size_t rows = 0;
      sql->each(
          "SELECT e.position, t.name, e.schema_version, e.encoding, e.payload FROM events e "
          "JOIN event_types t ON t.id = e.type WHERE e.position > $1 ORDER BY e.position LIMIT " +
              std::to_string(batch_size),
          {SqlParam::of(after)}, [&](const SqlRow& row) {
            ++rows;
            after = row.integer(0);
            const std::string name(row.text(1));
            const auto version = static_cast<std::uint32_t>(row.integer(2));
            const EventTypeInfo* info = registry.find(name, version);
            if (info == nullptr || info->validate == nullptr) return;  // reported below
            const auto encoding = static_cast<Encoding>(row.integer(3));
            // An older version must decode as its own type and upcast (what every read path does with it).
            Result<void> ok;
            if (!chains_ok || registry.upcaster_of(info->type) == nullptr) {
              ok = info->validate(row.text(4), encoding);
            } else if (auto up = registry.upcast(*info, row.text(4), encoding); !up) {
              ok = up.error();
            }
            if (!ok) {
              TypeCheck& t = types[{name, version}];
              if (t.failed++ == 0) t.first_failure = "position " + std::to_string(after) + ": " + ok.error().message;
            }
          });
      if (rows < batch_size) break;
    }
  }
  sql->end_read();

  // 6. Shape drift: the registered type of a stored (type, version) is the one that first stored it.
  std::map<std::pair<std::string, std::uint32_t>, SchemaDrift> drifts;
  if (!has_schema_records)
    report.add("schema records", std::nullopt,
               "the store has no schema records yet (its schema version " + std::to_string(store_schema) +
                   " predates them), so shape drift is not checked; a writable open adds them, and each event "
                   "type's next typed append records its shape");
  if (have_registry && has_schema_records) {
    const std::vector<RecordedSchema> recorded = must(store->recorded_schemas());
    for (SchemaDrift& d : find_schema_drift(recorded, registry))
      drifts.emplace(std::pair(d.type, d.schema_version), std::move(d));
  }

  for (const auto& entry : types) {
    // Plain references, not structured bindings: the lambdas below capture them (clang 14 cannot).
    const std::string& name = entry.first.first;
    const std::uint32_t version = entry.first.second;
    const TypeCheck& t = entry.second;
    const std::string label = "event type " + name + " v" + std::to_string(version);
    const std::string events = plural(t.events, "event", "events");
    auto fields = [&](const char* status) {
      return [&, status](JsonObject& json) {
        json.str("type", name).num("schema_version", version).num("events", t.events).str("status", status);
      };
    };
    if (!have_registry) {
      report.add(label, std::nullopt, events + " (no registry)", fields("not_checked"));
      continue;
    }
    const EventTypeInfo* latest = registry.find(name);
    const EventTypeInfo* info = registry.find(name, version);
    // "v1::OrderPlaced, upcast" for an older version: its events reach the code as current types.
    const std::string as = info == nullptr ? std::string()
                                           : info->cpp_type + (chains_ok && registry.upcaster_of(info->type) != nullptr
                                                                   ? " and upcast"
                                                                   : "");
    if (latest == nullptr) {
      report.add(label, false, events + ", not registered in " + ctx.app.name, fields("not_registered"));
    } else if (version > latest->version) {
      report.add(label, false,
                 events + ", schema version " + std::to_string(version) + " is newer than the registered " +
                     std::to_string(latest->version) + " (" + latest->cpp_type + ")",
                 fields("unsupported_schema_version"));
    } else if (info == nullptr) {
      report.add(label, false,
                 events + ", schema version " + std::to_string(version) + " is not registered (the current is " +
                     std::to_string(latest->version) + ", " + latest->cpp_type +
                     "): register the old struct and its upcaster",
                 fields("unsupported_schema_version"));
    } else if (auto drift = drifts.find(entry.first); drift != drifts.end()) {
      const SchemaDrift& d = drift->second;
      report.add(label, false,
                 events + ", shape drift: " + d.message() +
                     (t.failed > 0 ? " (" + std::to_string(t.failed) + " do not decode)" : ""),
                 [&](JsonObject& json) {
                   fields("schema_drift")(json);
                   drift_fields(json, d);
                 });
    } else if (t.failed > 0) {
      report.add(label, false,
                 std::to_string(t.failed) + " of " + events + " do not decode as " + as + " (first: " +
                     t.first_failure + ")",
                 fields("corrupt_payload"));
    } else {
      report.add(label, true, events + (t.events == 1 ? " decodes" : " decode") + " as " + as, fields("ok"));
    }
  }

  if (!ctx.json) report.table.print(ctx.out);
  if (report.failures > 0)
    throw Failure("check failed: " + plural(static_cast<std::uint64_t>(report.failures), "problem", "problems") + " in " + ctx.where());
  if (ctx.json)
    ctx.out << JsonObject().str("check", "summary").boolean("ok", true).text() << '\n';
  else
    ctx.out << "check passed" << (have_registry ? "" : " (event payloads not checked: no registry; run the check "
                                                       "embedded in the application to decode them)") << '\n';
}

}  // namespace

void add_check_command(CLI::App& cli, Context& ctx) {
  auto args = std::make_shared<CheckArgs>();
  auto* sub = cli.add_subcommand(
      "check", "Check the database's integrity and that every stored event type decodes with this program");
  sub->add_flag("--quick", args->quick, "PRAGMA quick_check instead of the full integrity_check");
  sub->footer(
      "Checks: SQLite integrity (SQLite only); global positions gap-free (SQLite: except the part copied from "
      "PostgreSQL; PostgreSQL: unique and ascending, gaps are normal); stream versions contiguous and in log "
      "order; recorded times in order (on PostgreSQL, steps back where transactions overlapped are reported, "
      "not failed); "
      "and, for every stored (event type, schema version): registered in this program, not newer than the "
      "registered version, the same shape (members, their order and types) as the type that first stored it "
      "(status schema_drift names the members added, removed, renamed or retyped), and every payload decodes (an older version: decodes as its old type and upcasts; the upcasting chains are checked too). Run it from the application's own binary (the embedded "
      "form) before a deploy to catch a change that would break old events. The standalone evs binary has no "
      "registry and reports the types as not checked. Exit code 1 when anything fails.");
  sub->callback([&ctx, args] { check(ctx, *args); });
}

}  // namespace evs::cli
