#include "evs/http/serve_command.hpp"

#include "evs/http/server.hpp"

#include "commands.hpp"

#include <boost/asio/io_context.hpp>
#include <boost/asio/signal_set.hpp>

#include <csignal>
#include <iostream>
#include <thread>

namespace evs::http {

int serve_command(const cli::Application& app, const cli::ServeCommand& command, std::ostream& out) {
  cli::Application served = app;
  served.default_db = command.db;
  cli::Context ctx{served, out, std::cerr, command.db};
  // Opened for writing (it never appends): a read-only open of a closed SQLite store would read it as an
  // immutable file and never see what other processes append afterwards.
  auto store = ctx.open_store(true, SchemaCheck::warn);

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
