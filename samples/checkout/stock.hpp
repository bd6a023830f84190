// The Stock aggregate: how many units of one sku are left. Reservations never overbook. A re-issued
// reservation reserves once because Commands::reserve_stock runs it with a command id, not because the
// aggregate remembers the orders it answered.
#pragma once

#include "events.hpp"

#include <evs/core/aggregate.hpp>

namespace checkout {

struct StockState {
  std::int32_t available = 0;
};
BOOST_DESCRIBE_STRUCT(StockState, (), (available))

class Stock : public evs::Aggregate<Stock, StockState, Restocked, StockReserved, ReservationRejected> {
 public:
  static constexpr std::string_view category = "stock";
  using Aggregate::Aggregate;

  void restock(std::int32_t quantity) { raise(Restocked{id(), quantity}); }

  void reserve(const std::string& order_id, std::int32_t quantity) {
    if (quantity > state().available)
      raise(ReservationRejected{id(), order_id, "only " + std::to_string(state().available) + " left"});
    else
      raise(StockReserved{id(), order_id, quantity});
  }

 private:
  friend evs::AggregateAccess;
  void apply(const Restocked& e) { state_.available += e.quantity; }
  void apply(const StockReserved& e) { state_.available -= e.quantity; }
  void apply(const ReservationRejected&) {}
};

}  // namespace checkout
