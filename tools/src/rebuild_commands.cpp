// `rebuild NAME` and `replay NAME --until ...`.
//
// rebuild builds the projection into a shadow database file next to the live one
// ("<database>.rebuild-<name>") while the live read model keeps serving and following new events. When the
// shadow has caught up with the head it is swapped in with one transaction on the live database: the
// projection's tables are replaced by the shadow's and its checkpoints set to the shadow's. A running
// engine re-reads its checkpoint at each batch, so it continues from the swapped-in state. Until that
// transaction commits, the live read model is untouched: an interrupted rebuild (Ctrl-C, kill) changes
// nothing there, and running it again resumes from the shadow's checkpoint.
#include "commands.hpp"
#include "format.hpp"

#include "evs/projections/engine.hpp"

#include <sqlite3.h>
#include <unistd.h>

#include <atomic>
#include <charconv>
#include <csignal>
#include <cstdio>
#include <filesystem>
#include <iostream>
#include <iomanip>
#include <map>
#include <sstream>
#include <thread>

namespace evs::cli {
namespace {

std::atomic<bool> interrupted{false};

// Installs a SIGINT/SIGTERM handler for the duration of a long command.
class InterruptGuard {
 public:
  InterruptGuard() {
    interrupted = false;
    old_int_ = std::signal(SIGINT, [](int) { interrupted = true; });
    old_term_ = std::signal(SIGTERM, [](int) { interrupted = true; });
  }
  ~InterruptGuard() {
    std::signal(SIGINT, old_int_);
    std::signal(SIGTERM, old_term_);
  }

 private:
  void (*old_int_)(int);
  void (*old_term_)(int);
};

// A raw connection for the swap and the comparison (the engine's own connections are internal).
class Db {
 public:
  explicit Db(const std::string& path) {
    if (sqlite3_open_v2(path.c_str(), &db_, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, nullptr) != SQLITE_OK) {
      const std::string msg = db_ ? sqlite3_errmsg(db_) : "out of memory";
      sqlite3_close(db_);
      throw Failure("cannot open " + path + ": " + msg);
    }
    sqlite3_busy_timeout(db_, 10000);
  }
  ~Db() { sqlite3_close(db_); }
  Db(const Db&) = delete;
  Db& operator=(const Db&) = delete;

  void exec(const std::string& sql) {
    char* msg = nullptr;
    if (sqlite3_exec(db_, sql.c_str(), nullptr, nullptr, &msg) != SQLITE_OK) {
      std::string text = msg ? msg : "unknown error";
      sqlite3_free(msg);
      throw Failure(text + " (in: " + sql.substr(0, 120) + ")");
    }
  }
  // Calls f(stmt) for each row of `sql` with text parameters bound in order.
  sqlite3* handle() const { return db_; }

  template <class F>
  void each(const std::string& sql, const std::vector<std::string>& params, F&& f) {
    sqlite3_stmt* st = nullptr;
    if (sqlite3_prepare_v2(db_, sql.c_str(), -1, &st, nullptr) != SQLITE_OK)
      throw Failure(std::string(sqlite3_errmsg(db_)) + " (in: " + sql + ")");
    for (std::size_t i = 0; i < params.size(); ++i)
      sqlite3_bind_text(st, static_cast<int>(i + 1), params[i].c_str(), -1, SQLITE_TRANSIENT);
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) f(st);
    sqlite3_finalize(st);
    if (rc != SQLITE_DONE) throw Failure(std::string(sqlite3_errmsg(db_)) + " (in: " + sql + ")");
  }

