// streams, read, tail, stats, check, export, import: everything that works on the event store file.
#include "commands.hpp"
#include "format.hpp"
#include "sql.hpp"

#include <rapidjson/document.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <atomic>
#include <cerrno>
#include <csignal>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iostream>
#include <limits>
#include <map>
#include <optional>
#include <set>
#include <sstream>
#include <thread>

namespace evs::cli {
namespace {

constexpr std::size_t batch_size = 500;

std::string plural(std::uint64_t n, std::string_view one, std::string_view many) {
  return std::to_string(n) + " " + std::string(n == 1 ? one : many);
}

// ---- streams ----------------------------------------------------------------------------------------------

struct StreamsArgs {
  std::vector<std::string> categories;
  std::optional<std::size_t> limit;
};

void streams(Context& ctx, const StreamsArgs& args) {
  auto store = ctx.open_store();
  auto c = open_sql(ctx.db, sqlite::Access::read);
  constexpr std::string_view action = "list the streams of";
  std::string sql = "SELECT name, category, version, updated_at FROM streams";
  if (!args.categories.empty()) {
    sql += " WHERE category IN (";
    for (std::size_t i = 0; i < args.categories.size(); ++i) sql += (i ? ", ?" : "?") + std::to_string(i + 1);
    sql += ")";
  }
  sql += " ORDER BY name";
  if (args.limit) sql += " LIMIT " + std::to_string(*args.limit);
  auto st = must(c.cached(sql, action));
  for (std::size_t i = 0; i < args.categories.size(); ++i) st->bind_text(static_cast<int>(i + 1), args.categories[i]);

  Table table({"stream", "category", "version", "last update"}, {false, false, true, false});
  std::uint64_t n = 0;
  while (must(st->step(action))) {
    ++n;
    const std::string name = text_column(*st, 0);
    const std::string category = text_column(*st, 1);
    const auto version = static_cast<std::uint64_t>(st->column_int64(2));
    const std::string updated = iso_time(st->column_int64(3));
    if (ctx.json)
      ctx.out << JsonObject().str("stream", name).str("category", category).num("version", version).str("updated_at", updated).text()
              << '\n';
    else
      table.row({name, category, std::to_string(version), updated});
  }
  if (!ctx.json) {
    if (n > 0) table.print(ctx.out);
    ctx.out << plural(n, "stream", "streams") << '\n';
  }
}

// ---- read -------------------------------------------------------------------------------------------------

struct ReadArgs {
  std::string stream;
  bool backward = false;
  std::optional<std::uint64_t> from;
  std::optional<std::size_t> count;
};

void show(Context& ctx, const RecordedEvent& e) {
  if (ctx.json)
    ctx.out << event_json(e, *ctx.app.registry, true) << '\n';
  else
    print_event(ctx.out, e, *ctx.app.registry);
}

void read(Context& ctx, const ReadArgs& args) {
  auto store = ctx.open_store();
  const bool backward = args.backward;
  std::uint64_t from = args.from.value_or(backward ? end_of_stream : 1);
  std::uint64_t left = args.count.value_or(std::numeric_limits<std::uint64_t>::max());
  while (left > 0) {  // in batches, so a long stream is never held in memory at once
    ReadStreamOptions options;
    options.direction = backward ? Direction::backward : Direction::forward;
    options.from_version = from;
    options.max_count = static_cast<std::size_t>(std::min<std::uint64_t>(batch_size, left));
    auto events = store->read_stream(args.stream, options);
    if (!events && events.error().is(errc::stream_not_found))
      throw Failure("stream '" + args.stream + "' not found in " + ctx.db);
    const auto batch = must(std::move(events));
    for (const RecordedEvent& e : batch) show(ctx, e);
    left -= batch.size();
    if (batch.size() < options.max_count) break;
    if (backward && batch.back().version == 1) break;
    from = backward ? batch.back().version - 1 : batch.back().version + 1;
  }
}

// ---- tail -------------------------------------------------------------------------------------------------

std::atomic<bool> interrupted{false};
extern "C" void on_interrupt(int) { interrupted.store(true); }

// Catches SIGINT/SIGTERM while tail runs (Ctrl-C ends it with exit code 0), restoring the old handlers.
class InterruptScope {
 public:
  InterruptScope() {
    interrupted.store(false);
    struct sigaction sa {};
    sa.sa_handler = on_interrupt;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, &old_int_);
    sigaction(SIGTERM, &sa, &old_term_);
  }
  ~InterruptScope() {
    sigaction(SIGINT, &old_int_, nullptr);
    sigaction(SIGTERM, &old_term_, nullptr);
  }
  InterruptScope(const InterruptScope&) = delete;
  InterruptScope& operator=(const InterruptScope&) = delete;

