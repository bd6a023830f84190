// The checkout's events: what happened, in the past tense. Each is a plain struct, described and
// registered once (EVS_EVENT) with a stable name, a schema version (both are stored: never change them)
// and its members (a member left out is a compile error). A changed event keeps its older versions frozen
// under v1, v2, ... with an upcaster to the next one (EVS_UPCAST): the code only ever sees the current one.
#pragma once

#include <evs/core/event.hpp>
#include <evs/core/upcast.hpp>

#include <cstdint>
#include <string>

namespace checkout {

// --- Orders (stream "order-<order id>") ---

// Version 2: the total's currency (an ISO 4217 code, e.g. "USD").
struct OrderPlaced {
  std::string order_id;
  std::string customer;
  std::string email;
  std::string sku;
  std::int32_t quantity = 0;
  std::int64_t total_cents = 0;
  std::string currency;
  std::string charge_id;  // the card was charged before the order was placed
};
EVS_EVENT(OrderPlaced, "checkout.order_placed", 2,
          order_id, customer, email, sku, quantity, total_cents, currency, charge_id)

namespace v1 {  // frozen: what the shop stored before it recorded currencies (it sold in US dollars only)
struct OrderPlaced {
  std::string order_id;
  std::string customer;
  std::string email;
  std::string sku;
  std::int32_t quantity = 0;
  std::int64_t total_cents = 0;
  std::string charge_id;
};
EVS_EVENT(OrderPlaced, "checkout.order_placed", 1,
          order_id, customer, email, sku, quantity, total_cents, charge_id)
EVS_UPCAST(OrderPlaced, [](const OrderPlaced& e) {
  return checkout::OrderPlaced{e.order_id, e.customer, e.email, e.sku, e.quantity, e.total_cents, "USD", e.charge_id};
})
}  // namespace v1

struct OrderShipped {
  std::string order_id;
};
EVS_EVENT(OrderShipped, "checkout.order_shipped", 1, order_id)

struct PaymentRefunded {
  std::string order_id;
  std::int64_t amount_cents = 0;
  std::string refund_id;
};
EVS_EVENT(PaymentRefunded, "checkout.payment_refunded", 1, order_id, amount_cents, refund_id)

struct OrderCancelled {
  std::string order_id;
  std::string reason;
};
EVS_EVENT(OrderCancelled, "checkout.order_cancelled", 1, order_id, reason)

// --- Stock (stream "stock-<sku>") ---

struct Restocked {
  std::string sku;
  std::int32_t quantity = 0;
};
EVS_EVENT(Restocked, "checkout.restocked", 1, sku, quantity)

struct StockReserved {
  std::string sku;
  std::string order_id;
  std::int32_t quantity = 0;
};
EVS_EVENT(StockReserved, "checkout.stock_reserved", 1, sku, order_id, quantity)

struct ReservationRejected {
  std::string sku;
  std::string order_id;
  std::string reason;
};
EVS_EVENT(ReservationRejected, "checkout.reservation_rejected", 1, sku, order_id, reason)

}  // namespace checkout
