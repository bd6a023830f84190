// Projection tests with real child processes: a projection SIGKILLed at random moments keeps its read model
// equal to a clean replay (exactly-once effect), and a projection notices appends of another process.
#include "projection_processes.hpp"

#include <evs/eventstore/open_store.hpp>
#include <evs/eventstore/sqlite_event_store.hpp>
#include <evs/projections/engine.hpp>

#include <doctest/doctest.h>

#include <csignal>
#include <algorithm>
#include <cstdio>
#include <random>
#include <sys/wait.h>
#include <unistd.h>

namespace {

using namespace std::chrono_literals;

// How many events of `log` lie after `position`.
std::uint64_t events_after(const std::vector<evs::test::LogEvent>& log, std::uint64_t position) {
  const auto it = std::upper_bound(log.begin(), log.end(), position,
                                   [](std::uint64_t p, const evs::test::LogEvent& e) { return p < e.position; });
  return static_cast<std::uint64_t>(log.end() - it);
}
using evs::test::check_read_model;
using evs::test::LogEvent;

using evs::test::ChildProcess;
using evs::test::kill_and_reap;
using evs::test::KillRoundsSetup;
using evs::test::wait_exit;

ChildProcess spawn(std::vector<std::string> args) { return evs::test::spawn_projection_child(std::move(args)); }

std::string read_all_output(int fd) { return evs::test::read_to_end(fd); }

// Fills a store with `events` events, then runs projection_child over it `kills` times, each SIGKILLed after a
// random delay (unless it finished first), and finally once to completion; after every run the read model
// must equal a clean replay of the log up to the stored checkpoint(s). Before each later round the parent
// appends `more` events, so every restart has work to do, and it aims the random kill moment at the child's
// expected run time (estimated from the previous rounds), so most kills land mid-run.
void run_kill_rounds(std::size_t partitions, std::size_t events, int kills, std::size_t more,
                     const KillRoundsSetup& where) {
  const std::string& store_path = where.store;
  const std::string& model_path = where.model;
  const auto opened = evs::test::open_test_store(store_path);
  evs::EventStore& store = *opened;
  shop::Generator gen(12345 + static_cast<unsigned>(partitions), 300, 40);
  evs::test::fill(store, gen, events);
  std::vector<LogEvent> log = evs::test::load_log(store);
  REQUIRE(log.size() >= events);
  const std::string parts = std::to_string(partitions);

  std::mt19937 rng(std::random_device{}());
  double events_per_ms = 30;  // a first guess, refined by each killed run
  std::uint64_t previous = 0;
  int killed_mid_run = 0;
  for (int round = 0; round < kills; ++round) {
    if (round > 0) {
      evs::test::fill(store, gen, more);
      log = evs::test::load_log(store);
    }
    const double expected_ms = 30 + static_cast<double>(events_after(log, previous)) / events_per_ms;  // 30: start-up
    const int max_delay = std::clamp(static_cast<int>(expected_ms * 0.9), 40, 1500);
    const auto delay = std::chrono::milliseconds(20 + rng() % static_cast<unsigned>(max_delay - 19));
    CAPTURE(round);
    CAPTURE(delay.count());
    const std::uint64_t remaining = events_after(log, previous);
    const auto t0 = std::chrono::steady_clock::now();
    ChildProcess child = spawn({"project", store_path, model_path, parts});
    int status = 0;
    bool killed = false;
    if (wait_exit(child.pid, delay, status)) {
      CHECK_MESSAGE((WIFEXITED(status) && WEXITSTATUS(status) == 0), "projection_child failed: status " << status);
      // It finished first: aim the next kill earlier.
      const double ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
      events_per_ms = std::max(events_per_ms, static_cast<double>(remaining) / std::max(ms - 30, 1.0));
    } else {
      kill_and_reap(child.pid);
      killed = true;
      ++killed_mid_run;
    }
    close(child.out);
    const auto check = where.check(log);
    MESSAGE("partitions " << partitions << " round " << round << ": " << std::string(killed ? "killed" : "finished before")
                          << " " << delay.count() << " ms, checkpoint " << check.min_checkpoint << ".."
                          << check.max_checkpoint << " of " << log.size() << ", " << check.processed_rows << " rows");
    CHECK_MESSAGE(check.max_checkpoint >= previous, "the checkpoint went backwards");
    if (killed && check.max_checkpoint > previous)
      events_per_ms = std::max(1.0, static_cast<double>(events_after(log, previous) - events_after(log, check.max_checkpoint)) /
                                        static_cast<double>(delay.count()));
    previous = check.max_checkpoint;
  }

  ChildProcess child = spawn({"project", store_path, model_path, parts});
  int status = 0;
  const bool exited = wait_exit(child.pid, 90s, status);
  if (!exited) kill_and_reap(child.pid);
  const std::string out = read_all_output(child.out);
  REQUIRE_MESSAGE(exited, "projection_child did not catch up within 90 s");
  REQUIRE_MESSAGE((WIFEXITED(status) && WEXITSTATUS(status) == 0), "projection_child failed: status " << status);
  CHECK(out == "caught-up " + std::to_string(log.back().position) + "\n");
  const auto check = where.check(log);
  CHECK(check.min_checkpoint == log.back().position);
  CHECK(check.processed_rows == evs::test::handled_positions(log).size());
  MESSAGE("partitions " << partitions << ": " << killed_mid_run << " of " << kills << " runs were killed mid-run");
  CHECK(killed_mid_run > 0);
}

using evs::test::SqliteSetup;

}  // namespace