 private:
  sqlite3* db_ = nullptr;
};

std::string quote_identifier(const std::string& name) {
  std::string q = "\"";
  for (char c : name) q += c == '"' ? std::string("\"\"") : std::string(1, c);
  return q + "\"";
}

// The projection's own tables in a shadow database: every table but evs_* and sqlite_*, with its SQL.
std::vector<std::pair<std::string, std::string>> projection_tables(Db& db, const std::string& schema) {
  std::vector<std::pair<std::string, std::string>> out;
  db.each("SELECT name, sql FROM " + schema +
              ".sqlite_master WHERE type = 'table' AND name NOT LIKE 'evs\\_%' ESCAPE '\\' "
              "AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\' ORDER BY name",
          {}, [&](sqlite3_stmt* st) {
            out.emplace_back(reinterpret_cast<const char*>(sqlite3_column_text(st, 0)),
                             reinterpret_cast<const char*>(sqlite3_column_text(st, 1)));
          });
  return out;
}

// Row count and an order-independent checksum (sum of per-row FNV-1a hashes) of a table.
struct TableSummary {
  bool exists = false;
  std::uint64_t rows = 0;
  std::uint64_t checksum = 0;
};

TableSummary summarize(Db& db, const std::string& schema, const std::string& table) {
  TableSummary s;
  bool found = false;
  db.each("SELECT 1 FROM " + schema + ".sqlite_master WHERE type = 'table' AND name = ?1", {table},
          [&](sqlite3_stmt*) { found = true; });
  if (!found) return s;
  s.exists = true;
  db.each("SELECT * FROM " + schema + "." + quote_identifier(table), {}, [&](sqlite3_stmt* st) {
    std::uint64_t h = 14695981039346656037ULL;
    const auto mix = [&](const void* p, std::size_t n) {
      for (std::size_t i = 0; i < n; ++i) h = (h ^ static_cast<const unsigned char*>(p)[i]) * 1099511628211ULL;
    };
    for (int c = 0; c < sqlite3_column_count(st); ++c) {
      const int type = sqlite3_column_type(st, c);
      mix(&type, sizeof type);
      if (type == SQLITE_INTEGER) {
        const auto v = sqlite3_column_int64(st, c);
        mix(&v, sizeof v);
      } else if (type == SQLITE_FLOAT) {
        const auto v = sqlite3_column_double(st, c);
        mix(&v, sizeof v);
      } else if (type != SQLITE_NULL) {
        const void* p = type == SQLITE_BLOB ? sqlite3_column_blob(st, c) : sqlite3_column_text(st, c);
        mix(p, static_cast<std::size_t>(sqlite3_column_bytes(st, c)));
      }
    }
    ++s.rows;
    s.checksum += h;
  });
  return s;
}

std::string format_duration(double seconds) {
  if (!(seconds >= 0) || seconds > 1e7) return "--:--";
  const auto s = static_cast<long>(seconds);
  char buf[32];
  std::snprintf(buf, sizeof buf, "%02ld:%02ld", s / 60, s % 60);
  return buf;
}

// Runs the shadow engine until it has processed `target` (or is interrupted), showing progress on stderr
// (never stdout, which carries only the result, so --json output stays pure JSON): a redrawn bar on a
// terminal, a line every few seconds otherwise. Returns false when interrupted.
bool run_with_progress(Context& ctx, ProjectionEngine& engine, const std::string& name, std::uint64_t target,
                       const std::string& what) {
  std::ostream& progress = ctx.err;
  const bool tty = &ctx.err == &std::cerr && isatty(STDERR_FILENO);
  const auto started = std::chrono::steady_clock::now();
  const std::uint64_t start_position = engine.health(name).value().position;
  auto last_line = started;
  for (;;) {
    const auto h = engine.health(name).value();
    const std::uint64_t goal = std::max(target, h.position);  // new events may arrive while we work
    const double fraction = goal == 0 ? 1.0 : static_cast<double>(h.position) / static_cast<double>(goal);
    const double elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
    const double rate = elapsed > 0 ? static_cast<double>(h.position - std::min(h.position, start_position)) / elapsed : 0;
    const double eta = rate > 0 ? static_cast<double>(goal - h.position) / rate : -1;
    std::ostringstream line;
    line << what << " " << name << ": " << h.position << "/" << goal << " events (" << std::fixed
         << std::setprecision(0) << fraction * 100 << "%), " << rate << " events/s, ETA " << format_duration(eta);
    if (h.state == ProjectionState::failed) {
      if (tty) progress << "\n";
      throw Failure("projection " + name + " failed: " + h.last_error);
    }
    const bool done = h.position >= target;
    if (tty) {
      const int width = 30;
      const int filled = static_cast<int>(fraction * width);
      progress << "\r[" << std::string(static_cast<std::size_t>(filled), '#')
              << std::string(static_cast<std::size_t>(width - filled), '.') << "] " << line.str() << "   "
              << std::flush;
      if (done) progress << "\n";
    } else if (done || std::chrono::steady_clock::now() - last_line > std::chrono::seconds(2)) {
      progress << line.str() << "\n" << std::flush;
      last_line = std::chrono::steady_clock::now();
    }
    if (done) return true;
    if (interrupted) {
      if (tty) progress << "\n";
      return false;
    }
    engine.wait_for(name, target, std::chrono::milliseconds(tty ? 200 : 500));
  }
}

// Runs the projection into `database` up to `position`, showing progress; false when interrupted. The
// engine is stopped either way.
bool build_until(Context& ctx, EventStore& store, const ProjectionEntry& entry, const std::string& name,
                 const std::string& database, std::uint64_t position, const std::string& what) {
  ProjectionOptions options = entry.options;
  options.database = database;
  options.until_position = position;
  ProjectionEngine engine(store);
  engine.add(*entry.projection, options);
  engine.start();
  const bool done = run_with_progress(ctx, engine, name, position, what);
  engine.stop();
  return done;
}

// The projection's checkpoint in `db`: the least (or, with `furthest`, the greatest) of its partitions'; 0
// when it has none.
std::uint64_t live_checkpoint(Db& db, const std::string& schema, const std::string& name, bool furthest = false) {
  std::uint64_t position = 0;
  bool any = false;
  db.each(std::string("SELECT ") + (furthest ? "max" : "min") + "(position), count(*) FROM " + schema +
              ".evs_checkpoints WHERE projection = ?1",
          {name},
          [&](sqlite3_stmt* st) {
            any = sqlite3_column_int64(st, 1) > 0;
            position = static_cast<std::uint64_t>(sqlite3_column_int64(st, 0));
          });
  return any ? position : 0;
}

bool has_table(Db& db, const std::string& schema, const std::string& table) {
  bool found = false;
  db.each("SELECT 1 FROM " + schema + ".sqlite_master WHERE type = 'table' AND name = ?1", {table},
          [&](sqlite3_stmt*) { found = true; });
  return found;
}

void remove_database_files(const std::string& path) {
  for (const char* suffix : {"", "-wal", "-shm"}) std::filesystem::remove(path + suffix);
}

const ProjectionEntry& sql_projection(Context& ctx, const std::string& name, const char* command) {
  const ProjectionEntry& entry = ctx.projection(name);
  if (entry.projection->kind() == ProjectionKind::effect)
    throw Failure(std::string(command) + " " + name +
                  ": it is a side-effect handler; replaying it would repeat its effects");
  if (entry.projection->kind() == ProjectionKind::memory)
    throw Failure(std::string(command) + " " + name +
                  ": it is an in-memory view, rebuilt from the log at every start; nothing to " + command);
  return entry;
}

// Replaces the projection's tables in `live` by those of `shadow`, and its checkpoints, inside the
// transaction open on `live`. Rows are copied through bound values, so the shadow need not be attached.
void swap_tables(Db& live, Db& shadow, const std::string& name) {
  const auto copy = [&](const std::string& table, const std::string& where, const std::vector<std::string>& params) {
    sqlite3_stmt* insert = nullptr;
    int columns = 0;
    shadow.each("SELECT * FROM " + quote_identifier(table) + where, params, [&](sqlite3_stmt* row) {
      if (!insert) {
        columns = sqlite3_column_count(row);
        std::string sql = "INSERT INTO main." + quote_identifier(table) + " VALUES (";
        for (int c = 0; c < columns; ++c) sql += c ? ",?" : "?";
        if (sqlite3_prepare_v2(live.handle(), (sql + ")").c_str(), -1, &insert, nullptr) != SQLITE_OK)
          throw Failure(std::string(sqlite3_errmsg(live.handle())) + " (in: " + sql + ")");
      }
      for (int c = 0; c < columns; ++c) sqlite3_bind_value(insert, c + 1, sqlite3_column_value(row, c));
      const int rc = sqlite3_step(insert);
      sqlite3_reset(insert);
      if (rc != SQLITE_DONE) {
        sqlite3_finalize(insert);
        throw Failure(std::string(sqlite3_errmsg(live.handle())) + " (copying " + table + ")");
      }
    });
    sqlite3_finalize(insert);
  };
  for (const auto& [table, sql] : projection_tables(shadow, "main")) {
    live.exec("DROP TABLE IF EXISTS main." + quote_identifier(table));
    live.exec(sql);
    copy(table, "", {});
  }
  std::vector<std::string> indexes;
  shadow.each("SELECT sql FROM sqlite_master WHERE type = 'index' AND sql IS NOT NULL AND tbl_name NOT LIKE "
              "'evs\\_%' ESCAPE '\\'",
              {}, [&](sqlite3_stmt* st) { indexes.emplace_back(reinterpret_cast<const char*>(sqlite3_column_text(st, 0))); });
  for (const auto& sql : indexes) live.exec(sql);
  live.exec(
      "CREATE TABLE IF NOT EXISTS main.evs_checkpoints (projection TEXT NOT NULL, partition INTEGER NOT NULL, "
      "partitions INTEGER NOT NULL, position INTEGER NOT NULL, updated_at INTEGER NOT NULL, "
      "PRIMARY KEY (projection, partition)) WITHOUT ROWID");
  live.each("DELETE FROM main.evs_checkpoints WHERE projection = ?1", {name}, [](sqlite3_stmt*) {});
  copy("evs_checkpoints", " WHERE projection = ?1", {name});
}

// Builds the projection into a fresh shadow up to the position of the live read model and compares the
// two, table by table (row count and an order-independent checksum). The live read model is read in one
// snapshot, so a live projection that keeps committing neither blocks nor skews the comparison: when the
// snapshot is further than the first build, the shadow catches up to it. Exit code 3 when they differ.
void dry_run_rebuild(Context& ctx, const ProjectionEntry& entry, const std::string& name) {
  const std::string live = entry.options.database.string();
  const std::string shadow = live + ".dryrun-" + name;
  remove_database_files(shadow);
  auto store = ctx.open_store(false, SchemaCheck::refuse);
  InterruptGuard guard;
  const bool live_exists = std::filesystem::exists(live);

  // Builds the shadow up to `position` (a fresh engine each time: until_position is fixed at start; the
  // shadow's checkpoint carries the progress over).
  const auto build_to = [&](std::uint64_t position) {
    if (!build_until(ctx, *store, entry, name, shadow, position, "building (dry run)")) {
      remove_database_files(shadow);
      throw Failure("interrupted; nothing was compared or changed");
    }
  };
  std::uint64_t position = 0;
  if (live_exists) {
    Db first(live);
    if (has_table(first, "main", "evs_checkpoints")) position = live_checkpoint(first, "main", name, true);
  }
  build_to(position);

  std::map<std::string, std::pair<TableSummary, TableSummary>> tables;
  if (live_exists) {
    Db db(live);
    db.exec("ATTACH DATABASE " + quote_identifier(shadow) + " AS shadow");
    db.exec("BEGIN");  // one read snapshot of the live read model for the position and every table
    const std::uint64_t at =
        has_table(db, "main", "evs_checkpoints") ? live_checkpoint(db, "main", name, true) : 0;
    if (at < position) {
      db.exec("ROLLBACK");
      remove_database_files(shadow);
      throw Failure("the live read model went back from position " + std::to_string(position) + " to " +
                    std::to_string(at) + " during the dry run (a rebuild swapped it in?); run the dry run again");
    }
    if (at > position) build_to(position = at);
    for (const auto& [table, sql] : projection_tables(db, "shadow"))
      tables[table] = {summarize(db, "main", table), summarize(db, "shadow", table)};
    db.exec("ROLLBACK");
    db.exec("DETACH DATABASE shadow");
  } else {
    Db db(shadow);
    for (const auto& [table, sql] : projection_tables(db, "main")) tables[table] = {{}, summarize(db, "main", table)};
  }
  remove_database_files(shadow);

  bool differs = false;
  for (const auto& [table, pair] : tables) {
    const auto& [a, b] = pair;
    const bool same = a.exists && a.rows == b.rows && a.checksum == b.checksum;
    differs = differs || !same;
    if (ctx.json) {
      std::ostringstream live_sum, rebuilt_sum;
      live_sum << std::hex << a.checksum;
      rebuilt_sum << std::hex << b.checksum;
      ctx.out << JsonObject()
                     .str("table", table)
                     .num("live_rows", a.rows)
                     .num("rebuilt_rows", b.rows)
                     .str("live_checksum", live_sum.str())
                     .str("rebuilt_checksum", rebuilt_sum.str())
                     .boolean("same", same)
                     .text()
              << "\n";
    } else {
      ctx.out << std::left << std::setw(24) << table << " live " << std::setw(8)
              << (a.exists ? std::to_string(a.rows) : "-") << " rebuilt " << std::setw(8) << b.rows
              << (same ? " same" : " DIFFERENT") << "\n";
    }
  }
  if (ctx.json)
    ctx.out << JsonObject().str("dry_run", name).num("position", position).boolean("same", !differs).text() << "\n";
  else
    ctx.out << "dry run at position " << position << ": the rebuilt read model "
            << (differs ? "differs from" : "equals") << " the live one; nothing was swapped\n";
  if (differs) ctx.exit_code = exit_differs;
}

void rebuild(Context& ctx, const std::string& name, bool dry_run, bool from_scratch) {
  const ProjectionEntry& entry = sql_projection(ctx, name, "rebuild");
  if (dry_run) return dry_run_rebuild(ctx, entry, name);
  const std::string live = entry.options.database.string();
  const std::string shadow = live + ".rebuild-" + name;
  if (from_scratch) remove_database_files(shadow);
  auto store = ctx.open_store(false, SchemaCheck::refuse);
  InterruptGuard guard;

  ProjectionOptions options = entry.options;
  options.database = shadow;
  ProjectionEngine engine(*store);
  engine.add(*entry.projection, options);
  engine.start();
  const std::uint64_t head = store->last_position().value();
  if (!run_with_progress(ctx, engine, name, head, "rebuilding")) {
    engine.stop();
    throw Failure("interrupted; the live read model is untouched; run the rebuild again to resume");
  }

  // Swap. Take the live database's write lock first, so the live projection cannot commit; let the shadow
  // catch up with what the live one had committed; then replace the tables and commit. Readers of the live
  // read model keep reading throughout (WAL); the live projection's commits wait for the lock.
  Db db(live);
  db.exec("BEGIN IMMEDIATE");
  try {
    const std::uint64_t live_at = has_table(db, "main", "evs_checkpoints") ? live_checkpoint(db, "main", name) : 0;
    if (!engine.wait_for(name, live_at, std::chrono::seconds(60)))
      throw Failure("the shadow could not catch up with the live projection at position " + std::to_string(live_at));
    engine.stop();
    Db from(shadow);
    swap_tables(db, from, name);
    db.exec("COMMIT");
  } catch (...) {
    try {
      db.exec("ROLLBACK");
    } catch (...) {
    }
    throw;
  }
  const auto position = live_checkpoint(db, "main", name);
  remove_database_files(shadow);
  if (ctx.json)
    ctx.out << JsonObject().str("rebuilt", name).num("position", position).text() << "\n";
  else
    ctx.out << "swapped in the rebuilt " << name << " at position " << position << "\n";
}

// --until: a global position (digits only) or an RFC 3339 time (see parse_time).
struct Until {
  std::optional<std::uint64_t> position;
  Timestamp time{};
};

std::optional<Until> parse_until(const std::string& text) {
  if (!text.empty() && text.find_first_not_of("0123456789") == std::string::npos) {
    std::uint64_t position = 0;
    const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), position);
    if (ec != std::errc() || end != text.data() + text.size()) return std::nullopt;  // too large
    return Until{position};
  }
  if (auto time = parse_time(text)) return Until{std::nullopt, *time};
  return std::nullopt;
}

