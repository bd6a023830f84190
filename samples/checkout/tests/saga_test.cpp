// The saga's paths, given/when/then (evs::testing::SagaScenario): happy, compensated, timed out, and a
// late answer after a timeout. The scenario owns an in-memory store and captures the commands the saga
// sends, so each test states the exact commands; no command handler runs.
#include "saga.hpp"

#include <evs/testing/saga_scenario.hpp>

#include <doctest/doctest.h>

using namespace checkout;
using namespace std::chrono_literals;
using Step = Fulfilment::Step;
using Scenario = evs::testing::SagaScenario<Fulfilment>;

namespace {
OrderPlaced placed(const std::string& id, int quantity = 1) {
  return {id, "alice", "alice@example.com", "POSTER", quantity, 900 * quantity, "USD", "ch-" + id};
}
}  // namespace

TEST_CASE("saga: an order placed asks for stock, with a deadline") {
  Scenario(10s)
      .when(placed("o1"))
      .then_commands(ReserveStock{"o1", "POSTER", 1})
      .then_status("o1", evs::SagaStatus::running)
      .then_pending("o1", Step::stock);
}

TEST_CASE("saga happy path: stock reserved -> ship, saga completed") {
  Scenario(10s)
      .given(placed("o1"))
      .when(StockReserved{"POSTER", "o1", 1})
      .then_commands(ShipOrder{"o1"})
      .then_status("o1", evs::SagaStatus::completed);
}

TEST_CASE("saga compensation: stock rejected -> refund the payment, then cancel the order") {
  Scenario scenario(10s);
  scenario.given(placed("o2", 5))
      .when(ReservationRejected{"POSTER", "o2", "only 1 left"})
      .then_commands(RefundPayment{"o2"}, CancelOrder{"o2", "only 1 left"})
      .then_status("o2", evs::SagaStatus::compensated)
      .then_compensated("o2", {Step::payment, Step::order});
  CHECK(scenario.process_manager().instance("o2")->reason == "only 1 left");
}

TEST_CASE("saga timeout: no answer before the deadline compensates too, and a late answer changes nothing") {
  Scenario scenario(10s);
  scenario.given(placed("o3"))
      .when_deadline_passes("o3", Step::stock)
      .then_commands(RefundPayment{"o3"}, CancelOrder{"o3", "timed out: no answer before the deadline"})
      .then_status("o3", evs::SagaStatus::compensated);
  scenario.when(StockReserved{"POSTER", "o3", 1}).then_no_commands().then_status("o3", evs::SagaStatus::compensated);
}

TEST_CASE("saga scenario: a failed expectation says what the saga did") {
  Scenario scenario(10s);
  scenario.given(placed("o4")).when(StockReserved{"POSTER", "o4", 1});
  try {
    scenario.then_commands(RefundPayment{"o4"});
    FAIL("then_commands should have failed");
  } catch (const evs::testing::ScenarioFailure& e) {
    CHECK(std::string(e.what()) ==
          R"(expected commands [RefundPayment {"order_id":"o4"}], but the saga sent [ShipOrder {"order_id":"o4"}])");
  }
  CHECK_THROWS_AS(scenario.when_deadline_passes("o4", Step::stock), evs::testing::ScenarioFailure);  // not pending
}
