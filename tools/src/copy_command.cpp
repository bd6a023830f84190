// `copy`: a whole store into an empty one, between backends (SQLite <-> PostgreSQL) or within one, with
// everything as stored: positions, event ids, stream versions, recorded times, metadata, schema records and
// snapshots (evs::copy_store).
#include "commands.hpp"
#include "format.hpp"

#include "evs/eventstore/store_transfer.hpp"

#include <chrono>
#include <filesystem>

namespace evs::cli {
namespace {

struct CopyArgs {
  std::string from;
  std::string to;
  std::size_t batch = 2000;
};

// Whether two locations name the same store.
bool same_store(const StoreLocation& a, const StoreLocation& b) {
  if (a.backend != b.backend) return false;
  if (a.backend == StoreBackend::postgresql) return a.target == b.target && a.schema == b.schema;
  std::error_code ec1, ec2;
  return std::filesystem::weakly_canonical(a.target, ec1) == std::filesystem::weakly_canonical(b.target, ec2);
}

// What to do with a target that holds a partial copy.
std::string how_to_empty(const StoreLocation& target) {
  if (target.backend == StoreBackend::postgresql)
    return "DROP SCHEMA \"" + target.schema + "\" CASCADE on that database";
  return "delete " + target.target + " (and its -wal and -shm files)";
}

void copy(Context& ctx, const CopyArgs& args) {
  const std::string from_text = args.from.empty() ? ctx.db : args.from;
  if (from_text.empty()) throw CLI::RequiredError("--from (or --db)");
  const StoreLocation from = parse_location("--from", from_text);
  const StoreLocation to = parse_location("--to", args.to);
  const std::string from_name = without_password(from_text), to_name = without_password(args.to);
  if (same_store(from, to)) throw Failure("--from and --to name the same store, " + to_name);

  // The source first: a source that cannot be read leaves the target untouched (not even created). Copying
  // decodes nothing, so a drifted event type does not stop it.
  auto source = open_store_at(ctx, "--from", from_text, false, SchemaCheck::off);
  auto target = open_store_at(ctx, "--to", args.to, true, SchemaCheck::off, true);

  using Clock = std::chrono::steady_clock;
  auto last_report = Clock::now();
  CopyOptions options;
  options.batch_size = args.batch;
  options.progress = [&](const CopyProgress& p) {
    using Stage = CopyProgress::Stage;
    const bool stage_end = (p.stage == Stage::events && p.events >= p.total_events) ||
                           (p.stage == Stage::snapshots && p.snapshots >= p.total_snapshots && p.total_snapshots > 0);
    if (p.stage == Stage::schemas) {
      ctx.err << ctx.app.name << ": copying " << plural(p.total_events, "event", "events") << " and "
              << plural(p.total_snapshots, "snapshot", "snapshots") << " from " << from_name << " to " << to_name
              << std::endl;
      return;
    }
    if (p.stage == Stage::done || (!stage_end && Clock::now() - last_report < std::chrono::seconds(1))) return;
    if (p.stage == Stage::events && (p.events > 0 || p.total_events == 0)) {
      const auto percent = p.total_events == 0 ? 100 : p.events * 100 / p.total_events;
      ctx.err << ctx.app.name << ": copied " << p.events << " of " << plural(p.total_events, "event", "events") << " ("
              << percent << "%), up to position " << p.last_position << std::endl;
      last_report = Clock::now();
    } else if (p.stage == Stage::snapshots && p.snapshots > 0) {
      ctx.err << ctx.app.name << ": copied " << p.snapshots << " of "
              << plural(p.total_snapshots, "snapshot", "snapshots") << std::endl;
      last_report = Clock::now();
    }
  };
  auto copied = copy_store(*source, *target, options);
  if (!copied) {
    Error e = copied.error();
    e.message = "copy " + from_name + " to " + to_name + ": " + e.message;
    if (e.message.find("partial copy") != std::string::npos) e.message += " (" + how_to_empty(to) + ")";
    throw Exception(e);
  }
  if (ctx.json) {
    ctx.out << JsonObject()
                   .str("from", from_name)
                   .str("to", to_name)
                   .num("events", copied->events)
                   .num("streams", copied->streams)
                   .num("snapshots", copied->snapshots)
                   .num("schema_records", copied->schemas)
                   .num("last_position", copied->last_position)
                   .text()
            << '\n';
    return;
  }
  ctx.out << "copied " << plural(copied->events, "event", "events") << " in "
          << plural(copied->streams, "stream", "streams") << ", " << plural(copied->snapshots, "snapshot", "snapshots")
          << " and " << plural(copied->schemas, "schema record", "schema records") << " from " << from_name << " to "
          << to_name;
  if (copied->events > 0) ctx.out << " (positions up to " << copied->last_position << ")";
  ctx.out << '\n';
}

}  // namespace

void add_copy_command(CLI::App& cli, Context& ctx) {
  auto args = std::make_shared<CopyArgs>();
  auto* sub = cli.add_subcommand("copy", "Copy a whole store into an empty one, e.g. from SQLite to PostgreSQL");
  sub->add_option("--from", args->from, "the store to copy (default: --db)")->option_text("LOCATION");
  sub->add_option("--to", args->to, "the empty store to copy into (created when missing)")
      ->option_text("LOCATION")
      ->required();
  sub->add_option("--batch", args->batch, "events per transaction (default 2000)")->check(positive_integer());
  sub->footer(
      "Locations: a SQLite file (PATH or sqlite:PATH) or postgresql://...?evs_schema=NAME. Copies the schema "
      "records, every event and every snapshot as stored: positions, event ids, stream versions, recorded "
      "times, metadata, types, schema versions and encodings. The target must be empty: a store with any "
      "event, stream, snapshot or schema record is refused and left as it is. Events go in batches, one "
      "transaction each, with progress on stderr; a copy that fails midway says how far it got, and the "
      "target then holds a partial copy to delete before copying again. Nothing may write to either store "
      "while it copies. Afterwards appends to the target go after the copied positions. From PostgreSQL to "
      "SQLite the positions keep their gaps (see docs/replay-tool.md, copy). Projection checkpoints stay "
      "valid: they are positions, and positions do not change.");
  sub->callback([&ctx, args] { copy(ctx, *args); });
}

}  // namespace evs::cli
