// The saga's paths, given/when/then (evs::testing::SagaScenario) against the real command handlers on an
// in-memory store: happy, compensated, timed out, and a late answer after a timeout.
#include "saga.hpp"

#include <evs/eventstore/memory_event_store.hpp>
#include <evs/testing/saga_scenario.hpp>

#include <doctest/doctest.h>

using namespace checkout;
using namespace std::chrono_literals;

namespace {

// An in-memory shop with one POSTER in stock and the saga under test.
struct World {
  evs::MemoryEventStore store;
  CardGateway gateway;
  Commands commands{store, gateway};
  Fulfilment saga{store, commands, 10s};
  evs::testing::SagaScenario<Fulfilment> scenario{saga, store};

  World() { commands.restock("POSTER", 1); }

  // Places an order through the real checkout and returns the OrderPlaced it stored.
  OrderPlaced place(const std::string& id, int quantity = 1) {
    commands.place_order({id, "alice", "alice@example.com", "POSTER", quantity, "4242"}).value();
    const auto e = store.read_stream("order-" + id).value().at(0);
    return evs::decode<OrderPlaced>(e.payload, e.encoding).value();
  }
  OrderStatus status(const std::string& id) { return evs::Repository<Order>(store).load(id)->state().status; }
};

}  // namespace

TEST_CASE("saga: an order placed asks for stock, with a deadline") {
  World w;
  w.scenario.when(w.place("o1"))
      .then_commands({"ReserveStock"})
      .then_status("o1", evs::SagaStatus::running)
      .then_pending("o1", "stock");
  CHECK(w.store.stream_version("stock-POSTER").value() == 2);  // the real stock service answered
}

TEST_CASE("saga happy path: stock reserved -> ship, saga completed") {
  World w;
  w.scenario.given(w.place("o1"))
      .when(StockReserved{"POSTER", "o1", 1})
      .then_commands({"ShipOrder"})
      .then_status("o1", evs::SagaStatus::completed);
  CHECK(w.status("o1") == OrderStatus::shipped);
  CHECK(w.gateway.refunds() == 0);
}

TEST_CASE("saga compensation: stock rejected -> refund the payment, then cancel the order") {
  World w;
  w.scenario.given(w.place("o2", 5))
      .when(ReservationRejected{"POSTER", "o2", "only 1 left"})
      .then_commands({"RefundPayment", "CancelOrder"})
      .then_status("o2", evs::SagaStatus::compensated)
      .then_compensated("o2", {"payment", "order"});
  CHECK(w.gateway.refunds() == 1);
  CHECK(w.gateway.refunded_cents() == w.gateway.charged_cents());
  CHECK(w.status("o2") == OrderStatus::cancelled);
  CHECK(w.saga.instance("o2")->reason == "only 1 left");
}

TEST_CASE("saga timeout: no answer before the deadline compensates too, and a late answer changes nothing") {
  World w;
  w.commands.unreachable_sku = "POSTER";  // the request is lost
  w.scenario.given(w.place("o3"))
      .when_deadline_passes("o3", "stock")
      .then_commands({"RefundPayment", "CancelOrder"})
      .then_status("o3", evs::SagaStatus::compensated);
  CHECK(w.saga.instance("o3")->reason.starts_with("timed out"));
  CHECK(w.status("o3") == OrderStatus::cancelled);

  w.scenario.when(StockReserved{"POSTER", "o3", 1}).then_no_commands().then_status("o3", evs::SagaStatus::compensated);
}

TEST_CASE("saga scenario: a failed expectation says what the saga did") {
  World w;
  w.scenario.given(w.place("o4")).when(StockReserved{"POSTER", "o4", 1});
  try {
    w.scenario.then_commands({"RefundPayment"});
    FAIL("then_commands should have failed");
  } catch (const evs::testing::ScenarioFailure& e) {
    CHECK(std::string(e.what()) == "expected commands [RefundPayment], but the saga issued [ShipOrder]");
  }
  CHECK_THROWS_AS(w.scenario.when_deadline_passes("o4", "stock"), evs::testing::ScenarioFailure);  // not pending
}
