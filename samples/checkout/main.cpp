// checkout demo LOCATION [--fresh] [--short] [--files DIR]   tells the story (see demo.cpp), on a SQLite file
//                                                            or a PostgreSQL schema
// checkout [--db DB] COMMAND ...         the embedded evs tool: rebuild revenue_per_day, read order-1, stats, ...
#include "app.hpp"
#include "demo.hpp"

#include <string_view>

int main(int argc, char** argv) {
  const std::vector<std::string_view> args(argv + 1, argv + argc);
  if (!args.empty() && args[0] == "demo") {
    if (args.size() < 2) {
      std::fprintf(stderr, "usage: checkout demo DB|postgresql://...?evs_schema=NAME [--fresh] [--short] [--files DIR]\n");
      return 2;
    }
    const bool fresh = std::find(args.begin(), args.end(), "--fresh") != args.end();
    const bool short_mode = std::find(args.begin(), args.end(), "--short") != args.end();
    const auto files = std::find(args.begin(), args.end(), "--files");
    return checkout::run_demo(std::string(args[1]), fresh, short_mode,
                              files != args.end() && files + 1 != args.end() ? files[1] : ".");
  }
  // The tool needs to know where the read models are, and they sit next to the store given with --db.
  std::filesystem::path db = "checkout.db";
  for (std::size_t i = 0; i < args.size(); ++i) {
    if (args[i] == "--db" && i + 1 < args.size()) db = args[i + 1];
    if (args[i].starts_with("--db=")) db = args[i].substr(5);
  }
  checkout::ReadModels read_models;
  return evs::cli::run(read_models.tool(db), argc, argv);
}
