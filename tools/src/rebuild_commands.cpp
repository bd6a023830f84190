// `rebuild NAME` and `replay NAME --until ...`, on SQLite and PostgreSQL read models (read_model_db.hpp).
//
// rebuild builds the projection into a shadow copy beside the live database (a file "<database>.rebuild-
// <name>", or a schema "<schema>_rebuild_<name>") while the live read model keeps serving and following new
// events. When the shadow has caught up with the head it is swapped in with one transaction on the live
// database: the projection's tables are replaced by the shadow's and its checkpoints set to the shadow's. A
// running engine re-reads its checkpoint at each batch, so it continues from the swapped-in state. Until that
// transaction commits, the live read model is untouched: an interrupted rebuild (Ctrl-C, kill) changes
// nothing there, and running it again resumes from the shadow's checkpoint.
#include "commands.hpp"
#include "format.hpp"
#include "read_model_db.hpp"

#include "evs/eventstore/open_store.hpp"
#include "evs/projections/engine.hpp"

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

// Builds the projection into a fresh shadow up to the position of the live read model and compares the
// two, table by table (row count and an order-independent checksum). The live read model is read in one
// snapshot, so a live projection that keeps committing neither blocks nor skews the comparison: when the
// snapshot is further than the first build, the shadow catches up to it. Exit code 3 when they differ.
void dry_run_rebuild(Context& ctx, const ProjectionEntry& entry, const std::string& name) {
  auto db = open_read_model_db(entry.options.database.string());
  const std::string copy = db->copy_location("dryrun", name);
  remove_read_model_db(copy);
  auto store = ctx.open_store(false, SchemaCheck::refuse);
  InterruptGuard guard;

  // Builds the copy up to `position` (a fresh engine each time: until_position is fixed at start; the
  // copy's checkpoint carries the progress over).
  const auto build_to = [&](std::uint64_t position) {
    if (!build_until(ctx, *store, entry, name, copy, position, "building (dry run)"))
      throw Failure("interrupted; nothing was compared or changed");
  };
  TableComparison tables;
  std::uint64_t position = 0;
  try {
    position = db->checkpoint(name, true);
    build_to(position);
    position = db->compare(copy, name, position, build_to, tables);
  } catch (...) {
    remove_read_model_db(copy);
    throw;
  }
  remove_read_model_db(copy);

  bool differs = false;
  for (const auto& [table, pair] : tables) {
    const auto& [a, b] = pair;
    const bool same = a.exists && a.rows == b.rows && a.checksum == b.checksum;
    differs = differs || !same;
    if (ctx.json) {
      ctx.out << JsonObject()
                     .str("table", table)
                     .num("live_rows", a.rows)
                     .num("rebuilt_rows", b.rows)
                     .str("live_checksum", a.checksum)
                     .str("rebuilt_checksum", b.checksum)
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
  auto db = open_read_model_db(entry.options.database.string());
  const std::string copy = db->copy_location("rebuild", name);
  if (from_scratch) remove_read_model_db(copy);
  auto store = ctx.open_store(false, SchemaCheck::refuse);
  InterruptGuard guard;

  ProjectionOptions options = entry.options;
  options.database = copy;
  ProjectionEngine engine(*store);
  engine.add(*entry.projection, options);
  engine.start();
  const std::uint64_t head = store->last_position().value();
  if (!run_with_progress(ctx, engine, name, head, "rebuilding")) {
    engine.stop();
    throw Failure("interrupted; the live read model is untouched; run the rebuild again to resume");
  }

  // Swap: the live projection is held at its next batch, the copy catches up with what the live one had
  // committed, then the tables and checkpoints are replaced in one transaction.
  db->swap_in(copy, name, [&](std::uint64_t live_at) {
    if (!engine.wait_for(name, live_at, std::chrono::seconds(60)))
      throw Failure("the shadow could not catch up with the live projection at position " + std::to_string(live_at));
    engine.stop();
  });
  const auto position = db->checkpoint(name, false);
  remove_read_model_db(copy);
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
  auto db = open_read_model_db(entry.options.database.string());
  if (target.empty()) target = db->copy_location("replay", name + "-" + std::to_string(position));
  if (db->is_live(target)) throw Failure("the replay target must not be the live database " + target);
  // A target on the other backend (a SQLite file for a PostgreSQL read model, or the reverse) is fine.
  remove_read_model_db(target);
  InterruptGuard guard;
  if (!build_until(ctx, *store, entry, name, target, position, "replaying")) {
    remove_read_model_db(target);
    throw Failure("interrupted; nothing was kept");
  }
  if (ctx.json)
    ctx.out << JsonObject().str("replayed", name).num("until", position).str("target", target).text() << "\n";
  else
    ctx.out << name << " as of position " << position << " is in " << target << "\n";
}

}  // namespace

std::unique_ptr<ReadModelDb> open_read_model_db(const std::string& location) {
  const StoreLocation parsed = parse_location("the projection database", location);
  if (parsed.backend == StoreBackend::sqlite) return open_sqlite_read_model_db(parsed.target);
#ifdef EVS_HAS_POSTGRESQL
  return open_pg_read_model_db(parsed.target, parsed.schema);
#else
  throw Failure("this tool was built without the PostgreSQL backend (configure evs with EVS_POSTGRESQL=ON)");
#endif
}

void remove_read_model_db(const std::string& location) {
  const StoreLocation parsed = parse_location("the projection database", location);
  if (parsed.backend == StoreBackend::sqlite) {
    for (const char* suffix : {"", "-wal", "-shm"}) std::filesystem::remove(parsed.target + suffix);
    return;
  }
#ifdef EVS_HAS_POSTGRESQL
  remove_pg_schema(parsed.target, parsed.schema);
#endif
}

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
      "replay", "Build a SQL projection as of a point in history (time travel) into a separate database");
  replay_cmd->add_option("name", replay_args->name, "projection name")->required()->check(projection_name);
  replay_cmd
      ->add_option("--until", replay_args->until,
                   "a global position, or an RFC 3339 time: 2026-11-22T15:00:00Z, with a fraction "
                   "(15:00:00.250Z) or a zone (16:00:00+01:00); without a zone, UTC")
      ->option_text("POSITION|TIME")
      ->required()
      ->check(until_value());
  replay_cmd->add_option("--target", replay_args->target,
                         "the database to build into: a SQLite file or a postgresql:// location (default: beside the live one)");
  replay_cmd->callback([&ctx, a = replay_args] { replay(ctx, a->name, a->until, a->target); });
}

}  // namespace evs::cli
