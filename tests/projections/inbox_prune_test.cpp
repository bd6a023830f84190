// The side-effect inbox is pruned: rows older than ProjectionOptions::inbox_retention go, except those of
// events that have a dead-letter row (an operator may queue them again, and the re-delivery consults the
// inbox). The retention here is short; the test waits past it and never asserts on elapsed time.
#include "../support/mailer.hpp"
#include "../support/temp_dir.hpp"
#include "../support/test_events.hpp"
#include "projection_test_support.hpp"

#include <evs/eventstore/sqlite_event_store.hpp>
#include <evs/projections/engine.hpp>

#include <doctest/doctest.h>

#include <atomic>
#include <thread>

namespace {

using namespace std::chrono_literals;
using evs::test::Mailer;
using evs::test::RawDb;

}  // namespace

TEST_CASE("inbox rows older than the retention are pruned, except those of events with a dead letter") {
  evs::test::TempDir dir;
  const auto db = dir / "events.db";
  evs::SqliteEventStore store({db, evs::Durability::normal});
  Mailer mailer;
  evs::ProjectionEngine engine(store);
  evs::ProjectionOptions po;
  po.database = db;
  po.retry.max_attempts = 1;
  po.inbox_retention = 100ms;
  engine.add(mailer, po);
  engine.start();
  RawDb raw(db);
  const auto inbox = [&] {
    std::vector<std::string> ids;
    for (const auto& row : raw.query("SELECT hex(event_id) FROM evs_inbox WHERE projection = 'mailer' ORDER BY 1"))
      ids.push_back(row.at(0));
    return ids;
  };
  const auto hex_of = [&](std::uint64_t position) {
    auto read = store.read_all(position, 1);
    REQUIRE(read);
    REQUIRE(read->events.size() == 1);
    std::string hex;
    for (std::uint8_t b : read->events.front().event_id.bytes()) {
      constexpr char digits[] = "0123456789ABCDEF";
      hex += digits[b >> 4];
      hex += digits[b & 0xf];
    }
    return hex;
  };

  // One effect done, one parked and then retried by an operator: both have inbox rows.
  const auto old = store.append("acc-1", evs::ExpectedVersion::any(), std::vector{testdomain::deposit(5, "ok")});
  const auto bad = store.append("acc-2", evs::ExpectedVersion::any(), std::vector{testdomain::deposit(7, "bad")});
  REQUIRE(old);
  REQUIRE(bad);
  REQUIRE(engine.wait_for("mailer", bad->last_position, 20s));
  REQUIRE(engine.health("mailer")->dead_letters == 1);
  mailer.broken = false;
  raw.exec("UPDATE evs_dead_letters SET status = 'retry'");
  REQUIRE(store.append("other", evs::ExpectedVersion::any(), std::vector{testdomain::of_type("test.withdrawn")}));
  REQUIRE(evs::test::eventually([&] { return inbox().size() == 2; }));
  const std::string old_id = hex_of(old->last_position);
  const std::string bad_id = hex_of(bad->last_position);

  // Past the retention, the next effect prunes first: the old row goes, the dead-lettered one stays.
  std::this_thread::sleep_for(300ms);
  const auto fresh = store.append("acc-3", evs::ExpectedVersion::any(), std::vector{testdomain::deposit(9, "ok")});
  REQUIRE(fresh);
  REQUIRE(engine.wait_for("mailer", fresh->last_position, 20s));
  engine.stop();
  const auto left = inbox();
  CHECK(std::find(left.begin(), left.end(), old_id) == left.end());
  CHECK(std::find(left.begin(), left.end(), bad_id) != left.end());
  CHECK(std::find(left.begin(), left.end(), hex_of(fresh->last_position)) != left.end());
  CHECK(left.size() == 2);
  CHECK(mailer.sent == 3);
}

TEST_CASE("a zero inbox retention keeps every inbox row") {
  evs::test::TempDir dir;
  const auto db = dir / "events.db";
  evs::SqliteEventStore store({db, evs::Durability::normal});
  Mailer mailer;
  evs::ProjectionEngine engine(store);
  evs::ProjectionOptions po;
  po.database = db;
  po.inbox_retention = 0ms;
  engine.add(mailer, po);
  engine.start();
  const auto first = store.append("acc-1", evs::ExpectedVersion::any(), std::vector{testdomain::deposit(5, "ok")});
  REQUIRE(first);
  REQUIRE(engine.wait_for("mailer", first->last_position, 20s));
  std::this_thread::sleep_for(50ms);  // rows now older than any positive retention this test could imply
  const auto second = store.append("acc-2", evs::ExpectedVersion::any(), std::vector{testdomain::deposit(6, "ok")});
  REQUIRE(second);
  REQUIRE(engine.wait_for("mailer", second->last_position, 20s));
  engine.stop();
  RawDb raw(db);
  CHECK(raw.scalar("SELECT count(*) FROM evs_inbox WHERE projection = 'mailer'") == 2);
}
