// The read models, the side effects and the choreographed services, one event at a time (given/when/then
// on each projection, through the same dispatch path and SQL session as the engine).
#include "choreography.hpp"
#include "effects.hpp"
#include "fraud.hpp"
#include "read_models.hpp"

#include <evs/eventstore/memory_event_store.hpp>
#include <evs/testing/projection_scenario.hpp>

#include <doctest/doctest.h>

using namespace checkout;
using namespace std::chrono_literals;
using evs::testing::ProjectionScenario;
using evs::testing::recorded;

namespace {
OrderPlaced placed(std::string id, std::string customer, std::int64_t cents, std::string email = "a@example.com") {
  return {std::move(id), std::move(customer), std::move(email), "BOOK", 2, cents, "USD", "ch_1"};
}
// An event recorded at `t` (RevenuePerDay counts by the day an event was recorded).
template <class E>
evs::testing::Recorded<E> at(evs::Timestamp t, E e) {
  return recorded(std::move(e), {.recorded_at = t});
}
constexpr evs::Timestamp nov22{std::chrono::sys_days{std::chrono::year{2026} / 11 / 22}};
}  // namespace

TEST_CASE("orders by customer: a placed order is listed, then shipped or cancelled") {
  ProjectionScenario<OrdersByCustomer>()
      .given(placed("o1", "alice", 5000), placed("o2", "bob", 2500), placed("o3", "alice", 900))
      .when(OrderShipped{"o1"})
      .then_rows("SELECT order_id, customer, sku, quantity, total_cents, currency, status FROM orders ORDER BY order_id",
                 {{"o1", "alice", "BOOK", 2, 5000, "USD", "shipped"},
                  {"o2", "bob", "BOOK", 2, 2500, "USD", "placed"},
                  {"o3", "alice", "BOOK", 2, 900, "USD", "placed"}})
      .when(OrderCancelled{"o3", "out of stock"})
      .then_rows("SELECT order_id, status FROM orders WHERE customer = 'alice' ORDER BY order_id",
                 {{"o1", "shipped"}, {"o3", "cancelled"}});
}

TEST_CASE("orders by customer: the currency is the event's, and an order stored before currencies (v1) is in USD") {
  auto in_euros = placed("o1", "alice", 5000);
  in_euros.currency = "EUR";
  ProjectionScenario<OrdersByCustomer>()
      .given(in_euros)
      .when(v1::OrderPlaced{"o0", "bob", "b@example.com", "MUG", 1, 1200, "ch_0"})
      .then_rows("SELECT order_id, customer, sku, total_cents, currency, status FROM orders ORDER BY order_id",
                 {{"o0", "bob", "MUG", 1200, "USD", "placed"}, {"o1", "alice", "BOOK", 5000, "EUR", "placed"}});
}

TEST_CASE("revenue per day: orders and refunds count on the UTC day they were recorded") {
  ProjectionScenario<RevenuePerDay>()
      .given(at(nov22 + 10h, placed("o1", "alice", 5000)), at(nov22 + 23h + 59min, placed("o2", "bob", 2500)))
      .when(at(nov22 + 24h, PaymentRefunded{"o1", 5000, "re_1"}))
      .then_rows("SELECT day, orders, gross_cents, refunded_cents FROM revenue_per_day ORDER BY day",
                 {{"2026-11-22", 2, 7500, 0}, {"2026-11-23", 0, 0, 5000}});
}

TEST_CASE("stock levels: restocks add to the available stock, reservations move it to reserved") {
  ProjectionScenario<StockLevels>()
      .given(Restocked{"BOOK", 10}, Restocked{"MUG", 3}, Restocked{"BOOK", 5})
      .when(StockReserved{"BOOK", "o1", 4})
      .then_rows("SELECT sku, available, reserved FROM stock_levels ORDER BY sku", {{"BOOK", 11, 4}, {"MUG", 3, 0}});
}

