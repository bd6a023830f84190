// A broken upcasting chain stops the program when a Repository, the projection engine or a process manager
// starts up, before anything is read: broken_chain_startup_app (tests/projections/broken_chain_startup_app.cpp)
// registers an old event version without its upcaster and starts one component over an empty store.
#include "../support/child_process.hpp"
#include "../support/temp_dir.hpp"

#include <doctest/doctest.h>

#include <string>

namespace {

struct Run {
  int status = 0;
  std::string out;
};

Run run_app(const std::string& mode) {
  evs::test::TempDir dir;
  auto child = evs::test::spawn_child(EVS_BROKEN_CHAIN_STARTUP_APP, {mode, (dir / "onboarding.db").string()}, {},
                                      /*merge_stderr=*/true);
  Run r;
  r.out = evs::test::read_to_end(child.out);
  r.status = evs::test::wait_child(child.pid);
  return r;
}

bool has(const std::string& text, const std::string& part) { return text.find(part) != std::string::npos; }

}  // namespace

TEST_CASE("a broken upcasting chain stops a Repository, the projection engine and a process manager at start-up") {
  // Control: the program itself runs; nothing checks the chains until something starts.
  const Run none = run_app("none");
  CHECK(none.status == 0);
  CHECK(has(none.out, "started"));

  for (const char* mode : {"repository", "engine", "process_manager"}) {
    CAPTURE(mode);
    const Run r = run_app(mode);
    CAPTURE(r.out);
    CHECK(r.status != 0);
    CHECK(has(r.out, "main ran"));
    CHECK(has(r.out, "evs: fatal: the event upcasting chains are broken"));
    CHECK(has(r.out, "'startup.opened' v1 (startup::v1::Opened) has no upcaster, but the current version is "
                     "'startup.opened' v2 (startup::Opened)"));
    CHECK_FALSE(has(r.out, "started"));
  }
}
