// `checkout demo LOCATION [--fresh] [--short] [--files DIR] [--port N] [--serve]` (demo.cpp): the story of one
// shop, on a SQLite file or a PostgreSQL schema; `files` holds the SQLite stores of steps 6 and 9 on
// PostgreSQL. The dashboard (evs::http) runs while the story does; with `serve` it stays up afterwards until
// Ctrl-C. Returns the exit code.
#pragma once

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>

namespace checkout {

struct DemoOptions {
  bool fresh = false;
  bool short_mode = false;
  std::filesystem::path files = ".";
  std::optional<std::uint16_t> port;  // the dashboard's; none: 7470, or any free port when that one is taken
  bool serve = false;                 // keep serving the dashboard after the story, until SIGINT or SIGTERM
};

int run_demo(const std::string& location, const DemoOptions& options);

}  // namespace checkout
