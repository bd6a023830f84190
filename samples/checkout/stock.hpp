// The Stock aggregate: how many units of one sku are left. Reservations never overbook, and reserving
// twice for one order reserves once (the saga may re-issue a command).
#pragma once

#include "events.hpp"

#include <evs/core/aggregate.hpp>

#include <map>

namespace checkout {

struct StockState {
  std::int32_t available = 0;
  std::map<std::string, bool> answered;  // order id -> reserved (true) or rejected (false)
};
BOOST_DESCRIBE_STRUCT(StockState, (), (available, answered))

class Stock : public evs::Aggregate<Stock, StockState, Restocked, StockReserved, ReservationRejected> {
 public:
  static constexpr std::string_view category = "stock";
  using Aggregate::Aggregate;

  void restock(std::int32_t quantity) { raise(Restocked{id(), quantity}); }

  void reserve(const std::string& order_id, std::int32_t quantity) {
    if (state().answered.contains(order_id)) return;
    if (quantity > state().available)
      raise(ReservationRejected{id(), order_id, "only " + std::to_string(state().available) + " left"});
    else
      raise(StockReserved{id(), order_id, quantity});
  }

 private:
  friend evs::AggregateAccess;
  void apply(const Restocked& e) { state_.available += e.quantity; }
  void apply(const StockReserved& e) {
    state_.available -= e.quantity;
    state_.answered[e.order_id] = true;
  }
  void apply(const ReservationRejected& e) { state_.answered[e.order_id] = false; }
};

}  // namespace checkout
