// The orchestrated saga: one coordinator per order that knows the whole flow.
//
//   payment (done by the checkout) -> reserve stock (must answer in time) -> ship
//
// When the stock cannot be reserved, or the reservation does not answer in time, the completed steps are
// compensated, newest first: the payment is refunded, then the order cancelled. Each instance keeps its
// state in its own stream ("fulfilment-<order id>"), which is also its audit trail.
#pragma once

#include "commands.hpp"

#include <evs/projections/process_manager.hpp>

namespace checkout {

struct FulfilmentData {
  std::string order_id;
  std::string sku;
  std::int32_t quantity = 0;
};
BOOST_DESCRIBE_STRUCT(FulfilmentData, (), (order_id, sku, quantity))

enum class FulfilmentStep { order, payment, stock };
BOOST_DESCRIBE_ENUM(FulfilmentStep, order, payment, stock)

class Fulfilment : public evs::ProcessManager<Fulfilment, FulfilmentData, FulfilmentStep, OrderPlaced, StockReserved,
                                              ReservationRejected> {
 public:
  using Step = FulfilmentStep;
  static constexpr std::string_view name = "fulfilment";
  // Which saga instance an event belongs to: its order.
  static constexpr auto correlate =
      evs::by(&OrderPlaced::order_id, &StockReserved::order_id, &ReservationRejected::order_id);

  Fulfilment(evs::EventStore& store, std::chrono::milliseconds reservation_timeout)
      : ProcessManager(store), timeout_(reservation_timeout) {}

  void handle(const OrderPlaced& e, Saga& saga) {
    if (!saga.is_new()) return;
    saga.data() = {e.order_id, e.sku, e.quantity};
    saga.complete_step(Step::order);    // compensated by cancelling the order
    saga.complete_step(Step::payment);  // the checkout charged the card; compensated by a refund
    saga.start_step(Step::stock, timeout_);
    saga.send(ReserveStock{e.order_id, e.sku, e.quantity});
  }
  void handle(const StockReserved& e, Saga& saga) {
    if (!saga.is_pending(Step::stock)) return;  // a late answer: the saga has compensated already
    saga.complete_step(Step::stock);
    saga.send(ShipOrder{e.order_id});
    saga.complete();
  }
  void handle(const ReservationRejected& e, Saga& saga) {
    if (saga.is_pending(Step::stock)) saga.fail_step(Step::stock, e.reason);
  }

  // Runs for each completed step, newest first, when a later step fails or times out.
  void compensate(Step step, Saga& saga) {
    if (step == Step::payment) saga.send(RefundPayment{saga.data().order_id});
    if (step == Step::order) saga.send(CancelOrder{saga.data().order_id, saga.reason()});
  }

 private:
  std::chrono::milliseconds timeout_;
};

}  // namespace checkout
