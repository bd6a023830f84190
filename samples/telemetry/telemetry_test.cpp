// The telemetry burst is fully stored and projected; a slow projection lags and catches up; a command
// to a rover whose link is down is retried with growing backoff and delivered exactly once.
#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include "telemetry.hpp"

#include <evs/eventstore/sqlite_event_store.hpp>
#include <evs/projections/engine.hpp>

#include <doctest/doctest.h>
#include <sqlite3.h>

#include <filesystem>
#include <random>
#include <thread>

using namespace std::chrono_literals;

namespace {

struct TempDir {
  std::filesystem::path path;
  TempDir() {
    path = std::filesystem::temp_directory_path() / ("telemetry-test-" + std::to_string(std::random_device{}()));
    std::filesystem::create_directories(path);
  }
  ~TempDir() { std::filesystem::remove_all(path); }
};

double scalar(const std::filesystem::path& db, const char* sql) {
  sqlite3* h = nullptr;
  double v = -1;
  REQUIRE(sqlite3_open_v2(db.c_str(), &h, SQLITE_OPEN_READONLY, nullptr) == SQLITE_OK);
  sqlite3_stmt* st = nullptr;
  REQUIRE(sqlite3_prepare_v2(h, sql, -1, &st, nullptr) == SQLITE_OK);
  if (sqlite3_step(st) == SQLITE_ROW) v = sqlite3_column_double(st, 0);
  sqlite3_finalize(st);
  sqlite3_close(h);
  return v;
}

bool ok(const evs::Result<void>& r) {
  if (!r) MESSAGE(r.error().what());
  return bool(r);
}

}  // namespace

TEST_CASE("a burst of 10,000 readings is fully stored, gap-free, and projected while a slow projection catches up") {
  TempDir dir;
  evs::SqliteEventStore store({.path = dir.path / "events.db", .durability = evs::Durability::normal});
  telemetry::RoverLatest latest;
  telemetry::MinuteRollups rollups(100us);  // at least 1 s of work for 10,000 readings
  evs::ProjectionEngine engine(store);
  engine.add(latest, {.database = dir.path / "read.db"});
  engine.add(rollups, {.database = dir.path / "read.db"});
  engine.start();

  const std::vector<std::string> rovers = {"a", "bb", "ccc", "dddd"};
  const auto burst = telemetry::run_burst(store, {.rovers = rovers, .readings = 10'000, .duration = 0ms, .first_sample_ms = 60'000});
  CHECK(burst.acknowledged == 10'000);
  CHECK(burst.failed == 0);
  CHECK(burst.transactions < 10'000);  // group commit: several appends per transaction
  const auto head = store.last_position().value();
  CHECK(head == 10'000);
  CHECK(engine.health("minute_rollups")->position < head);  // the slow one is behind right after the burst

  // Stored: every position once, in order; every rover stream contiguous.
  std::uint64_t expect = 1;
  for (std::uint64_t from = 1;;) {
    auto batch = store.read_all(from, 3000).value();
    if (batch.events.empty()) break;
    for (const auto& e : batch.events) REQUIRE(e.position == expect++);
    from = batch.next_position;
  }
  CHECK(expect - 1 == 10'000);
  for (const auto& rover : rovers) {
    const auto events = store.read_stream(telemetry::rover_stream(rover)).value();
    CHECK(events.size() == 2'500);
    for (std::size_t i = 0; i < events.size(); ++i) REQUIRE(events[i].version == i + 1);
  }

  // Projected: both read models account for every reading.
  REQUIRE(ok(engine.wait_for("rover_latest", head, 30s)));
  REQUIRE(ok(engine.wait_for("minute_rollups", head, 60s)));
  engine.stop();
  const auto read = dir.path / "read.db";
  CHECK(scalar(read, "SELECT sum(readings) FROM rover_minutes") == 10'000);
  CHECK(scalar(read, "SELECT sum(sum_temperature_c) FROM rover_minutes") == doctest::Approx(burst.temperature_sum).epsilon(1e-9));
  CHECK(scalar(read, "SELECT sum(readings) FROM rover_latest") == 10'000);
  CHECK(scalar(read, "SELECT count(*) FROM rover_latest WHERE seq = 2500") == 4);
  // 2,500 samples at 10 Hz = 250 s of each rover's clock, from minute 1: minutes 1..5.
  CHECK(scalar(read, "SELECT count(*) FROM rover_minutes") == 4 * 5);
}

TEST_CASE("a command to a rover whose link is down is retried with growing backoff and delivered exactly once") {
  TempDir dir;
  evs::SqliteEventStore store({.path = dir.path / "events.db", .durability = evs::Durability::normal});
  telemetry::Radio radio;
  const auto t0 = std::chrono::steady_clock::now();
  radio.link_down_until("zhurong", t0 + 500ms);
  {
    telemetry::Uplink uplink(store, radio);
    evs::ProjectionEngine engine(store);
    engine.add(uplink, {.database = dir.path / "read.db",
                        .retry = {.max_attempts = 10, .initial_backoff = 20ms, .multiplier = 2.0, .max_backoff = 1s, .jitter = 0}});
    engine.start();
    const auto queued = telemetry::queue_command(store, "zhurong", "drive 3m north").value();
    REQUIRE(ok(engine.wait_for("uplink", queued.last_position, 20s)));
    engine.stop();
  }
  const auto attempts = radio.attempts();
  REQUIRE(attempts.size() >= 3);
  CHECK(radio.deliveries("drive 3m north") == 1);
  CHECK(attempts.back().delivered);
  CHECK(attempts.back().at >= t0 + 500ms);
  // Exponential backoff: the wait before each retry is at least the policy's (20 ms doubling, capped at 1 s,
  // no jitter). Only lower bounds: a loaded machine can make any wait longer, never shorter.
  std::chrono::milliseconds backoff = 20ms;
  for (std::size_t i = 1; i < attempts.size(); ++i, backoff = std::min<std::chrono::milliseconds>(backoff * 2, 1s))
    CHECK(attempts[i].at - attempts[i - 1].at >= backoff);
  const auto uplink_events = store.read_stream(telemetry::uplink_stream("zhurong")).value();
  REQUIRE(uplink_events.size() == 2);
  CHECK(uplink_events[1].type == "telemetry.command_delivered");
  CHECK(uplink_events[1].metadata.causation_id == uplink_events[0].event_id.to_string());

  // A new engine on the same checkpoint and inbox does not send it again.
  telemetry::Uplink again(store, radio);
  evs::ProjectionEngine engine(store);
  engine.add(again, {.database = dir.path / "read.db"});
  engine.start();
  REQUIRE(ok(engine.wait_for("uplink", store.last_position().value(), 10s)));
  engine.stop();
  CHECK(radio.deliveries("drive 3m north") == 1);
  CHECK(radio.attempts().size() == attempts.size());
}
