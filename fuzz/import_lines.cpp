// libFuzzer target: `evs import` (the JSON-lines parser and the appends it makes) on an arbitrary file. The tool
// must answer with exit code 0 or 1 and a one-line error, never crash or throw out of evs::cli::run.
#include "fuzz_target.hpp"
#include "scratch_dir.hpp"

#include <evs/cli/cli.hpp>

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <sstream>
#include <string>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  static const evs_fuzz::ScratchDir dir;
  static const evs::EventRegistry no_types;
  dir.clear();
  const std::string file = dir.write("events.jsonl", {reinterpret_cast<const char*>(data), size}).string();
  const std::string db = (dir.path() / "store.db").string();

  evs::cli::Application app;
  app.registry = &no_types;
  const char* argv[] = {"evs", "import", file.c_str(), "--db", db.c_str()};
  std::ostringstream out, err;
  const int code = evs::cli::run(app, 5, argv, out, err);
  if (code != 0 && code != 1) {
    std::fprintf(stderr, "import fuzz: exit code %d: %s\n", code, err.str().c_str());
    std::abort();
  }
  return 0;
}
