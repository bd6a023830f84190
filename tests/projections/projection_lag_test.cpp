// The lag of a projection, as the embedded health API and the standalone `evs projections` report it on one
// store: the same figures, also after events the projection does not handle.
#include "../support/child_process.hpp"
#include "../support/temp_dir.hpp"
#include "../support/test_events.hpp"
#include "projection_test_support.hpp"

#include <evs/eventstore/sqlite_event_store.hpp>
#include <evs/projections/engine.hpp>

#include <doctest/doctest.h>
#include <rapidjson/document.h>

#include <atomic>
#include <sstream>

namespace {

using namespace std::chrono_literals;

struct Deposits : evs::EffectHandler<Deposits, testdomain::Deposited> {
  static constexpr std::string_view name = "deposits";
  std::atomic<int> seen{0};
  void handle(const testdomain::Deposited&, const evs::RecordedEvent&) { ++seen; }
};

struct ToolRow {
  std::uint64_t position = 0;
  std::uint64_t lag_events = 0;
  double lag_seconds = 0;
  std::string state;
};

// `evs projections --json` on `db`: the row of projection `name`.
ToolRow standalone_row(const std::filesystem::path& db, const std::string& name) {
  auto child = evs::test::spawn_child(EVS_CLI_BINARY, {"projections", "--db", db.string(), "--json"}, {}, true);
  const std::string out = evs::test::read_to_end(child.out);
  REQUIRE(evs::test::wait_child(child.pid) == 0);
  std::istringstream lines(out);
  for (std::string line; std::getline(lines, line);) {
    rapidjson::Document d;
    d.Parse(line.c_str());
    CAPTURE(line);
    REQUIRE_FALSE(d.HasParseError());
    if (d["projection"].GetString() != name) continue;
    return {d["position"].GetUint64(), d["lag_events"].GetUint64(), d["lag_seconds"].GetDouble(), d["state"].GetString()};
  }
  FAIL("no row for " << name << " in: " << out);
  return {};
}

double age_of_event_at(evs::EventStore& store, std::uint64_t position) {
  const auto e = store.read_all(position, 1).value().events.at(0);
  return std::chrono::duration<double>(evs::Clock::now() - e.recorded_at).count();
}

}  // namespace

TEST_CASE("a projection past events it does not handle is caught up for health and for the standalone tool alike") {
  evs::test::TempDir dir;
  const auto db = dir / "events.db";
  evs::SqliteEventStore store({db, evs::Durability::normal});
  Deposits deposits;
  evs::ProjectionEngine engine(store);
  evs::ProjectionOptions po;
  po.database = db;  // the projection tables live in the store's file, where the tool looks with --db
  engine.add(deposits, po);
  engine.start();
  const auto first = store.append("acc-1", evs::ExpectedVersion::any(), std::vector{testdomain::deposit(5)}).value();
  REQUIRE(engine.wait_for("deposits", first.last_position, 20s));
  // Events of a type the projection does not handle, after it caught up: nothing for it to do.
  REQUIRE(store.append("acc-1", evs::ExpectedVersion::any(),
                       std::vector{testdomain::of_type("test.withdrawn"), testdomain::of_type("test.withdrawn")}));
  const std::uint64_t head = store.last_position().value();
  REQUIRE(evs::test::eventually([&] { return engine.health("deposits")->position == head; }));

  const auto embedded = engine.health("deposits").value();
  const auto standalone = standalone_row(db, "deposits");
  CHECK(embedded.lag_events == 0);
  CHECK(embedded.lag_seconds == 0);
  CHECK(standalone.position == head);
  CHECK(standalone.lag_events == embedded.lag_events);
  CHECK(standalone.lag_seconds == 0);
  CHECK(standalone.state == "idle");

  SUBCASE("behind: both count from the same position and age the same oldest unprocessed event") {
    engine.stop();
    REQUIRE(store.append("acc-1", evs::ExpectedVersion::any(), std::vector{testdomain::of_type("test.withdrawn")}));
    std::this_thread::sleep_for(50ms);  // so the handled event below is clearly younger than the oldest one
    REQUIRE(store.append("acc-1", evs::ExpectedVersion::any(), std::vector{testdomain::deposit(7)}));
    const auto tool = standalone_row(db, "deposits");
    const double oldest_age = age_of_event_at(store, head + 1);
    const auto health = engine.health("deposits").value();
    CHECK(tool.position == head);
    CHECK(health.position == head);
    CHECK(tool.lag_events == 2);
    CHECK(health.lag_events == tool.lag_events);
    CHECK(tool.state == "behind");
    // Measured after oldest_age, of the same event: at least as old.
    CHECK(health.lag_seconds >= oldest_age);
  }
  SUBCASE("stopping stores progress past unhandled events that was held back") {
    // Unhandled events keep coming: their progress is stored at most once per interval, and at stop.
    for (int i = 0; i < 3; ++i)
      REQUIRE(store.append("acc-1", evs::ExpectedVersion::any(), std::vector{testdomain::of_type("test.withdrawn")}));
    const std::uint64_t later = store.last_position().value();
    REQUIRE(evs::test::eventually([&] { return engine.health("deposits")->position == later; }));
    engine.stop();
    const auto tool = standalone_row(db, "deposits");
    CHECK(tool.position == later);
    CHECK(tool.lag_events == 0);
  }
}
