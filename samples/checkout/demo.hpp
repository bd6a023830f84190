// `checkout demo LOCATION [--fresh] [--short] [--files DIR]` (demo.cpp): the story of one shop, on a SQLite
// file or a PostgreSQL schema; `files` holds the SQLite stores of steps 6 and 9 on PostgreSQL. Returns the
// exit code.
#pragma once

#include <filesystem>
#include <string>

namespace checkout {
int run_demo(const std::string& location, bool fresh, bool short_mode, const std::filesystem::path& files);
}
