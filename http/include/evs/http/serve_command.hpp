// `serve` for an application's command line (evs::cli): set Application::serve to it, and `PROGRAM serve`
// runs the HTTP server (server.hpp) on the store at --db until SIGINT or SIGTERM. The standalone evs binary
// does this.
//
//   evs::cli::Application app{"shop", "shop.db"};
//   app.serve = evs::http::serve_command;
#pragma once

#include "evs/cli/cli.hpp"

#include <iosfwd>

namespace evs::http {

// Opens the store, prints the dashboard's address and the token on `out`, serves until a signal. Returns
// 0 after a signal. Throws evs::Exception or evs::cli's Failure when the store cannot be opened or the
// address cannot be bound.
int serve_command(const cli::Application& app, const cli::ServeCommand& command, std::ostream& out);

}  // namespace evs::http
