// serve: the HTTP server (metrics, JSON API, dashboard) on the store at --db, until SIGINT or SIGTERM. The
// server itself is evs::http; a program that links it sets Application::serve.
#include "commands.hpp"

namespace evs::cli {

void add_serve_command(CLI::App& cli, Context& ctx) {
  auto args = std::make_shared<ServeCommand>();  // kept alive by the callback
  auto* sub = cli.add_subcommand(
      "serve", "Serve Prometheus metrics, the JSON API and the dashboard of the store (until Ctrl-C)");
  sub->add_option("--address", args->address, "the address to listen on (default 127.0.0.1: this machine only)");
  sub->add_option("--port", args->port, "the port (default 7470; 0: any free port)")->check(CLI::Range(0, 65535));
  sub->add_option("--token", args->token,
                  "the bearer token of requests that change state (default: a random one, printed at start)");
  sub->add_flag("--read-only", args->read_only, "refuse every request that changes state");
  sub->add_option("--projections-db", args->projection_databases,
                  "a database with projection tables (checkpoints, dead letters); repeatable")
      ->option_text("LOCATION");
  sub->callback([&ctx, args] {
    if (ctx.app.serve == nullptr)
      throw Failure(ctx.app.name + " has no HTTP server: link evs::http and set Application::serve "
                                   "(the standalone evs binary has it)");
    if (ctx.db.empty()) throw CLI::RequiredError("--db");
    ServeCommand command = *args;
    command.db = ctx.db;
    (void)ctx.location();  // a malformed --db is a Failure here, before anything listens
    ctx.exit_code = ctx.app.serve(ctx.app, command, ctx.out);
  });
}

}  // namespace evs::cli