CLI::Validator until_value() {
  return CLI::Validator(
      [](std::string& s) -> std::string {
        if (parse_until(s)) return {};
        return "expects a global position or an RFC 3339 time like 2026-11-22T15:00:00Z, "
               "2026-11-22T15:00:00.250Z or 2026-11-22T16:00:00+01:00, got '" + s + "'";
      },
      "");
}

// The position --until names: the position itself, or the last event recorded at or before the time.
std::uint64_t resolve_until(EventStore& store, const std::string& until) {
  const auto parsed = parse_until(until);
  if (!parsed) throw CLI::ValidationError("--until", "expects a position or an RFC 3339 time, got '" + until + "'");
  if (parsed->position) return *parsed->position;
  return store.position_at(parsed->time).value();
}

void replay(Context& ctx, const std::string& name, const std::string& until, std::string target) {
  const ProjectionEntry& entry = sql_projection(ctx, name, "replay");
  auto store = ctx.open_store(false, SchemaCheck::refuse);
  const std::uint64_t position = resolve_until(*store, until);
  const std::uint64_t head = store->last_position().value();
  if (position > head)
    throw Failure("position " + std::to_string(position) + " is beyond the end of the log (" + std::to_string(head) + ")");
  if (target.empty()) target = entry.options.database.string() + ".replay-" + name + "-" + std::to_string(position);
  if (std::filesystem::absolute(target) == std::filesystem::absolute(entry.options.database))
    throw Failure("the replay target must not be the live database " + target);
  remove_database_files(target);
  InterruptGuard guard;
  if (!build_until(ctx, *store, entry, name, target, position, "replaying")) {
    remove_database_files(target);
    throw Failure("interrupted; nothing was kept");
  }
  if (ctx.json)
    ctx.out << JsonObject().str("replayed", name).num("until", position).str("target", target).text() << "\n";
  else
    ctx.out << name << " as of position " << position << " is in " << target << "\n";
}

}  // namespace

