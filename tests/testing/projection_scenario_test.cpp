#include "../support/test_events.hpp"

#include <evs/testing/projection_scenario.hpp>

#include <doctest/doctest.h>

#include <stdexcept>

using evs::testing::ProjectionScenario;
using evs::testing::recorded;
using evs::testing::ScenarioFailure;
using testdomain::Deposited;
using testdomain::Withdrawn;

namespace {

// Both handler forms in one SQL projection: Deposited without the envelope, Withdrawn with it.
class Ledger : public evs::SqlProjection<Ledger, Deposited, Withdrawn> {
 public:
  static constexpr std::string_view name = "ledger";
  void setup(evs::SqlSession& db) {
    db.exec("CREATE TABLE IF NOT EXISTS ledger (memo TEXT, cents INTEGER NOT NULL, stream TEXT, version INTEGER, "
            "position INTEGER, recorded_at INTEGER, correlation TEXT, event_id TEXT)");
  }
  void handle(const Deposited& e, evs::SqlSession& db) {
    db.exec("INSERT INTO ledger (memo, cents) VALUES (?1, ?2)", {e.memo, e.cents});
  }
  void handle(const Withdrawn& e, const evs::RecordedEvent& m, evs::SqlSession& db) {
    db.exec("INSERT INTO ledger VALUES (NULL, ?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            {-e.cents, m.stream_id, static_cast<std::int64_t>(m.version), static_cast<std::int64_t>(m.position),
             static_cast<std::int64_t>(m.recorded_at.time_since_epoch().count()), m.metadata.correlation_id,
             m.event_id.to_string()});
    if (e.cents < 0) throw std::runtime_error("negative withdrawal");  // after writing: the write must not stay
    if (e.cents == 999) db.exec("COMMIT");  // ends the engine's transaction: refused
  }
};

// An in-memory view, both forms; Deposited has both, so the one with the envelope must be the one called.
class Totals : public evs::MemoryProjection<Totals, Deposited, Withdrawn> {
 public:
  static constexpr std::string_view name = "totals";
  void handle(const Deposited&) { ++plain_calls; }
  void handle(const Deposited& e, const evs::RecordedEvent& m) {
    balance += e.cents;
    last_stream = m.stream_id;
  }
  void handle(const Withdrawn& e) { balance -= e.cents; }
  std::int64_t balance = 0;
  int plain_calls = 0;
  std::string last_stream;
};

// An effect handler built from constructor arguments.
class Notifier : public evs::EffectHandler<Notifier, Withdrawn> {
 public:
  static constexpr std::string_view name = "notifier";
  explicit Notifier(std::vector<std::int64_t>& sent) : sent_(sent) {}
  void handle(const Withdrawn& e) {
    if (e.cents > 1000) throw std::runtime_error("gateway refused " + std::to_string(e.cents));
    sent_.push_back(e.cents);
  }

 private:
  std::vector<std::int64_t>& sent_;
};

constexpr std::string_view all_rows = "SELECT memo, cents FROM ledger ORDER BY rowid";

}  // namespace

TEST_CASE("a projection scenario runs setup, then the given and when events, and compares rows in order") {
  ProjectionScenario<Ledger>().then_rows(all_rows, {});  // setup ran: the table exists, empty
  ProjectionScenario<Ledger>()
      .given(Deposited{100, "pay"}, Deposited{50, "tip"})
      .when(Withdrawn{30})
      .then_rows(all_rows, {{"pay", 100}, {"tip", 50}, {nullptr, -30}})
      .when(Deposited{1, "more"})
      .then_rows("SELECT sum(cents) FROM ledger", {{121}});
}

TEST_CASE("then_rows fails on other rows, another order or another value type, showing both tables") {
  const auto then_rows = [](std::string_view sql, const std::vector<evs::SqlRow>& expected) {
    ProjectionScenario<Ledger>().given(Deposited{100, "pay"}, Deposited{50, "it's"}).then_rows(sql, expected);
  };
  CHECK_THROWS_WITH_AS(then_rows(all_rows, {{"pay", 100}, {"it's", 51}}),
                       "then_rows SELECT memo, cents FROM ledger ORDER BY rowid\n"
                       "expected 2 rows:\n"
                       "  | 'pay'   | 100 |\n"
                       "  | 'it''s' | 51  |\n"
                       "but got 2 rows:\n"
                       "  | 'pay'   | 100 |\n"
                       "  | 'it''s' | 50  |\n",
                       ScenarioFailure);
  CHECK_THROWS_AS(then_rows(all_rows, {{"it's", 50}, {"pay", 100}}), ScenarioFailure);  // order
  CHECK_THROWS_AS(then_rows(all_rows, {{"pay", 100}}), ScenarioFailure);               // a row missing
  CHECK_THROWS_WITH_AS(then_rows("SELECT sum(cents) FROM ledger", {{150.0}}),
                       doctest::Contains("expected 1 row:\n  | 150.0 |\nbut got 1 row:\n  | 150   |"),
                       ScenarioFailure);
  CHECK_THROWS_WITH_AS(then_rows("SELECT 'x', NULL, x'0aff'", {}),
                       doctest::Contains("expected 0 rows:\n  (no rows)\nbut got 1 row:\n  | 'x' | NULL | x'0aff' |"),
                       ScenarioFailure);
  CHECK_THROWS_WITH_AS(then_rows("SELECT nope FROM ledger", {}), doctest::Contains("the query failed"),
                       ScenarioFailure);
}

