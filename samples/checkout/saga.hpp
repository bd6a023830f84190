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

class Fulfilment : public evs::ProcessManager<Fulfilment, FulfilmentData, OrderPlaced, StockReserved,
                                              ReservationRejected> {
 public:
  static constexpr std::string_view name = "fulfilment";

  Fulfilment(evs::EventStore& store, Commands& commands, std::chrono::milliseconds reservation_timeout)
      : ProcessManager(store), commands_(commands), timeout_(reservation_timeout) {}

  // Which saga instance an event belongs to: its order.
  std::string correlation_id(const OrderPlaced& e, const evs::RecordedEvent&) const { return e.order_id; }
  std::string correlation_id(const StockReserved& e, const evs::RecordedEvent&) const { return e.order_id; }
  std::string correlation_id(const ReservationRejected& e, const evs::RecordedEvent&) const { return e.order_id; }

  void handle(const OrderPlaced& e, const evs::RecordedEvent&, Saga& saga) {
    if (!saga.is_new()) return;
    saga.data() = {e.order_id, e.sku, e.quantity};
    saga.complete_step("order");    // compensated by cancelling the order
    saga.complete_step("payment");  // the checkout charged the card; compensated by a refund
    saga.start_step("stock", timeout_);
    saga.send("ReserveStock", [this, d = saga.data()](const evs::CommandMetadata& m) {
      commands_.reserve_stock(d.order_id, d.sku, d.quantity, m.event_metadata(), m.command_id);
    });
  }
  void handle(const StockReserved&, const evs::RecordedEvent&, Saga& saga) {
    if (!saga.is_pending("stock")) return;  // a late answer: the saga has compensated already
    saga.complete_step("stock");
    saga.send("ShipOrder", [this, id = saga.data().order_id](const evs::CommandMetadata& m) {
      commands_.ship(id, m.event_metadata());
    });
    saga.complete();
  }
  void handle(const ReservationRejected& e, const evs::RecordedEvent&, Saga& saga) {
    if (saga.is_pending("stock")) saga.fail_step("stock", e.reason);
  }

  // Runs for each completed step, newest first, when a later step fails or times out.
  void compensate(std::string_view step, Saga& saga) {
    const std::string id = saga.data().order_id;
    const std::string reason = saga.state().reason;
    if (step == "payment")
      saga.send("RefundPayment", [this, id](const evs::CommandMetadata& m) { commands_.refund(id, m.event_metadata()); });
    if (step == "order")
      saga.send("CancelOrder", [this, id, reason](const evs::CommandMetadata& m) {
        commands_.cancel(id, reason, m.event_metadata());
      });
  }

 private:
  Commands& commands_;
  std::chrono::milliseconds timeout_;
};

}  // namespace checkout
