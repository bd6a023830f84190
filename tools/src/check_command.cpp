// `check`: the store's integrity, positions, stream versions and order, recorded times, and every stored
// event type against the program's registry (registered, not newer, no shape drift, every payload decodes).
#include "commands.hpp"
#include "format.hpp"
#include "sql.hpp"
#include "sqlite_schema.hpp"

#include <functional>
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

void check(Context& ctx, const CheckArgs& args) {
  // Drift is reported below, per type, rather than refused or warned about at open.
  auto store = ctx.open_store(false, SchemaCheck::off);
  auto c = open_sql(ctx.db, sqlite::Access::read);
  constexpr std::string_view action = "check";
  const EventRegistry& registry = *ctx.app.registry;
  const bool have_registry = !registry.all().empty();
  CheckReport report{ctx};

  // 1. SQLite's own consistency check of the file.
  {
    auto st = must(c.cached(args.quick ? "PRAGMA quick_check(20)" : "PRAGMA integrity_check(20)", action));
    std::vector<std::string> problems;
    while (must(st->step(action)))
      if (st->column_text(0) != "ok") problems.push_back(text_column(*st, 0));
    std::string detail;
    for (const auto& p : problems) detail += (detail.empty() ? "" : "; ") + p;
    report.add(args.quick ? "quick_check" : "integrity_check", problems.empty(), detail);
  }

  auto tx = must(sqlite::Transaction::begin(c, sqlite::Transaction::Mode::deferred, action));
  auto scalar = [&](std::string_view sql) {
    auto st = must(c.cached(sql, action));
    must(st->step(action));
    return st->column_int64(0);
  };

  // A store written before the schema records existed (and not opened writable since) has none to compare.
  const auto store_schema = scalar("PRAGMA user_version");
  const bool has_schema_records = store_schema >= sqlite::schema_records_since;

  // 2. Global positions: 1..N without gaps.
  {
    const auto count = scalar("SELECT count(*) FROM events");
    const auto min = scalar("SELECT coalesce(min(position), 0) FROM events");
    const auto max = scalar("SELECT coalesce(max(position), 0) FROM events");
    if (count == max && (count == 0 || min == 1)) {
      report.add("positions", true, count == 0 ? "no events" : "1.." + std::to_string(max) + ", gap-free");
    } else {
      std::int64_t gap = 1;
      if (min == 1)
        gap = scalar(
            "SELECT e.position + 1 FROM events e WHERE NOT EXISTS (SELECT 1 FROM events n WHERE n.position = "
            "e.position + 1) ORDER BY e.position LIMIT 1");
      report.add("positions", false,
                 std::to_string(max - count) + " missing between 1 and " + std::to_string(max) +
                     " (first missing: " + std::to_string(gap) + ")");
    }
  }

  // 3. Per-stream versions: 1..version, contiguous, matching the streams table; no dangling references.
  {
    auto st = must(c.cached(
        "SELECT s.name, s.version, count(e.position), coalesce(min(e.version), 0), coalesce(max(e.version), 0) "
        "FROM streams s LEFT JOIN events e ON e.stream = s.id GROUP BY s.id "
        "HAVING count(e.position) != s.version OR coalesce(min(e.version), 1) != 1 OR "
        "coalesce(max(e.version), 0) != s.version ORDER BY s.name",
        action));
    std::vector<std::string> bad;
    std::uint64_t n_bad = 0;
    while (must(st->step(action))) {
      ++n_bad;
      if (bad.size() < 5)
        bad.push_back(text_column(*st, 0) + " (version " + std::to_string(st->column_int64(1)) + ", " +
                      std::to_string(st->column_int64(2)) + " events, versions " +
                      std::to_string(st->column_int64(3)) + ".." + std::to_string(st->column_int64(4)) + ")");
    }
    // Within a stream, a later version has a later global position (the stream's order is the log's).
    auto order = must(c.cached(
        "SELECT s.name, a.version, a.position, b.position FROM events a JOIN events b ON b.stream = a.stream AND "
        "b.version = a.version + 1 JOIN streams s ON s.id = a.stream WHERE b.position < a.position "
        "ORDER BY s.name, a.version",
        action));
    while (must(order->step(action))) {
      ++n_bad;
      if (bad.size() < 5)
        bad.push_back(text_column(*order, 0) + " (version " + std::to_string(order->column_int64(1) + 1) +
                      " is at position " + std::to_string(order->column_int64(3)) + ", before version " +
                      std::to_string(order->column_int64(1)) + " at position " +
                      std::to_string(order->column_int64(2)) + ")");
    }
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
  {
    const auto back = scalar(
        "SELECT count(*) FROM events a JOIN events b ON b.position = a.position + 1 WHERE b.recorded_at < a.recorded_at");
    report.add("recorded_at order", back == 0, back == 0 ? "non-decreasing" : plural(static_cast<std::uint64_t>(back), "step goes", "steps go") + " back in time");
  }

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
    auto st = must(c.cached(
        "SELECT t.name, e.schema_version, count(*) FROM events e JOIN event_types t ON t.id = e.type "
        "GROUP BY t.name, e.schema_version ORDER BY t.name, e.schema_version",
        action));
    while (must(st->step(action)))
      types[{text_column(*st, 0), static_cast<std::uint32_t>(st->column_int64(1))}].events =
          static_cast<std::uint64_t>(st->column_int64(2));
  }
  // The upcasting chains (older versions -> current types) are complete.
  bool chains_ok = true;
  if (have_registry) {
    auto chains = registry.validate();
    chains_ok = chains.has_value();
    report.add("upcasting chains", chains_ok, chains_ok ? "complete" : chains.error().message);
  }
  if (have_registry) {
    auto st = must(c.cached(
        "SELECT e.position, t.name, e.schema_version, e.encoding, e.payload FROM events e "
        "JOIN event_types t ON t.id = e.type ORDER BY e.position",
        action));
    while (must(st->step(action))) {
      const std::string name(st->column_text(1));
      const auto version = static_cast<std::uint32_t>(st->column_int64(2));
      const EventTypeInfo* info = registry.find(name, version);
      if (info == nullptr || info->validate == nullptr) continue;  // reported below
      const auto encoding = static_cast<Encoding>(st->column_int64(3));
      // An older version must decode as its own type and upcast (what every read path does with it).
      Result<void> ok;
      if (!chains_ok || registry.upcaster_of(info->type) == nullptr) {
        ok = info->validate(st->column_blob(4), encoding);
      } else if (auto up = registry.upcast(*info, st->column_blob(4), encoding); !up) {
        ok = up.error();
      }
      if (!ok) {
        TypeCheck& t = types[{name, version}];
        if (t.failed++ == 0)
          t.first_failure = "position " + std::to_string(st->column_int64(0)) + ": " + ok.error().message;
      }
    }
  }
  tx.rollback();

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
    throw Failure("check failed: " + plural(static_cast<std::uint64_t>(report.failures), "problem", "problems") + " in " + ctx.db);
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
      "Checks: SQLite integrity; global positions gap-free; stream versions contiguous and in log order; recorded "
      "times in order; "
      "and, for every stored (event type, schema version): registered in this program, not newer than the "
      "registered version, the same shape (members, their order and types) as the type that first stored it "
      "(status schema_drift names the members added, removed, renamed or retyped), and every payload decodes (an older version: decodes as its old type and upcasts; the upcasting chains are checked too). Run it from the application's own binary (the embedded "
      "form) before a deploy to catch a change that would break old events. The standalone evs binary has no "
      "registry and reports the types as not checked. Exit code 1 when anything fails.");
  sub->callback([&ctx, args] { check(ctx, *args); });
}

}  // namespace evs::cli
