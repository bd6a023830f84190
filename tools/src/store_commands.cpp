// streams, read, tail, stats, export: looking at the event store file (check and import have their own files).
#include "commands.hpp"
#include "format.hpp"
#include "sql.hpp"
#include "store_sql.hpp"

#include "evs/eventstore/pg_event_store.hpp"

#include <atomic>
#include <cerrno>
#include <csignal>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iomanip>
#include <iostream>
#include <limits>
#include <optional>
#include <sstream>
#include <thread>

namespace evs::cli {
namespace {

// ---- streams ----------------------------------------------------------------------------------------------

struct StreamsArgs {
  std::vector<std::string> categories;
  std::optional<std::size_t> limit;
};

void streams(Context& ctx, const StreamsArgs& args) {
  auto store = ctx.open_store();
  auto sql = open_store_sql(ctx, false);
  // Page by name, so a store with millions of streams is never held in memory at once.
  std::string query = "SELECT name, category, version, updated_at FROM streams WHERE name > $1";
  if (!args.categories.empty()) {
    query += " AND category IN (";
    for (std::size_t i = 0; i < args.categories.size(); ++i) query += (i ? ", $" : "$") + std::to_string(i + 2);
    query += ")";
  }
  query += " ORDER BY name LIMIT " + std::to_string(batch_size);

  Table table({"stream", "category", "version", "last update"}, {false, false, true, false});
  const std::uint64_t limit = args.limit.value_or(std::numeric_limits<std::uint64_t>::max());
  std::uint64_t n = 0;
  for (std::string after;;) {
    StoreSql::Params params{SqlParam::text(after)};
    for (const std::string& category : args.categories) params.push_back(SqlParam::text(category));
    std::uint64_t page = 0;
    std::string last;
    sql->each(query, params, [&](const SqlRow& row) {
      ++page;
      last = std::string(row.text(0));
      if (n >= limit) return;
      ++n;
      const std::string category(row.text(1));
      const auto version = static_cast<std::uint64_t>(row.integer(2));
      const std::string updated = iso_time(row.integer(3));
      if (ctx.json)
        ctx.out << JsonObject().str("stream", last).str("category", category).num("version", version).str("updated_at", updated).text()
                << '\n';
      else
        table.row({last, category, std::to_string(version), updated});
    });
    if (page < batch_size || n >= limit) break;
    after = std::move(last);
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
      throw Failure("stream '" + args.stream + "' not found in " + ctx.where());
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

// What tells a change of a file that is not open for writing: its size and modification time.
std::pair<std::uintmax_t, std::filesystem::file_time_type> file_state(const std::string& path) {
  std::error_code ec;
  return {std::filesystem::file_size(path, ec), std::filesystem::last_write_time(path, ec)};
}

void tail(Context& ctx, const TailArgs& args) {
  // A closed SQLite store is read as immutable (see Context::open_store), and an immutable reader sees no
  // commits: tail reopens the store when a writer opens it (a -wal file appears) or the file changes.
  // PostgreSQL: the store's change token moves with every commit of any process.
  const std::string path = ctx.postgres() ? std::string() : ctx.location().target;
  bool immutable = !path.empty() && closed_database(path);
  auto file = immutable ? file_state(path) : decltype(file_state(path)){};
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
    if (immutable) {
      const auto now_file = file_state(path);
      changed = !closed_database(path) || now_file != file;
      if (changed) {
        immutable = closed_database(path);
        file = now_file;
        store = ctx.open_store();
        token = must(store->change_token());
      }
      continue;
    }
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
  auto sql = open_store_sql(ctx, false);
  const bool pg = sql->postgres();
  sql->begin_read();
  const auto scalar = [&](std::string_view query) { return sql->scalar(query); };
  const auto schema = scalar(pg ? "SELECT CAST(value AS bigint) FROM evs_meta WHERE key = 'schema_version'"
                                : "PRAGMA user_version");
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
  sql->each(std::string("SELECT t.name, count(*), ") +
                (pg ? "(SELECT string_agg(CAST(v AS text), ',' ORDER BY v) FROM (SELECT DISTINCT schema_version AS v FROM "
                         "events WHERE type = e.type) x)"
                    : "(SELECT group_concat(v, ',') FROM (SELECT DISTINCT schema_version AS v FROM events WHERE type = "
                      "e.type ORDER BY v))") +
                " FROM events e JOIN event_types t ON t.id = e.type GROUP BY t.name, e.type ORDER BY t.name",
            {}, [&](const SqlRow& row) {
              types.push_back({std::string(row.text(0)), static_cast<std::uint64_t>(row.integer(1)), std::string(row.text(2))});
            });
  struct CategoryRow {
    std::string name;
    std::uint64_t streams, events;
  };
  std::vector<CategoryRow> categories;
  sql->each("SELECT category, count(*), CAST(sum(version) AS bigint) FROM streams GROUP BY category ORDER BY category", {},
            [&](const SqlRow& row) {
              categories.push_back({std::string(row.text(0)), static_cast<std::uint64_t>(row.integer(1)),
                                    static_cast<std::uint64_t>(row.integer(2))});
            });
  // PostgreSQL: the tables of the store's schema with their indexes and TOAST data.
  const std::uint64_t size =
      pg ? static_cast<std::uint64_t>(
               scalar("SELECT CAST(coalesce(sum(pg_total_relation_size(c.oid)), 0) AS bigint) FROM pg_class c JOIN "
                      "pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = current_schema() AND c.relkind = 'r'"))
         : file_size_or_zero(ctx.location().target);
  sql->end_read();
  // PostgreSQL: the sessions whose open transactions hold every log reader back (docs/postgresql.md).
  std::vector<PgFenceHolder> holders;
#ifdef EVS_HAS_POSTGRESQL
  if (auto* pg_store = dynamic_cast<PgEventStore*>(store.get())) holders = must(pg_store->fence_holders());
#endif

  const std::string where = ctx.where();
  const std::uint64_t wal = pg ? 0 : file_size_or_zero(where + "-wal");
  if (ctx.json) {
    JsonObject o;
    o.str("backend", pg ? "postgresql" : "sqlite");
    if (pg)
      o.str("store", where).num("size", size);
    else
      o.str("file", where).num("file_size", size).num("wal_size", wal);
    o.inum("schema_version", schema);
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
    if (pg) {
      std::vector<JsonObject> held;
      for (const auto& h : holders)
        held.emplace_back()
            .inum("pid", h.pid)
            .str("application_name", h.application_name)
            .str("state", h.state)
            .inum("age_ms", h.age.count());
      o.objects("readers_held_back_by", held);
    }
    ctx.out << o.text() << '\n';
    return;
  }
  Table summary({"", ""});
  if (pg) {
    summary.row({"store", where});
    summary.row({"size", human_size(size) + " (tables and indexes)"});
  } else {
    summary.row({"file", where});
    summary.row({"size", human_size(size) + (wal > 0 ? " (+ " + human_size(wal) + " write-ahead log)" : "")});
  }
  summary.row({"schema version", std::to_string(schema)});
  summary.row({"events", std::to_string(events)});
  summary.row({"streams", std::to_string(streams_n)});
  summary.row({"snapshots", std::to_string(snapshots)});
  summary.row({"last position", std::to_string(last_position)});
  if (events > 0) {
    summary.row({"first event", first_at});
    summary.row({"last event", last_at});
  }
  if (pg) {
    std::string held = holders.empty() ? "nobody" : "";
    for (const auto& h : holders) {
      std::ostringstream one;
      one << (held.empty() ? "" : "; ") << "pid " << h.pid << " (" << h.application_name << ", " << h.state << ", open "
          << std::fixed << std::setprecision(1) << static_cast<double>(h.age.count()) / 1000.0 << " s)";
      held += one.str();
    }
    summary.row({"fence held by", held});  // the log readers wait for these sessions
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
        throw Failure("stream '" + *args.stream + "' not found in " + ctx.where());
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
    auto* sub = cli.add_subcommand("stats", "Event, stream and per-type counts, size, last position");
    sub->callback([&ctx] { stats(ctx); });
  }
  add_check_command(cli, ctx);
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
  add_import_command(cli, ctx);
  add_copy_command(cli, ctx);
}

}  // namespace evs::cli
