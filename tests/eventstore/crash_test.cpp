// Kills a real appending process at random moments and checks that every acknowledged append survived.
#include "../support/child_process.hpp"
#include "../support/result_printing.hpp"
#include "../support/temp_dir.hpp"

#include <evs/eventstore/sqlite_event_store.hpp>

#include <doctest/doctest.h>

#include <csignal>
#include <cstdio>
#include <map>
#include <random>
#include <sstream>
#include <sys/wait.h>
#include <unistd.h>

namespace {

struct Ack {
  std::string stream;
  std::uint64_t version, first, last;
  std::string last_id;
};

// Runs crash_appender until it has acknowledged at least `min_acks` appends and `ms` milliseconds passed,
// SIGKILLs it, and returns every acknowledgement it printed.
std::vector<Ack> run_and_kill(const std::string& db, unsigned seed, int ms, std::size_t min_acks) {
  const auto child = evs::test::spawn_child(EVS_CRASH_APPENDER, {db, std::to_string(seed)});
  const pid_t pid = child.pid;
  FILE* in = fdopen(child.out, "r");
  std::vector<Ack> acks;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(ms);
  char line[512];
  bool killed = false;
  while (fgets(line, sizeof line, in)) {
    std::istringstream ss(line);
    Ack a;
    ss >> a.stream >> a.version >> a.first >> a.last >> a.last_id;
    if (ss) acks.push_back(a);
    if (!killed && acks.size() >= min_acks && std::chrono::steady_clock::now() >= deadline) {
      kill(pid, SIGKILL);  // lines already in the pipe are still read below
      killed = true;
    }
  }
  fclose(in);
  const int exit_code = evs::test::wait_child(pid);
  CHECK_MESSAGE(exit_code == -SIGKILL, "the appender died on its own: exit code " << exit_code);
  return acks;
}

}  // namespace

TEST_CASE("every append acknowledged before a SIGKILL is stored, with gap-free positions (FULL durability)") {
  evs::test::TempDir dir;
  const std::string db = (dir / "crash.db").string();
  std::mt19937 rng(std::random_device{}());
  std::vector<Ack> all_acks;
  for (unsigned round = 0; round < 5; ++round) {
    const int ms = 50 + static_cast<int>(rng() % 400);
    auto acks = run_and_kill(db, rng(), ms, 20);
    CAPTURE(round);
    CAPTURE(ms);
    REQUIRE(acks.size() >= 20);
    all_acks.insert(all_acks.end(), acks.begin(), acks.end());

    evs::SqliteOptions o;
    o.path = db;
    evs::SqliteEventStore store(o);
    const std::uint64_t last = store.last_position().value();
    // Every acknowledged append is there, at the reported positions and versions.
    for (const Ack& a : all_acks) {
      auto events = store.read_stream(a.stream, {evs::Direction::forward, a.version, 1});
      REQUIRE(events);
      REQUIRE(events->size() == 1);
      CHECK(events->front().position == a.last);
      CHECK(events->front().event_id.to_string() == a.last_id);
      CHECK(a.last <= last);
    }
    // The log has no gaps and each stream's versions are contiguous.
    std::map<std::string, std::uint64_t> versions;
    std::uint64_t expected = 1;
    for (std::uint64_t from = 1;;) {
      auto batch = store.read_all(from, 5000).value();
      if (batch.events.empty()) break;
      for (const auto& e : batch.events) {
        REQUIRE(e.position == expected++);
        REQUIRE(e.version == ++versions[e.stream_id]);
      }
      from = batch.next_position;
    }
    CHECK(expected - 1 == last);
    for (const auto& [stream, v] : versions) CHECK(store.stream_version(stream).value() == v);
  }
}