TEST_CASE("a SQL projection SIGKILLed at random moments keeps its read model equal to a replay up to its checkpoint") {
  SqliteSetup s;
  run_kill_rounds(1, 100000, 5, 20000, s.where);
}

TEST_CASE("a partitioned SQL projection SIGKILLed at random moments keeps every stream equal to a replay up to its partition's checkpoint") {
  SqliteSetup s;
  run_kill_rounds(4, 30000, 3, 10000, s.where);
}

#ifdef EVS_TEST_POSTGRESQL
using evs::test::PgSetup;

TEST_CASE("a SQL projection on PostgreSQL SIGKILLed at random moments keeps its read model equal to a replay up to "
          "its checkpoint") {
  PgSetup s;
  run_kill_rounds(1, 30000, 4, 8000, s.where);
}

TEST_CASE("a partitioned SQL projection on PostgreSQL SIGKILLed at random moments keeps every stream equal to a "
          "replay up to its partition's checkpoint") {
  PgSetup s;
  run_kill_rounds(4, 20000, 3, 6000, s.where);
}
#endif

TEST_CASE("a projection sees an event appended by another process") {
  evs::test::TempDir dir;
  evs::SqliteOptions o;
  o.path = dir / "events.db";
  o.durability = evs::Durability::normal;
  evs::SqliteEventStore store(o);
  shop::Generator gen(7, 10);
  evs::test::append_all(store, gen, 20);

  evs::test::Recorder<"cross_process"> recorder;
  evs::ProjectionEngine engine(store);
  engine.add(recorder);
  engine.start();
  REQUIRE(engine.wait_for("cross_process", store.last_position().value(), 10s));
  // Let the engine settle into live mode with its poll interval grown, the case where it must still notice.
  REQUIRE(evs::test::eventually([&] { return engine.health("cross_process")->state == evs::ProjectionState::live; }));

  for (int i = 0; i < 2; ++i) {
    CAPTURE(i);
    ChildProcess child = spawn({"append", o.path.string(), "order-remote" + std::to_string(i)});
    const std::string out = read_all_output(child.out);
    int status = 0;
    REQUIRE(wait_exit(child.pid, 30s, status));
    REQUIRE_MESSAGE((WIFEXITED(status) && WEXITSTATUS(status) == 0), "append child failed: status " << status);
    const std::uint64_t position = std::stoull(out);
    REQUIRE(position > 0);
    const auto r = engine.wait_for("cross_process", position, 5s);
    CHECK(r);
    bool found = false;
    for (const auto& s : recorder.seen())
      if (s.position == position) found = s.stream == "order-remote" + std::to_string(i);
    CHECK_MESSAGE(found, "the projection did not receive the event at position " << position);
  }
  engine.stop();
}
