#include "evs/http/serve_command.hpp"

#include "evs/http/server.hpp"

#include "commands.hpp"

#include <boost/asio/io_context.hpp>
#include <boost/asio/signal_set.hpp>

#include <csignal>
#include <filesystem>
#include <iostream>
#include <thread>

namespace evs::http {

int serve_command(const cli::Application& app, const cli::ServeCommand& command, std::ostream& out) {
  cli::Application served = app;
  served.default_db = command.db;
  cli::Context ctx{served, out, std::cerr, command.db};
  // Read-only: a dashboard never migrates or creates a store (on PostgreSQL a migration may build an index
  // that holds appends back). A SQLite file is read through normal read-only connections, not as an
  // immutable file (the tool's inspection mode), so what other processes append keeps showing.
  std::unique_ptr<EventStore> store;
  const StoreLocation where = ctx.location();
  if (where.backend == StoreBackend::sqlite) {
    std::error_code ec;
    if (!std::filesystem::exists(where.target, ec)) throw cli::Failure("open " + where.target + ": no such file");
    SqliteOptions o;
    o.path = where.target;
    o.read_only = true;
    o.registry = served.registry;
    store = std::make_unique<SqliteEventStore>(o);
  } else {
    store = ctx.open_store(false, SchemaCheck::warn);
  }

  ServeOptions options;
  options.address = command.address;
  options.port = command.port;
  options.token = command.token;
  options.read_only = command.read_only;
  options.projection_databases = command.projection_databases;

  boost::asio::io_context io;
  auto server = serve(io, *store, served, options);
  out << app.name << " serve: " << ctx.where() << " on " << server->url() << '\n'
      << "dashboard: " << server->dashboard_url() << '\n';
  if (server->read_only())
    out << "read-only: requests that change state are refused\n";
  else
    out << "token (for requests that change state): " << server->token() << '\n';
  out << std::flush;

  boost::asio::signal_set signals(io, SIGINT, SIGTERM);
  signals.async_wait([&](const boost::system::error_code&, int) {
    server->stop();
    io.stop();
  });
  std::thread second([&] { io.run(); });
  io.run();
  second.join();
  return 0;
}

}  // namespace evs::http
