// `checkout demo DB [--fresh] [--short]` (demo.cpp): the story of one shop. Returns the exit code.
#pragma once

#include <filesystem>

namespace checkout {
int run_demo(const std::filesystem::path& db, bool fresh, bool short_mode);
}