void add_rebuild_commands(CLI::App& cli, Context& ctx) {
  if (ctx.app.projections.empty()) return;  // the standalone tool knows no projections
  // A name the application does not define is bad usage, like an unknown command.
  const auto projection_name = CLI::Validator(
      [&ctx](std::string& name) -> std::string {
        try {
          (void)ctx.projection(name);
          return {};
        } catch (const Failure& e) {
          return e.what();
        }
      },
      "");
  struct RebuildArgs {
    std::string name;
    bool dry_run = false;
    bool from_scratch = false;
  };
  auto rebuild_args = std::make_shared<RebuildArgs>();  // kept alive by the callback
  auto* rebuild_cmd = cli.add_subcommand(
      "rebuild",
      "Rebuild a SQL projection from history without downtime: build a shadow copy, catch up, swap atomically");
  rebuild_cmd->add_option("name", rebuild_args->name, "projection name")->required()->check(projection_name);
  rebuild_cmd->add_flag("--dry-run", rebuild_args->dry_run,
                        "build a shadow up to the live copy's position and report row counts and checksums per "
                        "table against it, without swapping; exit code 3 when they differ");
  rebuild_cmd->add_flag("--from-scratch", rebuild_args->from_scratch,
                        "discard a shadow left by an interrupted rebuild instead of resuming it");
  rebuild_cmd->callback([&ctx, a = rebuild_args] { rebuild(ctx, a->name, a->dry_run, a->from_scratch); });

  struct ReplayArgs {
    std::string name;
    std::string until;
    std::string target;
  };
  auto replay_args = std::make_shared<ReplayArgs>();
  auto* replay_cmd = cli.add_subcommand(
      "replay", "Build a SQL projection as of a point in history (time travel) into a separate database file");
  replay_cmd->add_option("name", replay_args->name, "projection name")->required()->check(projection_name);
  replay_cmd
      ->add_option("--until", replay_args->until,
                   "a global position, or an RFC 3339 time: 2026-11-22T15:00:00Z, with a fraction "
                   "(15:00:00.250Z) or a zone (16:00:00+01:00); without a zone, UTC")
      ->option_text("POSITION|TIME")
      ->required()
      ->check(until_value());
  replay_cmd->add_option("--target", replay_args->target,
                         "the database file to build into (default: next to the live one)");
  replay_cmd->callback([&ctx, a = replay_args] { replay(ctx, a->name, a->until, a->target); });
}

}  // namespace evs::cli
