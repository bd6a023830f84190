// The domain rules (given/when/then on the aggregates) and the checkout's idempotent charging.
#include "commands.hpp"

#include <evs/eventstore/memory_event_store.hpp>
#include <evs/testing/aggregate_scenario.hpp>

#include <doctest/doctest.h>

using namespace checkout;
using evs::testing::AggregateScenario;

namespace {
OrderRequest request(std::string id, std::string sku = "BOOK", int quantity = 2) {
  return {std::move(id), "alice", "alice@example.com", std::move(sku), quantity, "4242-4242-4242-4242"};
}
const OrderPlaced placed{"o1", "alice", "alice@example.com", "BOOK", 2, 5000, "USD", "ch_1"};
}  // namespace

TEST_CASE("an order is placed with what was asked for and charged (once: see the checkout tests)") {
  AggregateScenario<Order>("o1").when([](Order& o) { return o.place(request("o1"), 5000, "USD", "ch_1"); }).then(placed);
}

TEST_CASE("an order needs a customer and a sensible quantity") {
  auto bad = request("o1", "BOOK", 0);
  AggregateScenario<Order>("o1").when([&](Order& o) { return o.place(bad, 0, "USD", "ch_1"); }).then_error("quantity");
  bad = request("o1");
  bad.customer.clear();
  AggregateScenario<Order>("o1").when([&](Order& o) { return o.place(bad, 0, "USD", "ch_1"); }).then_error("customer");
}

TEST_CASE("a placed order ships once, and a cancelled order cannot ship") {
  AggregateScenario<Order>("o1").given(placed).when([](Order& o) { return o.ship(); }).then(OrderShipped{"o1"});
  AggregateScenario<Order>("o1").given(placed, OrderShipped{"o1"}).when([](Order& o) { return o.ship(); }).then_nothing();
  AggregateScenario<Order>("o1")
      .given(placed, OrderCancelled{"o1", "out of stock"})
      .when([](Order& o) { return o.ship(); })
      .then_error("only a placed order can ship");
}

TEST_CASE("a refund is for the whole order and happens once, and a shipped order cannot be cancelled") {
  AggregateScenario<Order>("o1").given(placed).when([](Order& o) { return o.record_refund("re_1"); })
      .then(PaymentRefunded{"o1", 5000, "re_1"});
  AggregateScenario<Order>("o1").given(placed, PaymentRefunded{"o1", 5000, "re_1"})
      .when([](Order& o) { return o.record_refund("re_2"); }).then_nothing();
  AggregateScenario<Order>("o1").given(placed, OrderShipped{"o1"})
      .when([](Order& o) { return o.cancel("changed my mind"); }).then_error("only a placed order");
}

TEST_CASE("stock never overbooks") {
  AggregateScenario<Stock>("BOOK").given(Restocked{"BOOK", 3})
      .when([](Stock& s) { s.reserve("o1", 2); }).then(StockReserved{"BOOK", "o1", 2});
  AggregateScenario<Stock>("BOOK").given(Restocked{"BOOK", 3})
      .when([](Stock& s) { s.reserve("o1", 5); }).then(ReservationRejected{"BOOK", "o1", "only 3 left"});
}

TEST_CASE("a re-issued stock reservation (same command id) reserves once and gets its first answer") {
  evs::MemoryEventStore store;
  CardGateway gateway;
  Commands commands(store, gateway);
  commands.restock("BOOK", 3);
  const evs::Uuid command = evs::Uuid::generate();
  commands.reserve_stock({"o1", "BOOK", 2}, {.idempotency_key = command});
  commands.reserve_stock({"o1", "BOOK", 2}, {.idempotency_key = command});  // on the 1 left it would be rejected
  const auto events = store.read_stream("stock-BOOK").value();
  REQUIRE(events.size() == 2);
  CHECK(events[1].type == "checkout.stock_reserved");
  evs::Repository<Stock> stock(store);
  CHECK(stock.load("BOOK").value().state().available == 1);
}

TEST_CASE("the saga's commands, carried out: ship ships, refund refunds the charge once, cancel cancels") {
  evs::MemoryEventStore store;
  CardGateway gateway;
  Commands commands(store, gateway);
  evs::Repository<Order> orders(store);
  const std::string charge = commands.place_order(request("o1")).value();
  commands.ship({"o1"}, {});
  CHECK(orders.load("o1").value().state().status == OrderStatus::shipped);

  REQUIRE(commands.place_order(request("o2")));
  const evs::CommandOptions reissued{.idempotency_key = evs::Uuid::generate()};
  commands.refund({"o2"}, reissued);
  commands.refund({"o2"}, reissued);  // a re-issued refund: refunded once, recorded once
  commands.cancel({"o2", "out of stock"}, {});
  CHECK(gateway.refunds() == 1);
  CHECK(gateway.refunded_cents() == 5000);
  CHECK(orders.load("o2").value().state().status == OrderStatus::cancelled);
  CHECK(store.stream_version("order-o2").value() == 3);  // placed, refunded, cancelled
  CHECK_THROWS(commands.ship({"o2"}, {}));  // a cancelled order cannot ship: the engine would retry, then park
  CHECK_THROWS(commands.ship({"o9"}, {}));  // no such order
  CHECK(orders.load("o1").value().state().charge_id == charge);
}

TEST_CASE("checkout: a retried request is charged once and placed once") {
  evs::MemoryEventStore store;
  CardGateway gateway;
  Commands commands(store, gateway);
  const auto first = commands.place_order(request("o1"));
  const auto retry = commands.place_order(request("o1"));
  REQUIRE(first);
  REQUIRE(retry);
  CHECK(*first == *retry);
  CHECK(gateway.calls() == 2);
  CHECK(gateway.charges() == 1);
  CHECK(gateway.charged_cents() == 5000);
  CHECK(store.stream_version("order-o1").value() == 1);
  const auto stored = store.read_stream("order-o1").value().at(0);
  CHECK(stored.metadata.correlation_id == "o1");
  CHECK(stored.schema_version == 2);
  CHECK(evs::decode<OrderPlaced>(stored.payload, stored.encoding)->charge_id == *first);
  CHECK(evs::decode<OrderPlaced>(stored.payload, stored.encoding)->currency == catalog_currency);
  CHECK(stored.event_id == evs::command_event_id(evs::Uuid::name_based(order_requests, "o1"), 0));
}

TEST_CASE("checkout: an invalid order or a declined card charges nothing and stores nothing") {
  evs::MemoryEventStore store;
  CardGateway gateway;
  Commands commands(store, gateway);
  CHECK(commands.place_order(request("o1", "BOOK", 0)).error().what().find("quantity") != std::string::npos);
  CHECK(commands.place_order(request("o2", "SPACESHIP")).error().what().find("unknown sku") != std::string::npos);
  auto declined = request("o3");
  declined.card = CardGateway::declined_card;
  CHECK(commands.place_order(declined).error().what().find("card declined") != std::string::npos);
  CHECK(gateway.charges() == 0);
  CHECK(store.last_position().value() == 0);
}

TEST_CASE("the gateway refunds a charge once, however often it is asked") {
  CardGateway gateway;
  const auto charge = gateway.charge("o1", "4242", 900).value();
  CHECK(gateway.refund(charge).value() == gateway.refund(charge).value());
  CHECK(gateway.refunds() == 1);
  CHECK(gateway.refunded_cents() == 900);
  CHECK_FALSE(gateway.refund("ch_nope"));
}