TEST_CASE("fraud detection flags orders from 200.00 up, and nothing smaller") {
  ProjectionScenario<FraudDetection>()
      .given(placed("o1", "alice", FraudDetection::big_order_cents - 1), placed("o2", "bob", FraudDetection::big_order_cents))
      .when(placed("o3", "carol", 90'000))
      .then_rows("SELECT order_id, customer, total_cents FROM fraud_flags ORDER BY order_id",
                 {{"o2", "bob", 20'000}, {"o3", "carol", 90'000}});
}

TEST_CASE("the confirmation email goes out once per event, and a failure is an error the engine retries") {
  MailServer mail;
  ProjectionScenario<EmailConfirmation> s(mail);
  const evs::Uuid id = evs::Uuid::generate();
  s.given(recorded(placed("o1", "alice", 5000), {.event_id = id}));
  CHECK(mail.sent() == 1);
  s.when(recorded(placed("o1", "alice", 5000), {.event_id = id}));  // redelivered: the same message id
  CHECK(mail.sent() == 1);
  CHECK(mail.sent_twice() == 1);  // the fake saw it twice; a real server dedupes by message id
  mail.go_down_for(1);
  s.when(placed("o2", "bob", 900)).then_error("mail server unreachable");
  s.when(placed("o3", "carol", 900, "no-at-sign")).then_error("no such mailbox: no-at-sign");
  CHECK(mail.sent() == 1);
}

TEST_CASE("a shipped order goes on the warehouse's pick list") {
  Warehouse warehouse;
  ProjectionScenario<WarehouseNotification>(warehouse).given(OrderShipped{"o1"}).when(OrderShipped{"o2"});
  CHECK(warehouse.orders() == 2);
  CHECK(warehouse.picked_twice() == 0);
}

TEST_CASE("choreography: each service answers the event before it, linked to its cause") {
  evs::MemoryEventStore store;
  CardGateway gateway;
  Commands commands(store, gateway);
  commands.restock("BOOK", 5);
  const OrderRequest request{"o1", "alice", "alice@example.com", "BOOK", 2, "4242-4242-4242-4242"};
  REQUIRE(commands.place_order(request));
  const auto last = [&](const std::string& stream) { return store.read_stream(stream).value().back(); };
  const evs::RecordedEvent order_placed = last("order-o1");

  // OrderPlaced -> StockReserved, once even when OrderPlaced is delivered again.
  ProjectionScenario<choreography::StockService> stock(commands);
  const auto redelivered = recorded(placed("o1", "alice", 5000), {.stream_id = "order-o1", .metadata = {.correlation_id = "o1"}, .event_id = order_placed.event_id});
  stock.given(redelivered).when(redelivered);
  CHECK(store.read_stream("stock-BOOK").value().size() == 2);  // Restocked, StockReserved
  const evs::RecordedEvent reserved = last("stock-BOOK");
  CHECK(reserved.type == evs::event_info_v<StockReserved>.name);
  CHECK(reserved.metadata.correlation_id == "o1");
  CHECK(reserved.metadata.causation_id == order_placed.event_id.to_string());

  // StockReserved -> OrderShipped.
  ProjectionScenario<choreography::ShippingService>(commands).when(StockReserved{"BOOK", "o1", 2});
  CHECK(last("order-o1").type == evs::event_info_v<OrderShipped>.name);

  // ReservationRejected -> refund and cancel (the compensation).
  REQUIRE(commands.place_order({"o2", "bob", "bob@example.com", "BOOK", 1, "4242-4242-4242-4242"}));
  ProjectionScenario<choreography::PaymentService>(commands).when(ReservationRejected{"BOOK", "o2", "only 3 left"});
  const auto o2 = store.read_stream("order-o2").value();
  REQUIRE(o2.size() == 3);
  CHECK(o2[1].type == evs::event_info_v<PaymentRefunded>.name);
  CHECK(o2[2].type == evs::event_info_v<OrderCancelled>.name);
  CHECK(gateway.refunds() == 1);
}
