// The Order aggregate: the rules an order obeys. It decides, then emits events or rejects the command;
// its state changes only by applying them.
#pragma once

#include "events.hpp"

#include <evs/core/aggregate.hpp>

#include <boost/describe/enum.hpp>

namespace checkout {

// What the customer asked for, before any card was charged.
struct OrderRequest {
  std::string order_id;  // chosen by the client: a retried request carries the same id
  std::string customer;
  std::string email;
  std::string sku;
  std::int32_t quantity = 0;
  std::string card;
};

// The rules that need no state: checked before the card is charged.
inline evs::Result<void> validate(const OrderRequest& r) {
  if (r.order_id.empty()) return evs::reject("an order needs an id");
  if (r.customer.empty()) return evs::reject("an order needs a customer");
  if (r.quantity <= 0 || r.quantity > 10) return evs::reject("quantity must be between 1 and 10");
  return {};
}

enum class OrderStatus : std::uint8_t { none, placed, shipped, cancelled };
BOOST_DESCRIBE_ENUM(OrderStatus, none, placed, shipped, cancelled)

struct OrderState {
  OrderStatus status = OrderStatus::none;
  std::int64_t total_cents = 0;
  std::string currency;
  std::string charge_id;
  bool refunded = false;
};
BOOST_DESCRIBE_STRUCT(OrderState, (), (status, total_cents, currency, charge_id, refunded))

class Order : public evs::Aggregate<Order, OrderState, OrderPlaced, OrderShipped, PaymentRefunded, OrderCancelled> {
 public:
  static constexpr std::string_view category = "order";
  using Aggregate::Aggregate;

  // Placed once: Commands::place_order runs this with evs::create, keyed by the order id, so a retried
  // request gets its first answer and nothing else can place an order that exists.
  evs::Result<void> place(const OrderRequest& r, std::int64_t total_cents, std::string currency, std::string charge_id) {
    if (auto ok = validate(r); !ok) return ok;
    return emit(OrderPlaced{id(), r.customer, r.email, r.sku, r.quantity, total_cents, std::move(currency),
                            std::move(charge_id)});
  }
  evs::Result<void> ship() {
    if (state().status == OrderStatus::shipped) return {};
    if (state().status != OrderStatus::placed) return evs::reject("only a placed order can ship");
    return emit(OrderShipped{id()});
  }
  evs::Result<void> record_refund(std::string refund_id) {
    if (state().status == OrderStatus::none) return evs::reject("no such order");
    if (state().refunded) return {};
    return emit(PaymentRefunded{id(), state().total_cents, std::move(refund_id)});
  }
  evs::Result<void> cancel(std::string reason) {
    if (state().status == OrderStatus::cancelled) return {};
    if (state().status != OrderStatus::placed) return evs::reject("only a placed order can be cancelled");
    return emit(OrderCancelled{id(), std::move(reason)});
  }

 private:
  friend evs::AggregateAccess;
  void apply(const OrderPlaced& e) {
    state_.status = OrderStatus::placed;
    state_.total_cents = e.total_cents;
    state_.currency = e.currency;
    state_.charge_id = e.charge_id;
  }
  void apply(const OrderShipped&) { state_.status = OrderStatus::shipped; }
  void apply(const PaymentRefunded&) { state_.refunded = true; }
  void apply(const OrderCancelled&) { state_.status = OrderStatus::cancelled; }
};

}  // namespace checkout