TEST_CASE("a projection scenario gives events an envelope: positions, streams, versions, times, metadata, ids") {
  const evs::Timestamp t{std::chrono::sys_days{std::chrono::year{2025} / 3 / 4}};
  const evs::Uuid id = evs::Uuid::generate();
  const auto micros = [](evs::Timestamp ts) { return static_cast<std::int64_t>(ts.time_since_epoch().count()); };
  const std::string first_id = evs::Uuid::name_based(evs::Uuid{}, "evs.testing.event-1").to_string();
  ProjectionScenario<Ledger>()
      .given(Withdrawn{1})
      .in_stream("acc-a")
      .given(Withdrawn{2}, recorded(Withdrawn{3}, {.stream_id = "acc-b", .recorded_at = t,
                                                    .metadata = {.correlation_id = "c-1"}, .event_id = id}))
      .when(Withdrawn{4})
      .then_rows("SELECT cents, stream, version, position, recorded_at, correlation FROM ledger ORDER BY position",
                 {{-1, "test-1", 1, 1, micros(ProjectionScenario<Ledger>::default_time), ""},
                  {-2, "acc-a", 1, 2, micros(ProjectionScenario<Ledger>::default_time), ""},
                  {-3, "acc-b", 1, 3, micros(t), "c-1"},
                  {-4, "acc-a", 2, 4, micros(ProjectionScenario<Ledger>::default_time), ""}})
      .then_rows("SELECT event_id FROM ledger WHERE position IN (1, 3) ORDER BY position", {{first_id}, {id.to_string()}});
  // Derived ids are distinct.
  ProjectionScenario<Ledger>().given(Withdrawn{1}, Withdrawn{2}).then_rows("SELECT count(DISTINCT event_id) FROM ledger", {{2}});
}

TEST_CASE("events reach the projection through the real dispatch path, in either encoding") {
  ProjectionScenario<Ledger>()
      .given(recorded(Deposited{7, "json"}, {.encoding = evs::Encoding::json}))
      .then_rows(all_rows, {{"json", 7}});
}

TEST_CASE("a handler that throws: then_error matches it and its writes are rolled back") {
  ProjectionScenario<Ledger>()
      .given(Deposited{100, "pay"})
      .when(Withdrawn{-5})
      .then_error("negative withdrawal")
      .then_rows(all_rows, {{"pay", 100}});
  ProjectionScenario<Ledger>().when(Withdrawn{999}).then_error("ended the read model's transaction");
}

TEST_CASE("a projection scenario fails on an unexpected handler error, a missing one, or a failing given") {
  CHECK_THROWS_WITH_AS(ProjectionScenario<Ledger>().when(Withdrawn{-5}).then_rows(all_rows, {}),
                       doctest::Contains("the handler of test.withdrawn failed: negative withdrawal"), ScenarioFailure);
  CHECK_THROWS_WITH_AS(ProjectionScenario<Ledger>().when(Withdrawn{5}).then_error("negative"),
                       "expected an error containing 'negative', but test.withdrawn was handled", ScenarioFailure);
  CHECK_THROWS_WITH_AS(ProjectionScenario<Ledger>().when(Withdrawn{-5}).then_error("positive"),
                       doctest::Contains("got: negative withdrawal"), ScenarioFailure);
  CHECK_THROWS_WITH_AS(ProjectionScenario<Ledger>().given(Withdrawn{-5}),
                       "given test.withdrawn: negative withdrawal", ScenarioFailure);
  CHECK_THROWS_AS(ProjectionScenario<Ledger>().then_error("x"), ScenarioFailure);  // before when
}

TEST_CASE("memory views: then_view compares what the view computes, and prints both sides") {
  ProjectionScenario<Totals>()
      .given(Deposited{100, ""}, recorded(Deposited{20, ""}, {.stream_id = "acc-9"}))
      .when(Withdrawn{30})
      .then_view([](const Totals& t) { return t.balance; }, 90)
      .then_view([](const Totals& t) { return t.last_stream; }, "acc-9")
      .then_view([](const Totals& t) { return t.plain_calls; }, 0);  // the envelope form wins
  CHECK_THROWS_WITH_AS(
      ProjectionScenario<Totals>().given(Deposited{100, ""}).then_view([](const Totals& t) { return t.balance; }, 99),
      "then_view: expected 99, got 100", ScenarioFailure);
}

TEST_CASE("effect handlers are built from the scenario's constructor arguments") {
  std::vector<std::int64_t> sent;
  ProjectionScenario<Notifier> s(sent);
  s.given(Withdrawn{5}).when(Withdrawn{5000}).then_error("gateway refused 5000");
  CHECK(sent == std::vector<std::int64_t>{5});
  s.when(Withdrawn{6});
  CHECK(sent == std::vector<std::int64_t>{5, 6});
}
