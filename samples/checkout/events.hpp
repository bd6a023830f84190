// The checkout's events: what happened, in the past tense. Each is a plain struct, described and
// registered once with a stable name and a schema version (both are stored: never change them).
#pragma once

#include <evs/core/event.hpp>

#include <cstdint>
#include <string>

namespace checkout {

// --- Orders (stream "order-<order id>") ---

struct OrderPlaced {
  std::string order_id;
  std::string customer;
  std::string email;
  std::string sku;
  std::int32_t quantity = 0;
  std::int64_t total_cents = 0;
  std::string charge_id;  // the card was charged before the order was placed
};
BOOST_DESCRIBE_STRUCT(OrderPlaced, (), (order_id, customer, email, sku, quantity, total_cents, charge_id))
EVS_EVENT(OrderPlaced, "checkout.order_placed", 1)

struct OrderShipped {
  std::string order_id;
};
BOOST_DESCRIBE_STRUCT(OrderShipped, (), (order_id))
EVS_EVENT(OrderShipped, "checkout.order_shipped", 1)

struct PaymentRefunded {
  std::string order_id;
  std::int64_t amount_cents = 0;
  std::string refund_id;
};
BOOST_DESCRIBE_STRUCT(PaymentRefunded, (), (order_id, amount_cents, refund_id))
EVS_EVENT(PaymentRefunded, "checkout.payment_refunded", 1)

struct OrderCancelled {
  std::string order_id;
  std::string reason;
};
BOOST_DESCRIBE_STRUCT(OrderCancelled, (), (order_id, reason))
EVS_EVENT(OrderCancelled, "checkout.order_cancelled", 1)

// --- Stock (stream "stock-<sku>") ---

struct Restocked {
  std::string sku;
  std::int32_t quantity = 0;
};
BOOST_DESCRIBE_STRUCT(Restocked, (), (sku, quantity))
EVS_EVENT(Restocked, "checkout.restocked", 1)

struct StockReserved {
  std::string sku;
  std::string order_id;
  std::int32_t quantity = 0;
};
BOOST_DESCRIBE_STRUCT(StockReserved, (), (sku, order_id, quantity))
EVS_EVENT(StockReserved, "checkout.stock_reserved", 1)

struct ReservationRejected {
  std::string sku;
  std::string order_id;
  std::string reason;
};
BOOST_DESCRIBE_STRUCT(ReservationRejected, (), (sku, order_id, reason))
EVS_EVENT(ReservationRejected, "checkout.reservation_rejected", 1)

}  // namespace checkout
