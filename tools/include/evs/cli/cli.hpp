// The evs command-line tool as a library. An application embeds it in its own binary, because only the
// application knows its event types and projections:
//
//   int main(int argc, char** argv) {
//     OrdersByCustomer orders;
//     evs::cli::Application app{"shop", "shop.db"};
//     app.projections.push_back({&orders, {.database = "read.db"}});
//     return evs::cli::run(app, argc, argv);       // shop rebuild orders_by_customer, shop stats, ...
//   }
//
// The standalone `evs` binary is the same tool with no projections and an empty registry: everything that
// needs no domain types (streams, read, tail, stats, projections, dead-letters, check, export, import, copy).
// Every command that works on a store takes --db as a SQLite path or a PostgreSQL location (open_store.hpp).
#pragma once

#include "evs/core/registry.hpp"
#include "evs/projections/projection.hpp"

#include <cstdint>
#include <filesystem>
#include <iosfwd>
#include <string>
#include <vector>

namespace evs::cli {

struct ProjectionEntry {
  Projection* projection = nullptr;  // not owned
  ProjectionOptions options;         // as the application runs it (database, partitions, ...)
};

// `serve`: what the command line asked of the HTTP server (evs::http, docs/operations.md).
struct ServeCommand {
  std::string db;                                // --db
  std::string address = "127.0.0.1";            // --address
  std::uint16_t port = 7470;                     // --port (0: any free port)
  std::string token;                             // --token (empty: a random one, printed)
  bool read_only = false;                        // --read-only
  std::vector<std::string> projection_databases;  // --projections-db (repeatable)
};
struct Application;
// Runs the server until SIGINT or SIGTERM; returns the exit code. Failures throw.
using ServeFunction = int (*)(const Application& app, const ServeCommand& command, std::ostream& out);

struct Application {
  std::string name = "evs";                    // the program name shown in help and errors
  std::filesystem::path default_db;            // --db when not given (a path or a postgresql:// location);
                                               // empty: --db is required
  std::vector<ProjectionEntry> projections;    // what `rebuild` and `replay` can run
  const EventRegistry* registry = &EventRegistry::global();  // decodes payloads, and `check` verifies them
  // `serve`: evs::http::serve_command when the program links evs::http; without it the command explains
  // that this program has no HTTP server.
  ServeFunction serve = nullptr;
};

// Runs one command line. Output goes to `out`, errors to `err` as one line "<name>: error: <message>".
// Returns the exit code: 0 success, 1 failure, 2 bad usage (unknown command or option, bad value, unexpected
// argument), 3 `rebuild --dry-run` found that the rebuilt read model differs from the live one.
int run(const Application& app, int argc, const char* const* argv);
int run(const Application& app, int argc, const char* const* argv, std::ostream& out, std::ostream& err);

}  // namespace evs::cli
