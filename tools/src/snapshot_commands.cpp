// `snapshots drop`: deletes stored aggregate snapshots (all, one stream's, or one state type's). A snapshot
// is only an optimisation: the next load of a dropped stream replays its events (and the repository saves
// a new snapshot by its policy), so dropping never loses data.
#include "commands.hpp"
#include "format.hpp"
#include "store_sql.hpp"

#include <memory>
#include <optional>
#include <string>

namespace evs::cli {
namespace {

struct DropArgs {
  std::optional<std::string> stream;
  std::optional<std::string> type;
  bool all = false;
};

void drop(Context& ctx, const DropArgs& args) {
  if (!args.stream && !args.type && !args.all)
    throw CLI::ValidationError("snapshots drop", "pass --stream S, --type T or --all");
  // Opening the store checks that this is an evs store and brings its schema up to date. A drifted event
  // type does not stop this command: dropping snapshots decodes nothing.
  ctx.open_store(true, SchemaCheck::off).reset();
  auto sql = open_store_sql(ctx, true);
  const std::string key = args.stream ? *args.stream : args.type ? *args.type : std::string();
  const std::uint64_t dropped = sql->change(args.stream ? "DELETE FROM snapshots WHERE stream = $1"
                                            : args.type ? "DELETE FROM snapshots WHERE state_type = $1"
                                                        : "DELETE FROM snapshots",
                                            args.all ? StoreSql::Params{} : StoreSql::Params{SqlParam::text(key)});
  if (ctx.json) {
    JsonObject o;
    o.num("dropped", dropped);
    if (args.stream) o.str("stream", *args.stream);
    if (args.type) o.str("state_type", *args.type);
    ctx.out << o.text() << '\n';
  } else {
    ctx.out << "dropped " << plural(dropped, "snapshot", "snapshots");
    if (args.stream) ctx.out << " of stream " << *args.stream;
    if (args.type) ctx.out << " of state type " << *args.type;
    ctx.out << '\n';
  }
}

}  // namespace

void add_snapshot_commands(CLI::App& cli, Context& ctx) {
  auto* snapshots = cli.add_subcommand("snapshots", "Manage the stored aggregate snapshots");
  snapshots->require_subcommand(1);
  snapshots->fallthrough();
  auto args = std::make_shared<DropArgs>();
  auto* sub = snapshots->add_subcommand("drop", "Delete snapshots: one stream's, one state type's, or all");
  auto* stream = sub->add_option("--stream,-s", args->stream, "only the snapshot of this stream");
  auto* type = sub->add_option("--type,-t", args->type,
                               "only the snapshots of this state type (the stored state_type: the C++ name of "
                               "the aggregate's state, e.g. shop::OrderState)");
  auto* all = sub->add_flag("--all", args->all, "every snapshot");
  stream->excludes(type)->excludes(all);
  type->excludes(all);
  sub->footer(
      "A snapshot only saves replay time: the next load of a stream without one replays its events, and the "
      "repository saves a new snapshot by its policy. Drop snapshots after a change of an aggregate's apply() "
      "logic that its snapshot_version does not cover, or to reclaim space. Prints the number dropped (0 is "
      "no error).");
  sub->callback([&ctx, args] { drop(ctx, *args); });
}

}  // namespace evs::cli
