// Internal: how the command files plug into the parser. Each add_* function registers its subcommands on
// the CLI11 app; a subcommand's callback does its work and stores the exit code in ctx.exit_code
// (0 ok, 1 failure). Failures throw evs::cli::Failure (message printed as one line, exit code 1).
#pragma once

#include "evs/cli/cli.hpp"
#include "evs/eventstore/open_store.hpp"
#include "evs/eventstore/sqlite_event_store.hpp"

#include <CLI/CLI.hpp>

#include <filesystem>
#include <memory>
#include <optional>
#include <ostream>
#include <stdexcept>
#include <string>

namespace evs::cli {

// Exit codes besides 0 (ok), 1 (failure) and 2 (bad usage).
constexpr int exit_differs = 3;  // rebuild --dry-run: the rebuilt read model differs from the live one

struct Failure : std::runtime_error {
  using std::runtime_error::runtime_error;
};

struct Context {
  const Application& app;
  std::ostream& out;
  std::ostream& err;
  std::string db;      // --db: a SQLite path (or sqlite:PATH), or a PostgreSQL location (open_store.hpp)
  bool json = false;   // --json: machine-readable output
  int exit_code = 0;

  // What --db names (parse_store_location). CLI::RequiredError without --db; a Failure when it is malformed.
  StoreLocation location() const;
  bool postgres() const { return location().backend == StoreBackend::postgresql; }
  // --db as messages show it: the SQLite path, or the PostgreSQL location without its password.
  std::string where() const;

  // Opens the event store at --db for reading (or writing). SQLite: a missing file, a foreign file or an
  // unreadable one is a Failure with a clear message; a read-only open of a closed store (see
  // closed_database) reads it as immutable, so inspecting it creates no file next to it and writes nothing.
  // PostgreSQL: a read-only open of a schema without a store fails (read_only) instead of creating one; a
  // writable open creates the store's tables when the schema has none.
  // Shape drift (schema_drift.hpp) against the application's registry: `schema_check`, by default refuse
  // for a writable open (a command that writes may decode and act on misread events) and warn for a
  // read-only one (the warning goes to `err` as one line; inspecting a drifted store stays possible).
  // rebuild and replay, which feed decoded events to projections, pass refuse.
  std::unique_ptr<EventStore> open_store(bool writable = false,
                                         std::optional<SchemaCheck> schema_check = std::nullopt) const;
  // The ProjectionEntry named `name`, or a Failure listing the known names.
  const ProjectionEntry& projection(const std::string& name) const;
};

// `location` for messages: a PostgreSQL URL or connection string without its password; anything else as is.
std::string without_password(std::string_view location);

// parse_store_location, with a malformed location as a Failure naming `option` ("--db", "--to").
StoreLocation parse_location(std::string_view option, std::string_view location);

// Context::open_store for any location (`option` names where it came from, for messages). `create`: a
// writable open of a SQLite path that does not exist creates the store there (import and copy do).
std::unique_ptr<EventStore> open_store_at(const Context& ctx, std::string_view option, std::string_view location,
                                          bool writable, SchemaCheck schema_check, bool create = false);

// True when no -wal, -shm or -journal file lies next to the database at `path`: no process has it open
// in WAL mode and no crash left a journal to roll back, so it can be read as an immutable file. (A plain
// read-only open of a WAL database creates -wal and -shm files.)
inline bool closed_database(const std::filesystem::path& path) {
  std::error_code ec;
  for (const char* suffix : {"-wal", "-shm", "-journal"})
    if (std::filesystem::exists(path.string() + suffix, ec) || ec) return false;
  return true;
}

// Validators for integer options with plain messages ("--count: 'abc' is not a positive integer").
inline CLI::Validator positive_integer() {
  return CLI::Validator(
      [](std::string& s) -> std::string {
        std::size_t end = 0;
        try {
          if (!s.empty() && s[0] != '-' && std::stoull(s, &end) > 0 && end == s.size()) return {};
        } catch (const std::exception&) {
        }
        return "'" + s + "' is not a positive integer";
      },
      "");
}
inline CLI::Validator non_negative_integer() {
  return CLI::Validator(
      [](std::string& s) -> std::string {
        std::size_t end = 0;
        try {
          if (!s.empty() && s[0] != '-' && (std::stoull(s, &end), end == s.size())) return {};
        } catch (const std::exception&) {
        }
        return "'" + s + "' is not a non-negative integer";
      },
      "");
}

// Events per read or append batch of the store commands (a long stream is never held in memory at once).
constexpr std::size_t batch_size = 500;

void add_store_commands(CLI::App& cli, Context& ctx);       // streams, read, tail, stats, check, export, import, copy
void add_check_command(CLI::App& cli, Context& ctx);        // check (called by add_store_commands)
void add_import_command(CLI::App& cli, Context& ctx);       // import (called by add_store_commands)
void add_copy_command(CLI::App& cli, Context& ctx);         // copy (called by add_store_commands)
void add_projection_commands(CLI::App& cli, Context& ctx);  // projections, dead-letters
void add_worker_commands(CLI::App& cli, Context& ctx);      // workers
void add_rebuild_commands(CLI::App& cli, Context& ctx);     // rebuild, replay
void add_snapshot_commands(CLI::App& cli, Context& ctx);    // snapshots drop
void add_serve_command(CLI::App& cli, Context& ctx);        // serve (Application::serve)

}  // namespace evs::cli
