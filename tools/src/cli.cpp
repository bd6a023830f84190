#include "evs/cli/cli.hpp"

#include "commands.hpp"
#include "format.hpp"

#ifdef EVS_HAS_POSTGRESQL
#include "evs/eventstore/pg_event_store.hpp"
#endif

#include <algorithm>
#include <filesystem>
#include <functional>
#include <iostream>
#include <optional>

namespace evs::cli {

StoreLocation Context::location() const {
  if (db.empty()) throw CLI::RequiredError("--db");
  return parse_location("--db", db);
}

StoreLocation parse_location(std::string_view option, std::string_view location) {
  auto parsed = parse_store_location(location);
  if (!parsed)
    throw Failure(std::string(option) + " " + without_password(location) + ": " + parsed.error().message);
  return std::move(*parsed);
}

std::string Context::where() const {
  const StoreLocation l = location();
  return l.backend == StoreBackend::sqlite ? l.target : without_password(db);
}

std::string without_password(std::string_view location) {
  std::string s(location);
  const auto drop_parameter = [&](char separator) {  // "password=..." up to the next separator
    for (std::size_t at = s.find("password="); at != std::string::npos; at = s.find("password=", at)) {
      if (at > 0 && s[at - 1] != separator && s[at - 1] != '?') {
        ++at;
        continue;
      }
      std::size_t end = s.find(separator, at);
      end = end == std::string::npos ? s.size() : end + 1;
      s.erase(at, end - at);
    }
    while (!s.empty() && (s.back() == separator || s.back() == '?')) s.pop_back();
  };
  const std::size_t scheme = s.find("://");
  if (s.rfind("postgresql://", 0) == 0 || s.rfind("postgres://", 0) == 0) {
    // postgresql://user:secret@host/db?password=secret
    const std::size_t authority = scheme + 3;
    const std::size_t end = std::min(s.find_first_of("/?", authority), s.size());
    const std::size_t at = s.rfind('@', end);
    if (at != std::string::npos && at >= authority) {
      const std::size_t colon = s.find(':', authority);
      if (colon != std::string::npos && colon < at) s.erase(colon, at - colon);
    }
    drop_parameter('&');
  } else if (s.find('=') != std::string::npos) {
    drop_parameter(' ');
  }
  return s;
}

std::unique_ptr<EventStore> Context::open_store(bool writable, std::optional<SchemaCheck> schema_check) const {
  if (db.empty()) throw CLI::RequiredError("--db");
  return open_store_at(*this, "--db", db, writable,
                       schema_check.value_or(writable ? SchemaCheck::refuse : SchemaCheck::warn));
}

std::unique_ptr<EventStore> open_store_at(const Context& ctx, std::string_view option, std::string_view location,
                                          bool writable, SchemaCheck schema_check, bool create) {
  const StoreLocation where = parse_location(option, location);
  auto warning = [&ctx](const std::string& report) {
    ctx.err << ctx.app.name << ": warning: " << one_line(report) << std::endl;
  };
  if (where.backend == StoreBackend::postgresql) {
#ifdef EVS_HAS_POSTGRESQL
    PgOptions options;
    options.url = where.target;
    options.schema = where.schema;
    options.writers = 1;  // one command's appends
    options.readers = 2;
    options.read_only = !writable;
    options.registry = ctx.app.registry;
    options.schema_check = schema_check;
    options.schema_warning = warning;
    return std::make_unique<PgEventStore>(std::move(options));
#else
    throw Failure(std::string(option) + " " + without_password(location) + ": this " + ctx.app.name +
                  " was built without the PostgreSQL backend (configure evs with EVS_POSTGRESQL=ON)");
#endif
  }
  const std::string& path = where.target;
  std::error_code ec;
  const auto status = std::filesystem::status(path, ec);
  const bool exists = std::filesystem::exists(status);
  if (!exists && !(create && writable)) throw Failure("open " + path + ": no such file");
  if (std::filesystem::is_directory(status)) throw Failure("open " + path + ": is a directory, not an evs store");
  SqliteOptions options;
  options.path = path;
  options.read_only = !writable;
  options.immutable = !writable && closed_database(path);
  options.registry = ctx.app.registry;
  options.schema_check = schema_check;
  options.schema_warning = warning;
  return std::make_unique<SqliteEventStore>(std::move(options));
}

const ProjectionEntry& Context::projection(const std::string& name) const {
  std::string known;
  for (const ProjectionEntry& entry : app.projections) {
    if (entry.projection != nullptr && entry.projection->name() == name) return entry;
    if (entry.projection != nullptr) known += (known.empty() ? "" : ", ") + std::string(entry.projection->name());
  }
  if (known.empty())
    throw Failure("unknown projection '" + name + "': " + app.name +
                  " has no projections (embed evs::cli in the application that defines them)");
  throw Failure("unknown projection '" + name + "'; known: " + known);
}

namespace {

// The deepest subcommand the parser selected.
const CLI::App* deepest(const CLI::App& cli) {
  const CLI::App* at = &cli;
  while (!at->get_subcommands().empty()) at = at->get_subcommands().front();
  return at;
}

// "evs dead-letters" for hints in error messages.
std::string command_path(const CLI::App& cli) {
  std::string path = cli.get_name();
  for (const CLI::App* at = &cli; !at->get_subcommands().empty();) {
    at = at->get_subcommands().front();
    path += " " + at->get_name();
  }
  return path;
}

// The first word the parser could not place (an unknown command or an extra argument), if any.
std::optional<std::string> stray_word(const CLI::App& cli) {
  for (const std::string& word : cli.remaining(true))
    if (!word.empty() && word[0] != '-') return word;
  return std::nullopt;
}

// An unknown command where the deepest selected command expects one, or nullopt.
std::optional<std::string> unknown_command(const CLI::App& cli, bool standalone) {
  const CLI::App* at = deepest(cli);
  if (at->get_subcommands({}).empty() || !at->get_subcommands().empty()) return std::nullopt;
  const auto word = stray_word(cli);
  if (!word) return std::nullopt;
  std::string known;
  for (const CLI::App* sub : at->get_subcommands({})) known += (known.empty() ? "" : ", ") + sub->get_name();
  std::string message = "unknown command '" + *word + "'; commands: " + known;
  if (standalone && at == &cli && (*word == "rebuild" || *word == "replay"))
    message += " (" + *word + " runs an application's projections: use the application's own binary, which embeds "
               "evs::cli)";
  return message;
}

// CLI11 reports an unknown command as "A subcommand is required"; name the word it did not know instead.
std::string usage_message(const CLI::App& cli, const CLI::ParseError& e, bool standalone) {
  if (auto unknown = unknown_command(cli, standalone)) return *unknown;
  const CLI::App* at = deepest(cli);
  if (e.get_name() == "RequiredError" && at->get_require_subcommand_min() > 0 && at->get_subcommands().empty()) {
    std::string known;
    for (const CLI::App* sub : at->get_subcommands({})) known += (known.empty() ? "" : ", ") + sub->get_name();
    return "a command is required: " + known;
  }
  return one_line(e.what());
}

// "usage: evs read [OPTIONS] stream; see evs read --help", for the end of a usage error.
std::string usage_hint(const CLI::App& cli) {
  const CLI::App* at = deepest(cli);
  std::string usage = CLI::Formatter().make_usage(at, command_path(cli));
  usage = usage.substr(usage.find(':') + 1);  // drop the "Usage:" label
  while (!usage.empty() && (usage.back() == '\n' || usage.back() == ' ')) usage.pop_back();
  while (!usage.empty() && usage.front() == ' ') usage.erase(0, 1);
  return "usage: " + usage + "; see " + command_path(cli) + " --help";
}

}  // namespace

int run(const Application& app, int argc, const char* const* argv) {
  return run(app, argc, argv, std::cout, std::cerr);
}

int run(const Application& app, int argc, const char* const* argv, std::ostream& out, std::ostream& err) {
  Context ctx{app, out, err};
  ctx.db = app.default_db.string();

  const bool standalone = app.projections.empty() && app.registry->all().empty();
  CLI::App cli(standalone ? "Inspect, check, copy and move the events of an evs store (SQLite or PostgreSQL)."
                          : "Inspect, check, rebuild and replay the event store and projections of " + app.name +
                                ".",
               app.name);
  cli.require_subcommand(1);
  cli.fallthrough();
  cli.footer(std::string("Exit codes: 0 ok, 1 failure, 2 bad usage") +
             (app.projections.empty() ? "" : ", 3 rebuild --dry-run found differences") +
             ". Errors go to stderr as one line.");
  const std::string what = "the evs store: a SQLite file (PATH or sqlite:PATH) or postgresql://...?evs_schema=NAME";
  cli.add_option("--db", ctx.db,
                 app.default_db.empty() ? what + " (required)"
                                        : what + " (default: " + without_password(app.default_db.string()) + ")")
      ->option_text("LOCATION");
  cli.add_flag("--json", ctx.json, "machine-readable output: one JSON object per line");
  cli.set_version_flag("--version",
                       standalone ? app.name + " " + EVS_VERSION : app.name + " (evs " + EVS_VERSION + ")",
                       "print the version and exit");

  add_store_commands(cli, ctx);
  add_projection_commands(cli, ctx);
  add_worker_commands(cli, ctx);
  add_rebuild_commands(cli, ctx);
  add_snapshot_commands(cli, ctx);
  add_serve_command(cli, ctx);

  // Subcommand help does not show the parent's options: say which global options apply.
  const std::string globals = "Global options (before or after the command): --db LOCATION (a SQLite path, or "
                              "postgresql://...?evs_schema=NAME)" +
                              (app.default_db.empty() ? std::string()
                                                      : " (default: " + without_password(app.default_db.string()) + ")") +
                              ", --json (one JSON object per line).";
  const std::function<void(CLI::App&)> add_globals = [&](CLI::App& a) {
    for (CLI::App* sub : a.get_subcommands({})) {
      sub->footer(sub->get_footer().empty() ? globals : sub->get_footer() + "\n\n" + globals);
      add_globals(*sub);
    }
  };
  add_globals(cli);

  const std::string prefix = app.name + ": error: ";
  const auto usage_error = [&](const std::string& message) {
    out.flush();
    err << prefix << message << " (" << usage_hint(cli) << ")" << std::endl;
    return 2;
  };
  try {
    cli.parse(argc, argv);
    out.flush();
    return ctx.exit_code;
  } catch (const CLI::CallForHelp&) {
    // --help prints the help of the command it follows, unless a word is left over: an unknown command or an
    // extra argument is bad usage with or without --help.
    if (auto unknown = unknown_command(cli, standalone)) return usage_error(*unknown);
    if (auto word = stray_word(cli)) return usage_error("The following argument was not expected: " + *word);
    out << cli.help() << std::flush;
    return 0;
  } catch (const CLI::CallForAllHelp&) {
    out << cli.help("", CLI::AppFormatMode::All) << std::flush;
    return 0;
  } catch (const CLI::CallForVersion& v) {
    out << v.what() << std::endl;
    return 0;
  } catch (const CLI::ParseError& e) {
    return usage_error(usage_message(cli, e, standalone));
  } catch (const Failure& e) {
    out.flush();
    err << prefix << one_line(e.what()) << std::endl;
    return 1;
  } catch (const Exception& e) {
    out.flush();
    err << prefix << one_line(e.error().what()) << std::endl;
    return 1;
  } catch (const std::exception& e) {
    out.flush();
    err << prefix << one_line(e.what()) << std::endl;
    return 1;
  }
}

}  // namespace evs::cli
