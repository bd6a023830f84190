// checkout demo LOCATION [--fresh] [--short] [--files DIR] [--port N] [--serve]
//                           tells the story (see demo.cpp), on a SQLite file or a PostgreSQL schema, with the
//                           dashboard running (and kept running afterwards with --serve, until Ctrl-C)
// checkout [--db DB] COMMAND ...         the embedded evs tool: rebuild revenue_per_day, read order-1, stats,
//                                        serve, ...
#include "app.hpp"
#include "demo.hpp"

#include <evs/http/serve_command.hpp>

#include <charconv>
#include <string_view>

namespace {

int usage(const char* problem) {
  std::fprintf(stderr,
               "checkout demo: %s\nusage: checkout demo DB|postgresql://...?evs_schema=NAME [--fresh] [--short] "
               "[--files DIR] [--port N] [--serve]\n",
               problem);
  return 2;
}

int demo(const std::vector<std::string_view>& args) {
  if (args.size() < 2 || args[1].starts_with("--")) return usage("the store's location is missing");
  checkout::DemoOptions options;
  for (std::size_t i = 2; i < args.size(); ++i) {
    const std::string_view a = args[i];
    const bool has_value = i + 1 < args.size();
    if (a == "--fresh") {
      options.fresh = true;
    } else if (a == "--short") {
      options.short_mode = true;
    } else if (a == "--serve") {
      options.serve = true;
    } else if (a == "--files" && has_value) {
      options.files = args[++i];
    } else if (a == "--port" && has_value) {
      const std::string_view v = args[++i];
      unsigned port = 0;
      const auto [end, ec] = std::from_chars(v.data(), v.data() + v.size(), port);
      if (ec != std::errc() || end != v.data() + v.size() || port > 65535)
        return usage("--port takes a number from 0 to 65535");
      options.port = static_cast<std::uint16_t>(port);
    } else {
      return usage(("unexpected argument '" + std::string(a) + "'").c_str());
    }
  }
  return checkout::run_demo(std::string(args[1]), options);
}

}  // namespace

int main(int argc, char** argv) {
  const std::vector<std::string_view> args(argv + 1, argv + argc);
  if (!args.empty() && args[0] == "demo") return demo(args);
  // The tool needs to know where the read models are, and they sit next to the store given with --db.
  std::filesystem::path db = "checkout.db";
  for (std::size_t i = 0; i < args.size(); ++i) {
    if (args[i] == "--db" && i + 1 < args.size()) db = args[i + 1];
    if (args[i].starts_with("--db=")) db = args[i].substr(5);
  }
  checkout::ReadModels read_models;
  evs::cli::Application app = read_models.tool(db);
  app.serve = evs::http::serve_command;
  return evs::cli::run(app, argc, argv);
}
