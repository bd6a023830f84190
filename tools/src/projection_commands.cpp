// projections, dead-letters: the projection tables (evs_checkpoints, evs_dead_letters) of a projection database.
#include "claims.hpp"
#include "stored_projections.hpp"
#include "commands.hpp"
#include "format.hpp"
#include "sql.hpp"
#include "store_sql.hpp"

#include "evs/projections/lag.hpp"

#include <algorithm>
#include <filesystem>
#include <map>
#include <optional>
#include <set>

namespace evs::cli {
namespace {

std::string plural(std::uint64_t n, std::string_view one, std::string_view many) {
  return std::to_string(n) + " " + std::string(n == 1 ? one : many);
}

// The one database dead-letter commands work on: --projections-db; else the database the application's
// projections share, if they all use one; else --db.
std::string dead_letter_database(const Context& ctx, const std::string& explicit_db) {
  if (!explicit_db.empty()) return explicit_db;
  std::set<std::string> keys;
  std::string only;
  for (const ProjectionEntry& e : ctx.app.projections) {
    if (e.options.database.empty()) continue;
    if (keys.insert(same_file_key(e.options.database.string())).second) only = e.options.database.string();
  }
  if (keys.size() == 1) return only;
  if (ctx.db.empty()) throw CLI::RequiredError("--db or --projections-db");
  if (ctx.postgres())
    throw Failure("the dead letters live in the projection database (a SQLite file) each projection is configured "
                  "with, not in the PostgreSQL store " + ctx.where() + ": pass it with --projections-db");
  return ctx.location().target;
}

// Opens the dead-letter database `path` and checks that it holds the projection tables. A missing file, a
// file that is not SQLite, an event store no projection has run against (the message says where projection
// data lives) and any other file are a Failure.
sqlite::Connection open_dead_letters(const Context& ctx, const std::string& path, sqlite::Access access) {
  auto c = open_sql(path, access);
  if (has_table(c, "evs_dead_letters")) return c;
  std::string configured;
  for (const ProjectionEntry& e : ctx.app.projections)
    if (!e.options.database.empty() && configured.find(e.options.database.string()) == std::string::npos)
      configured += (configured.empty() ? "" : ", ") + e.options.database.string();
  const std::string where =
      "projection data (checkpoints, dead letters, inbox) lives in the database each projection is configured "
      "with (ProjectionOptions::database)" +
      (configured.empty() ? std::string() : ", here " + configured) + "; pass it with --projections-db";
  if (has_table(c, "evs_meta"))
    throw Failure(path + " is an evs event store without projection tables (no projection has run against it); " +
                  where);
  throw Failure(path + " is not a projection database (it has no evs_dead_letters table); " + where);
}

// ---- projections ------------------------------------------------------------------------------------------

struct ProjectionsArgs {
  std::string projections_db;
};

void projections(Context& ctx, const ProjectionsArgs& args) {
  auto store = ctx.open_store();
  const std::uint64_t head = must(store->last_position());

  const std::map<std::string, StoredProjection> stored =
      read_stored_projections(ctx, projection_databases(ctx, args.projections_db), args.projections_db);

  struct Row {
    std::string name;
    const ProjectionEntry* entry = nullptr;
    StoredProjection s;
  };
  std::map<std::string, Row> rows;
  for (const auto& [name, s] : stored) rows[name] = Row{name, nullptr, s};
  for (const ProjectionEntry& e : ctx.app.projections) {
    if (e.projection == nullptr) continue;
    Row& r = rows[std::string(e.projection->name())];
    r.name = e.projection->name();
    r.entry = &e;
  }

  const bool embedded = !ctx.app.projections.empty();
  const bool claimed = std::any_of(rows.begin(), rows.end(), [](const auto& r) { return !r.second.s.claims.empty(); });
  std::vector<std::string> headers = {"projection"};
  if (embedded) headers.push_back("kind");
  for (const char* h : {"partitions", "position", "lag", "behind", "state", "last checkpoint", "dead letters"})
    headers.push_back(h);
  if (claimed) headers.push_back("claims (node: partitions)");
  std::vector<bool> right(headers.size(), false);
  for (std::size_t i = 0; i < headers.size(); ++i)
    right[i] = headers[i] == "partitions" || headers[i] == "position" || headers[i] == "lag";
  Table table(headers, right);

  for (const auto& [name, r] : rows) {
    const bool memory = r.entry != nullptr && r.entry->projection->kind() == ProjectionKind::memory;
    std::string state;
    std::uint64_t lag = 0;
    std::optional<double> behind;
    if (memory) {
      state = "in memory";
    } else if (!r.s.checkpointed) {
      state = "never run";
    } else {
      // The engine's own definition (ProjectionEngine::health): lag counts only when an unprocessed event of a
      // handled type exists. Without the projection's types (standalone), every later event counts.
      ReadAllFilter filter;
      if (r.entry != nullptr) filter.event_types = r.entry->projection->event_types();
      const ProjectionLag l = must(projection_lag(*store, r.s.position, filter));
      lag = l.lag_events;
      if (lag > 0) behind = l.lag_seconds;
      state = lag > 0 ? "behind" : "idle";
    }
    const std::string dead =
        std::to_string(r.s.parked) + (r.s.retry > 0 ? " (+" + std::to_string(r.s.retry) + " queued for retry)" : "");
    if (ctx.json) {
      JsonObject o;
      o.str("projection", name);
      if (r.entry != nullptr) o.str("kind", kind_name(r.entry->projection->kind()));
      o.str_or_null("database", r.s.database);
      if (r.s.checkpointed)
        o.num("partitions", r.s.partitions).num("position", r.s.position);
      else
        o.null("partitions").null("position");
      o.num("head", head).num("lag_events", lag);
      if (behind)
        o.real("lag_seconds", *behind);
      else
        o.real("lag_seconds", 0);
      o.str("state", state);
      if (r.s.checkpointed)
        o.str("last_checkpoint_at", iso_time(r.s.updated_at));
      else
        o.null("last_checkpoint_at");
      o.num("dead_letters", r.s.parked).num("retry_queued", r.s.retry);
      std::vector<JsonObject> claims;
      for (const StoredClaim& c : r.s.claims) {
        JsonObject claim;
        claim.num("partition", c.partition).str_or_null("owner", c.held() ? c.owner : "").num("epoch", c.epoch);
        claim.str("lease_until", iso_time(c.lease_until)).boolean("expired", c.lease_left < 0);
        claims.push_back(std::move(claim));
      }
      o.objects("claims", claims);
      ctx.out << o.text() << '\n';
    } else {
      std::vector<std::string> cells = {name};
      if (embedded) cells.push_back(r.entry != nullptr ? kind_name(r.entry->projection->kind()) : "-");
      if (r.s.checkpointed) {
        cells.push_back(std::to_string(r.s.partitions));
        cells.push_back(std::to_string(r.s.position));
        cells.push_back(std::to_string(lag));
        cells.push_back(behind ? human_duration(*behind) : "-");
      } else {
        cells.insert(cells.end(), {"-", "-", "-", "-"});
      }
      cells.push_back(state);
      cells.push_back(r.s.checkpointed ? iso_time(r.s.updated_at) : "-");
      cells.push_back(dead);
      if (claimed) cells.push_back(claims_summary(r.s.claims, r.s.partitions));
      table.row(std::move(cells));
    }
  }
  if (!ctx.json) {
    if (!table.empty()) table.print(ctx.out);
    if (rows.empty()) {
      std::string where;
      for (const auto& p : projection_databases(ctx, args.projections_db)) where += (where.empty() ? "" : ", ") + p;
      if (where.empty())
        ctx.out << "no projection checkpoints: the store " << ctx.where()
                << " holds none; pass the projection database with --projections-db\n";
      else
        ctx.out << "no projection checkpoints in " << where << '\n';
    }
    ctx.out << "store head: position " << head << '\n';
  }
}

// ---- dead-letters -----------------------------------------------------------------------------------------

struct DeadLetter {
  std::int64_t id = 0;
  std::string projection;
  std::uint64_t position = 0;
  Uuid event_id;
  std::string stream, type, error, status;
  std::int64_t attempts = 0;
  std::int64_t parked_at = 0;
};

constexpr const char* dead_letter_columns =
    "id, projection, position, event_id, stream, type, error, attempts, parked_at, status";

DeadLetter read_dead_letter(const sqlite::Statement& st) {
  DeadLetter d;
  d.id = st.column_int64(0);
  d.projection = text_column(st, 1);
  d.position = static_cast<std::uint64_t>(st.column_int64(2));
  d.event_id = Uuid::from_bytes(st.column_blob(3)).value_or(Uuid{});
  d.stream = text_column(st, 4);
  d.type = text_column(st, 5);
  d.error = text_column(st, 6);
  d.attempts = st.column_int64(7);
  d.parked_at = st.column_int64(8);
  d.status = text_column(st, 9);
  return d;
}

JsonObject dead_letter_json(const DeadLetter& d) {
  JsonObject o;
  o.inum("id", d.id)
      .str("projection", d.projection)
      .num("position", d.position)
      .str("event_id", d.event_id.to_string())
      .str("stream", d.stream)
      .str("type", d.type)
      .str("error", d.error)
      .inum("attempts", d.attempts)
      .str("parked_at", iso_time(d.parked_at))
      .str("status", d.status);
  return o;
}

struct DeadLetterArgs {
  std::string projections_db;
  std::string projection;
  std::string status;
  std::optional<std::int64_t> id;
  bool all = false;
};

std::optional<DeadLetter> find_dead_letter(sqlite::Connection& c, std::int64_t id) {
  constexpr std::string_view action = "read the dead letters in";
  auto st = must(c.cached(std::string("SELECT ") + dead_letter_columns + " FROM evs_dead_letters WHERE id = ?1", action));
  st->bind(1, id);
  if (!must(st->step(action))) return std::nullopt;
  return read_dead_letter(*st);
}

void dead_letters_list(Context& ctx, const DeadLetterArgs& args) {
  const std::string path = dead_letter_database(ctx, args.projections_db);
  auto c = open_dead_letters(ctx, path, sqlite::Access::read);
  std::vector<DeadLetter> rows;
  {
    constexpr std::string_view action = "read the dead letters in";
    auto st = must(c.cached(std::string("SELECT ") + dead_letter_columns +
                                " FROM evs_dead_letters WHERE (?1 IS NULL OR projection = ?1) AND "
                                "(?2 IS NULL OR status = ?2) ORDER BY id",
                            action));
    if (args.projection.empty()) st->bind_null(1); else st->bind_text(1, args.projection);
    if (args.status.empty()) st->bind_null(2); else st->bind_text(2, args.status);
    while (must(st->step(action))) rows.push_back(read_dead_letter(*st));
  }
  if (ctx.json) {
    for (const DeadLetter& d : rows) ctx.out << dead_letter_json(d).text() << '\n';
    return;
  }
  if (!rows.empty()) {
    Table t({"id", "projection", "position", "stream", "type", "attempts", "status", "parked at", "error"},
            {true, false, true, false, false, true, false, false, false});
    for (const DeadLetter& d : rows) {
      std::string error = one_line(d.error);
      if (error.size() > 60) error = error.substr(0, 57) + "...";
      t.row({std::to_string(d.id), d.projection, std::to_string(d.position), d.stream, d.type,
             std::to_string(d.attempts), d.status, iso_time(d.parked_at), error});
    }
    t.print(ctx.out);
  }
  ctx.out << plural(rows.size(), "dead letter", "dead letters") << " in " << path << '\n';
}

void dead_letters_show(Context& ctx, const DeadLetterArgs& args) {
  const std::string path = dead_letter_database(ctx, args.projections_db);
  auto c = open_dead_letters(ctx, path, sqlite::Access::read);
  const auto d = find_dead_letter(c, *args.id);
  if (!d) throw Failure("no dead letter with id " + std::to_string(*args.id) + " in " + path);

  // The event itself, from the event store.
  std::optional<RecordedEvent> event;
  std::string event_problem;
  if (ctx.db.empty()) {
    event_problem = "pass --db to show the event";
  } else {
    auto store = ctx.open_store();
    auto found = must(store->read_all(d->position, 1));
    if (!found.events.empty() && found.events.front().position == d->position &&
        found.events.front().event_id == d->event_id)
      event = std::move(found.events.front());
    else
      event_problem = "no event " + d->event_id.to_string() + " at position " + std::to_string(d->position) + " in " +
                      ctx.where();
  }
  if (ctx.json) {
    JsonObject o = dead_letter_json(*d);
    if (event)
      o.raw("event", event_json(*event, *ctx.app.registry, true));
    else
      o.null("event").str("event_problem", event_problem);
    ctx.out << o.text() << '\n';
    return;
  }
  ctx.out << "dead letter " << d->id << " (" << path << ")\n"
          << "  projection   " << d->projection << '\n'
          << "  status       " << d->status << '\n'
          << "  attempts     " << d->attempts << '\n'
          << "  parked at    " << iso_time(d->parked_at) << '\n'
          << "  error        " << one_line(d->error) << '\n'
          << "  event        position " << d->position << ", stream " << d->stream << ", type " << d->type << '\n'
          << '\n';
  if (event)
    print_event(ctx.out, *event, *ctx.app.registry);
  else
    ctx.out << "event not shown: " << event_problem << '\n';
}

// The operator's transitions of a dead letter (docs/projections.md, "Dead-letter states"): retry
// requests a re-delivery of a parked row; skip discards a parked row or cancels a requested retry. The
// engine settles a requested retry as retried or parks it again. retried and skipped are final.
struct Transition {
  const char* command;
  const char* to;
  std::vector<std::string> from;
  const char* done;
};
const Transition retry_transition{"retry", "retry", {"parked"}, "queued for retry"};
const Transition skip_transition{"skip", "skipped", {"parked", "retry"}, "skipped"};

std::string why_not(const Transition& t, const DeadLetter& d) {
  std::string state = "'" + d.status + "'";
  if (d.status == "retry") state += " (a retry is already queued)";
  else if (d.status == "retried") state += " (resolved: its re-delivery succeeded)";
  else if (d.status == "skipped") state += " (discarded)";
  std::string from;
  for (const auto& f : t.from) from += (from.empty() ? "'" : " or '") + f + "'";
  return "dead letter " + std::to_string(d.id) + " is " + state + ": " + t.command + " applies only to a dead letter in " +
         from + " (see dead-letters list)";
}

// Applies `t` to one dead letter, or retry to all parked ones. An illegal transition changes nothing and is
// a Failure (exit code 1).
void dead_letters_set(Context& ctx, const DeadLetterArgs& args, const Transition& t) {
  const bool retry = &t == &retry_transition;
  if (retry && args.id.has_value() == args.all)
    throw CLI::ValidationError("dead-letters retry", "pass either a dead letter ID or --all");
  const std::string path = dead_letter_database(ctx, args.projections_db);
  auto c = open_dead_letters(ctx, path, sqlite::Access::write);
  constexpr std::string_view action = "update the dead letters in";

  if (args.all) {
    auto st = must(c.cached(
        "UPDATE evs_dead_letters SET status = 'retry' WHERE status = 'parked' AND (?1 IS NULL OR projection = ?1)", action));
    if (args.projection.empty()) st->bind_null(1); else st->bind_text(1, args.projection);
    must(st->run(action));
    const auto n = static_cast<std::uint64_t>(sqlite3_changes(c.handle()));
    if (ctx.json)
      ctx.out << JsonObject().num("retry_queued", n).str("database", path).text() << '\n';
    else
      ctx.out << "queued " << plural(n, "dead letter", "dead letters") << " for retry"
              << (n > 0 ? "; a running projection engine re-delivers them on its next pass" : "") << '\n';
    return;
  }
  const auto before = find_dead_letter(c, *args.id);
  if (!before) throw Failure("no dead letter with id " + std::to_string(*args.id) + " in " + path);
  // Checked in the UPDATE itself, so a concurrent change by the engine cannot be overwritten.
  auto st = must(c.cached("UPDATE evs_dead_letters SET status = ?2 WHERE id = ?1 AND status IN (?3, ?4)", action));
  st->bind(1, *args.id);
  st->bind_text(2, t.to);
  st->bind_text(3, t.from.front());
  st->bind_text(4, t.from.back());
  must(st->run(action));
  if (sqlite3_changes(c.handle()) != 1) {
    const auto now = find_dead_letter(c, *args.id);
    throw Failure(why_not(t, now ? *now : *before) + " in " + path);
  }
  if (ctx.json) {
    JsonObject o = dead_letter_json(*before);
    o.str("previous_status", before->status).str("new_status", t.to);
    ctx.out << o.text() << '\n';
    return;
  }
  ctx.out << "dead letter " << before->id << " (projection " << before->projection << ", position "
          << before->position << ") " << t.done;
  if (retry) ctx.out << "; a running projection engine re-delivers it on its next pass";
  ctx.out << '\n';
}

}  // namespace

void add_projection_commands(CLI::App& cli, Context& ctx) {
  {
    auto args = std::make_shared<ProjectionsArgs>();
    auto* sub = cli.add_subcommand("projections", "Health of each projection: position, lag, state, dead letters");
    sub->add_option("--projections-db", args->projections_db,
                    "the database with the projection tables (a SQLite file or a postgresql:// location), when "
                    "the read models live outside --db")
        ->option_text("PATH|URL");
    sub->footer(
        "Read from the stored checkpoints (evs_checkpoints) and dead letters (evs_dead_letters) of --db, or of "
        "--projections-db; the embedded form also reads the databases its projections are configured with, and "
        "lists its projections that have no checkpoint yet. position: every event at or before it is processed "
        "(the minimum over partitions). lag: events between the position and the store's head, when one of them "
        "is of a type the projection handles (standalone: any event). behind: the age of the oldest unprocessed "
        "event. state: 'idle' (caught up), 'behind', 'never run' (no checkpoint) or 'in memory' (an in-memory "
        "view keeps no checkpoint). The tool cannot see the live state of an engine in another process "
        "(live, stalled, failed): ask the application's engine.health() for that. With workers under claims "
        "(ProjectionOptions::node), a last column lists each node's partitions (see `workers`).");
    sub->callback([&ctx, args] { projections(ctx, *args); });
  }

  auto* dl = cli.add_subcommand("dead-letters", "List, show, retry or skip events a projection parked after failing");
  dl->require_subcommand(1);
  dl->fallthrough();
  auto args = std::make_shared<DeadLetterArgs>();
  dl->add_option("--projections-db", args->projections_db,
                 "the database with the evs_dead_letters table (default: the database the application's "
                 "projections use, else --db)")
      ->option_text("PATH");
  dl->footer(
      "States: 'parked' (waiting for an operator), 'retry' (re-delivery requested), 'retried' (resolved) and "
      "'skipped' (discarded). retry moves a parked dead letter to 'retry': the application's projection engine "
      "re-delivers the event once on its next pass, through the same inbox check as normal delivery (success: "
      "'retried'; failure: 'parked' again). skip moves a parked dead letter, or one queued for retry, to "
      "'skipped'. Any other change (retrying one already queued, retried or skipped) is refused with exit code "
      "1.");
  {
    auto* sub = dl->add_subcommand("list", "List the dead letters");
    sub->add_option("--projection,-p", args->projection, "only this projection's");
    sub->add_option("--status", args->status, "only with this status")
        ->check(CLI::IsMember({"parked", "retry", "retried", "skipped"}));
    sub->callback([&ctx, args] { dead_letters_list(ctx, *args); });
  }
  {
    auto* sub = dl->add_subcommand("show", "Show one dead letter and its event (the event needs --db)");
    sub->add_option("id", args->id, "the dead letter's id (see list)")->required()->check(positive_integer());
    sub->callback([&ctx, args] { dead_letters_show(ctx, *args); });
  }
  {
    auto* sub = dl->add_subcommand("retry", "Queue one dead letter, or all parked ones, for re-delivery");
    auto* id = sub->add_option("id", args->id, "the dead letter's id")->check(positive_integer());
    auto* all = sub->add_flag("--all", args->all, "every parked dead letter (of --projection, if given)");
    sub->add_option("--projection,-p", args->projection, "with --all: only this projection's")->needs(all);
    id->excludes(all);
    sub->callback([&ctx, args] { dead_letters_set(ctx, *args, retry_transition); });
  }
  {
    auto* sub = dl->add_subcommand("skip", "Discard one parked dead letter, or cancel its queued retry");
    sub->add_option("id", args->id, "the dead letter's id")->required()->check(positive_integer());
    sub->callback([&ctx, args] { dead_letters_set(ctx, *args, skip_transition); });
  }
}

}  // namespace evs::cli