 private:
  struct sigaction old_int_ {};
  struct sigaction old_term_ {};
};

struct TailArgs {
  std::optional<std::uint64_t> from;
  std::optional<std::uint64_t> count;
  std::vector<std::string> categories;
  std::vector<std::string> types;
};

void tail(Context& ctx, const TailArgs& args) {
  auto store = ctx.open_store();
  InterruptScope scope;
  ReadAllFilter filter{args.types, args.categories};
  std::uint64_t next = args.from ? std::max<std::uint64_t>(*args.from, 1) : must(store->last_position()) + 1;
  std::uint64_t printed = 0;
  std::uint64_t token = must(store->change_token());
  bool changed = true;  // read once at the start
  while (!interrupted.load()) {
    if (changed) {
      for (;;) {
        std::size_t want = batch_size;
        if (args.count) want = static_cast<std::size_t>(std::min<std::uint64_t>(want, *args.count - printed));
        auto batch = must(store->read_all(next, want, filter));
        for (const RecordedEvent& e : batch.events) {
          show(ctx, e);
          ++printed;
        }
        ctx.out.flush();
        if (args.count && printed >= *args.count) return;
        if (batch.next_position == next) break;  // at the end
        next = batch.next_position;
        if (interrupted.load()) return;
      }
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    const std::uint64_t now = must(store->change_token());
    changed = now != token;
    token = now;
  }
}

// ---- stats ------------------------------------------------------------------------------------------------

std::uint64_t file_size_or_zero(const std::string& path) {
  std::error_code ec;
  const auto size = std::filesystem::file_size(path, ec);
  return ec ? 0 : static_cast<std::uint64_t>(size);
}

void stats(Context& ctx) {
  auto store = ctx.open_store();
  auto c = open_sql(ctx.db, sqlite::Access::read);
  constexpr std::string_view action = "read statistics from";
  auto tx = must(sqlite::Transaction::begin(c, sqlite::Transaction::Mode::deferred, action));

  auto scalar = [&](std::string_view sql) {
    auto st = must(c.cached(sql, action));
    must(st->step(action));
    return st->column_int64(0);
  };
  const auto schema = scalar("PRAGMA user_version");
  const auto events = static_cast<std::uint64_t>(scalar("SELECT count(*) FROM events"));
  const auto last_position = static_cast<std::uint64_t>(scalar("SELECT coalesce(max(position), 0) FROM events"));
  const auto streams_n = static_cast<std::uint64_t>(scalar("SELECT count(*) FROM streams"));
  const auto snapshots = static_cast<std::uint64_t>(scalar("SELECT count(*) FROM snapshots"));
  std::string first_at, last_at;
  if (events > 0) {
    first_at = iso_time(scalar("SELECT recorded_at FROM events ORDER BY position LIMIT 1"));
    last_at = iso_time(scalar("SELECT recorded_at FROM events ORDER BY position DESC LIMIT 1"));
  }

  struct TypeRow {
    std::string name;
    std::uint64_t events;
    std::string versions;
  };
  std::vector<TypeRow> types;
  {
    auto st = must(c.cached(
        "SELECT t.name, count(*), (SELECT group_concat(v, ',') FROM (SELECT DISTINCT schema_version AS v FROM "
        "events WHERE type = e.type ORDER BY v)) FROM events e JOIN event_types t ON t.id = e.type GROUP BY e.type "
        "ORDER BY t.name",
        action));
    while (must(st->step(action)))
      types.push_back({text_column(*st, 0), static_cast<std::uint64_t>(st->column_int64(1)), text_column(*st, 2)});
  }
  struct CategoryRow {
    std::string name;
    std::uint64_t streams, events;
  };
  std::vector<CategoryRow> categories;
  {
    auto st = must(c.cached("SELECT category, count(*), sum(version) FROM streams GROUP BY category ORDER BY category", action));
    while (must(st->step(action)))
      categories.push_back({text_column(*st, 0), static_cast<std::uint64_t>(st->column_int64(1)),
                            static_cast<std::uint64_t>(st->column_int64(2))});
  }
  tx.rollback();

  const std::uint64_t size = file_size_or_zero(ctx.db);
  const std::uint64_t wal = file_size_or_zero(ctx.db + "-wal");
  if (ctx.json) {
    JsonObject o;
    o.str("file", ctx.db).num("file_size", size).num("wal_size", wal).inum("schema_version", schema);
    o.num("events", events).num("streams", streams_n).num("snapshots", snapshots).num("last_position", last_position);
    if (events > 0)
      o.str("first_recorded_at", first_at).str("last_recorded_at", last_at);
    else
      o.null("first_recorded_at").null("last_recorded_at");
    std::vector<JsonObject> t;
    for (const auto& r : types) {
      std::vector<std::uint64_t> versions;
      for (std::size_t at = 0; at < r.versions.size();) {
        const std::size_t comma = std::min(r.versions.find(',', at), r.versions.size());
        versions.push_back(std::stoull(r.versions.substr(at, comma - at)));
        at = comma + 1;
      }
      t.emplace_back().str("type", r.name).num("events", r.events).numbers("schema_versions", versions);
    }
    o.objects("types", t);
    std::vector<JsonObject> cats;
    for (const auto& r : categories)
      cats.emplace_back().str("category", r.name).num("streams", r.streams).num("events", r.events);
    o.objects("categories", cats);
    ctx.out << o.text() << '\n';
    return;
  }
  Table summary({"", ""});
  summary.row({"file", ctx.db});
  summary.row({"size", human_size(size) + (wal > 0 ? " (+ " + human_size(wal) + " write-ahead log)" : "")});
  summary.row({"schema version", std::to_string(schema)});
  summary.row({"events", std::to_string(events)});
  summary.row({"streams", std::to_string(streams_n)});
  summary.row({"snapshots", std::to_string(snapshots)});
  summary.row({"last position", std::to_string(last_position)});
  if (events > 0) {
    summary.row({"first event", first_at});
    summary.row({"last event", last_at});
  }
  // Print without the (empty) header line.
  std::ostringstream text;
  summary.print(text);
  ctx.out << text.str().substr(text.str().find('\n') + 1);
  if (!types.empty()) {
    ctx.out << '\n';
    Table t({"type", "events", "schema versions"}, {false, true, false});
    for (const auto& r : types) t.row({r.name, std::to_string(r.events), r.versions});
    t.print(ctx.out);
  }
  if (!categories.empty()) {
    ctx.out << '\n';
    Table t({"category", "streams", "events"}, {false, true, true});
    for (const auto& r : categories) t.row({r.name, std::to_string(r.streams), std::to_string(r.events)});
    t.print(ctx.out);
  }
}

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

void check(Context& ctx, const CheckArgs& args) {
  auto store = ctx.open_store();
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
    const auto orphans = scalar("SELECT count(*) FROM events WHERE stream NOT IN (SELECT id FROM streams)");
    const auto streams_n = scalar("SELECT count(*) FROM streams");
    std::string detail;
    for (const auto& b : bad) detail += (detail.empty() ? "" : "; ") + b;
    if (n_bad > bad.size()) detail += "; and " + std::to_string(n_bad - bad.size()) + " more";
    if (orphans > 0) detail += (detail.empty() ? "" : "; ") + plural(static_cast<std::uint64_t>(orphans), "event belongs", "events belong") + " to no stream";
    report.add("stream versions", n_bad == 0 && orphans == 0,
               n_bad == 0 && orphans == 0 ? plural(static_cast<std::uint64_t>(streams_n), "stream", "streams") + ", contiguous" : detail);
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
  if (have_registry) {
    auto st = must(c.cached(
        "SELECT e.position, t.name, e.schema_version, e.encoding, e.payload FROM events e "
        "JOIN event_types t ON t.id = e.type ORDER BY e.position",
        action));
    while (must(st->step(action))) {
      const std::string name(st->column_text(1));
      const auto version = static_cast<std::uint32_t>(st->column_int64(2));
      const EventTypeInfo* info = registry.find(name);
      if (info == nullptr || info->validate == nullptr || version > info->version) continue;  // reported below
      const auto encoding = static_cast<Encoding>(st->column_int64(3));
      auto ok = info->validate(st->column_blob(4), encoding);
      if (!ok) {
        TypeCheck& t = types[{name, version}];
        if (t.failed++ == 0)
          t.first_failure = "position " + std::to_string(st->column_int64(0)) + ": " + ok.error().message;
      }
    }
  }
  tx.rollback();

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
    const EventTypeInfo* info = registry.find(name);
    if (info == nullptr) {
      report.add(label, false, events + ", not registered in " + ctx.app.name, fields("not_registered"));
    } else if (version > info->version) {
      report.add(label, false,
                 events + ", schema version " + std::to_string(version) + " is newer than the registered " +
                     std::to_string(info->version) + " (" + info->cpp_type + ")",
                 fields("unsupported_schema_version"));
    } else if (t.failed > 0) {
      report.add(label, false,
                 std::to_string(t.failed) + " of " + events + " do not decode as " + info->cpp_type + " (first: " +
                     t.first_failure + ")",
                 fields("corrupt_payload"));
    } else {
      report.add(label, true, events + (t.events == 1 ? " decodes" : " decode") + " as " + info->cpp_type,
                 fields("ok"));
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

// ---- export -----------------------------------------------------------------------------------------------

struct ExportArgs {
  std::optional<std::string> stream;
  bool all = false;
  std::optional<std::uint64_t> from;
  std::optional<std::uint64_t> count;
  std::string out;
};

void export_events(Context& ctx, const ExportArgs& args) {
  if (args.stream.has_value() == args.all)
    throw CLI::ValidationError("export", "pass either --stream STREAM or --all");
  auto store = ctx.open_store();
  std::ofstream file;
  std::ostream* sink = &ctx.out;
  if (!args.out.empty()) {
    file.open(args.out, std::ios::binary | std::ios::trunc);
    if (!file) throw Failure("cannot write " + args.out + ": " + std::strerror(errno));
    sink = &file;
  }
  const std::uint64_t limit = args.count.value_or(std::numeric_limits<std::uint64_t>::max());
  std::uint64_t written = 0;
  auto emit = [&](const RecordedEvent& e) {
    *sink << event_json(e, *ctx.app.registry, false) << '\n';
    ++written;
  };
  if (args.stream) {
    std::uint64_t from = std::max<std::uint64_t>(args.from.value_or(1), 1);
    while (written < limit) {
      ReadStreamOptions o;
      o.from_version = from;
      o.max_count = static_cast<std::size_t>(std::min<std::uint64_t>(batch_size, limit - written));
      auto events = store->read_stream(*args.stream, o);
      if (!events && events.error().is(errc::stream_not_found))
        throw Failure("stream '" + *args.stream + "' not found in " + ctx.db);
      auto batch = must(std::move(events));
      for (const RecordedEvent& e : batch) emit(e);
      if (batch.size() < o.max_count) break;
      from = batch.back().version + 1;
    }
  } else {
    std::uint64_t next = std::max<std::uint64_t>(args.from.value_or(1), 1);
    while (written < limit) {
      const auto want = static_cast<std::size_t>(std::min<std::uint64_t>(batch_size, limit - written));
      auto batch = must(store->read_all(next, want));
      for (const RecordedEvent& e : batch.events) emit(e);
      if (batch.events.empty() || batch.next_position == next) break;
      next = batch.next_position;
    }
  }
  sink->flush();
  if (file.is_open()) {
    file.close();
    if (!file) throw Failure("cannot write " + args.out + ": " + std::strerror(errno));
    if (ctx.json)
      ctx.out << JsonObject().num("exported", written).str("file", args.out).text() << '\n';
    else
      ctx.out << "exported " << plural(written, "event", "events") << " to " << args.out << '\n';
  }
}

// ---- import -----------------------------------------------------------------------------------------------

struct ImportArgs {
  std::string file;
};

struct ImportedEvent {
  std::string stream;
  EventData data;
  std::size_t line = 0;
};

std::string member_string(const rapidjson::Value& o, const char* key, bool required, const std::string& where) {
  auto it = o.FindMember(key);
  if (it == o.MemberEnd() || it->value.IsNull()) {
    if (required) throw Failure(where + ": missing \"" + key + "\"");
    return {};
  }
  if (!it->value.IsString()) throw Failure(where + ": \"" + key + "\" is not a string");
  return std::string(it->value.GetString(), it->value.GetStringLength());
}

ImportedEvent parse_line(std::string_view line, const std::string& where) {
  rapidjson::Document doc;
  doc.Parse<rapidjson::kParseNanAndInfFlag>(line.data(), line.size());
  if (doc.HasParseError() || !doc.IsObject()) throw Failure(where + ": not a JSON object");
  ImportedEvent ev;
  ev.stream = member_string(doc, "stream", true, where);
  if (ev.stream.empty()) throw Failure(where + ": \"stream\" is empty");
  const std::string id = member_string(doc, "event_id", true, where);
  auto uuid = Uuid::parse(id);
  if (!uuid) throw Failure(where + ": \"event_id\" '" + id + "' is not a UUID");
  ev.data.event_id = *uuid;
  ev.data.type = member_string(doc, "type", true, where);
  if (ev.data.type.empty()) throw Failure(where + ": \"type\" is empty");
  if (auto it = doc.FindMember("schema_version"); it != doc.MemberEnd()) {
    if (!it->value.IsUint() || it->value.GetUint() == 0)
      throw Failure(where + ": \"schema_version\" is not a positive integer");
    ev.data.schema_version = it->value.GetUint();
  }
  const std::string encoding = member_string(doc, "encoding", false, where);
  const auto base64 = doc.FindMember("payload_base64");
  const auto payload = doc.FindMember("payload");
  if (encoding == "binary")
    ev.data.encoding = Encoding::binary;
  else if (encoding == "json")
    ev.data.encoding = Encoding::json;
  else if (encoding.empty())
    ev.data.encoding = base64 != doc.MemberEnd() ? Encoding::binary : Encoding::json;
  else
    throw Failure(where + ": \"encoding\" must be \"binary\" or \"json\", not '" + encoding + "'");
  if (base64 != doc.MemberEnd()) {
    if (!base64->value.IsString()) throw Failure(where + ": \"payload_base64\" is not a string");
    auto bytes = base64_decode({base64->value.GetString(), base64->value.GetStringLength()});
    if (!bytes) throw Failure(where + ": \"payload_base64\" is not valid base64");
    ev.data.payload = std::move(*bytes);
  } else if (payload != doc.MemberEnd()) {
    if (ev.data.encoding != Encoding::json)
      throw Failure(where + ": a binary event needs \"payload_base64\" (\"payload\" is JSON)");
    rapidjson::StringBuffer buffer;
    rapidjson::Writer<rapidjson::StringBuffer, rapidjson::UTF8<>, rapidjson::UTF8<>, rapidjson::CrtAllocator,
                      rapidjson::kWriteNanAndInfFlag>
        writer(buffer);
    payload->value.Accept(writer);
    ev.data.payload.assign(buffer.GetString(), buffer.GetSize());
  } else {
    throw Failure(where + ": missing \"payload\" or \"payload_base64\"");
  }
  ev.data.metadata.correlation_id = member_string(doc, "correlation_id", false, where);
  ev.data.metadata.causation_id = member_string(doc, "causation_id", false, where);
  if (auto it = doc.FindMember("metadata"); it != doc.MemberEnd() && !it->value.IsNull()) {
    if (!it->value.IsObject()) throw Failure(where + ": \"metadata\" is not an object");
    for (const auto& m : it->value.GetObject()) {
      if (!m.value.IsString()) throw Failure(where + ": metadata values must be strings");
      ev.data.metadata.user.emplace(std::string(m.name.GetString(), m.name.GetStringLength()),
                                    std::string(m.value.GetString(), m.value.GetStringLength()));
    }
  }
  return ev;
}

void import_events(Context& ctx, const ImportArgs& args) {
  // Read and validate everything first: a malformed file imports nothing.
  std::ifstream file;
  std::istream* in = &std::cin;
  const std::string source = args.file == "-" ? std::string("stdin") : args.file;
  if (args.file != "-") {
    file.open(args.file, std::ios::binary);
    if (!file) throw Failure("cannot read " + args.file + ": " + std::strerror(errno));
    in = &file;
  }
  std::vector<ImportedEvent> events;
  std::string line;
  for (std::size_t n = 1; std::getline(*in, line); ++n) {
    if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
    events.push_back(parse_line(line, "line " + std::to_string(n) + " of " + source));
    events.back().line = n;
  }
  if (in->bad()) throw Failure("cannot read " + source + ": " + std::strerror(errno));

  if (ctx.db.empty()) throw CLI::RequiredError("--db");
  // The target may be new: import creates it (unlike every other command).
  std::unique_ptr<SqliteEventStore> store;
  if (std::filesystem::exists(ctx.db)) {
    store = ctx.open_store(true);
  } else {
    SqliteOptions options;
    options.path = ctx.db;
    store = std::make_unique<SqliteEventStore>(std::move(options));
  }

  std::uint64_t imported = 0, skipped = 0;
  std::set<std::string> streams_touched;
  auto fail = [&](const ImportedEvent& at, const Error& e) {
    throw Failure("import stopped at line " + std::to_string(at.line) + " (stream " + at.stream + "): " + e.what() +
                  "; " + std::to_string(imported) + " events were imported before it");
  };
  for (std::size_t i = 0; i < events.size();) {
    // One append per run of consecutive events of one stream.
    std::size_t j = i;
    std::vector<EventData> group;
    while (j < events.size() && events[j].stream == events[i].stream && group.size() < batch_size)
      group.push_back(events[j++].data);
    auto r = store->append(events[i].stream, ExpectedVersion::any(), group);
    if (r) {
      (r->idempotent_replay ? skipped : imported) += group.size();
      if (!r->idempotent_replay) streams_touched.insert(events[i].stream);
    } else if (r.error().is(errc::duplicate_event)) {
      // Some of the ids are stored already (a partial earlier import): one event at a time.
      for (std::size_t k = i; k < j; ++k) {
        auto one = store->append(events[k].stream, ExpectedVersion::any(), std::span(&events[k].data, 1));
        if (!one) fail(events[k], one.error());
        (one->idempotent_replay ? skipped : imported) += 1;
        if (!one->idempotent_replay) streams_touched.insert(events[k].stream);
      }
    } else {
      fail(events[i], r.error());
    }
    i = j;
  }
  if (ctx.json)
    ctx.out << JsonObject().num("imported", imported).num("skipped", skipped).num("streams", streams_touched.size()).str("db", ctx.db).text()
            << '\n';
  else
    ctx.out << "imported " << plural(imported, "event", "events") << " into " << ctx.db
            << (imported > 0 ? " (" + plural(streams_touched.size(), "stream", "streams") + ")" : std::string())
            << "; skipped " << skipped << " already stored\n";
}

}  // namespace

void add_store_commands(CLI::App& cli, Context& ctx) {
  {
    auto args = std::make_shared<StreamsArgs>();
    auto* sub = cli.add_subcommand("streams", "List the streams with their version and last update");
    sub->add_option("--category,-c", args->categories,
                    "only streams of this category (the stream id up to the first '-'); repeatable");
    sub->add_option("--limit", args->limit, "at most N streams")->check(positive_integer());
    sub->callback([&ctx, args] { streams(ctx, *args); });
  }
  {
    auto args = std::make_shared<ReadArgs>();
    auto* sub = cli.add_subcommand("read", "Show the events of one stream with their metadata and payloads");
    sub->add_option("stream", args->stream, "the stream id")->required();
    sub->add_flag("--backward,-b", args->backward, "newest first");
    sub->add_option("--from", args->from,
                    "first version to show (default: 1, or the last version with --backward)")
        ->check(positive_integer());
    sub->add_option("--count,-n", args->count, "at most N events")->check(positive_integer());
    sub->footer(
        "Payloads stored as JSON are shown as JSON. Binary payloads are decoded with the application's registry "
        "when their type is registered there (the embedded form); otherwise they are shown as size and hex.");
    sub->callback([&ctx, args] { read(ctx, *args); });
  }
  {
    auto args = std::make_shared<TailArgs>();
    auto* sub = cli.add_subcommand("tail", "Follow the global log: print events as they are committed (Ctrl-C stops)");
    sub->add_option("--from", args->from, "first global position to print (default: the end, new events only)")
        ->check(positive_integer());
    sub->add_option("--count,-n", args->count, "exit after N events")->check(positive_integer());
    sub->add_option("--category,-c", args->categories, "only streams of this category; repeatable");
    sub->add_option("--type,-t", args->types, "only events of this type; repeatable");
    sub->callback([&ctx, args] { tail(ctx, *args); });
  }
  {
    auto* sub = cli.add_subcommand("stats", "Event, stream and per-type counts, file size, last position");
    sub->callback([&ctx] { stats(ctx); });
  }
  {
    auto args = std::make_shared<CheckArgs>();
    auto* sub = cli.add_subcommand(
        "check", "Check the database's integrity and that every stored event type decodes with this program");
    sub->add_flag("--quick", args->quick, "PRAGMA quick_check instead of the full integrity_check");
    sub->footer(
        "Checks: SQLite integrity; global positions gap-free; stream versions contiguous; recorded times in order; "
        "and, for every stored (event type, schema version): registered in this program, not newer than the "
        "registered version, and every payload decodes. Run it from the application's own binary (the embedded "
        "form) before a deploy to catch a change that would break old events. The standalone evs binary has no "
        "registry and reports the types as not checked. Exit code 1 when anything fails.");
    sub->callback([&ctx, args] { check(ctx, *args); });
  }
  {
    auto args = std::make_shared<ExportArgs>();
    auto* sub = cli.add_subcommand("export", "Write a stream or the global log as JSON lines");
    auto* stream = sub->add_option("--stream,-s", args->stream, "export this stream");
    auto* all = sub->add_flag("--all", args->all, "export the global log");
    stream->excludes(all);
    sub->add_option("--from", args->from, "first version (--stream) or global position (--all); default 1")
        ->check(positive_integer());
    sub->add_option("--count,-n", args->count, "at most N events")->check(positive_integer());
    sub->add_option("--out,-o", args->out, "write to FILE instead of stdout")->option_text("FILE");
    sub->footer(
        "One JSON object per event: the full envelope; a JSON payload as \"payload\", a binary payload base64-encoded "
        "as \"payload_base64\" (with \"encoding\":\"binary\"). `import` reads this format.");
    sub->callback([&ctx, args] { export_events(ctx, *args); });
  }
  {
    auto args = std::make_shared<ImportArgs>();
    auto* sub = cli.add_subcommand("import", "Append events from JSON lines (as written by export) to --db");
    sub->add_option("file", args->file, "the JSON-lines file, or - for stdin")->required();
    sub->footer(
        "Keeps event ids, types, schema versions, encodings and metadata, and the order of the file. Consecutive "
        "events of one stream are appended together with expected version 'any'; positions, versions and "
        "recorded times are assigned by the target store. Importing the same file again is a no-op (idempotent "
        "appends): already stored events are counted as skipped. A malformed line imports nothing. Creates --db "
        "if it does not exist.");
    sub->callback([&ctx, args] { import_events(ctx, *args); });
  }
}

}  // namespace evs::cli
