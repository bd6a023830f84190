// The same flow, choreographed: no coordinator and no saga state. Each service reacts to the others'
// events and publishes its own; the compensation is one more reaction, to the failure event.
//
//   OrderPlaced -> (stock service) StockReserved -> (shipping service) OrderShipped
//                                  ReservationRejected -> (payment service) PaymentRefunded + OrderCancelled
//
// evs::caused_by(cause) gives each new event the conversation's correlation id and its cause's id, so the
// chain can be followed in the log. A redelivered event is harmless because the aggregates answer each
// order once. There is no timeout: nobody is waiting, which is what the orchestrated saga adds.
#pragma once

#include "commands.hpp"

#include <evs/projections/process_manager.hpp>  // caused_by

namespace checkout::choreography {

class StockService : public evs::EffectHandler<StockService, OrderPlaced> {
 public:
  static constexpr std::string_view name = "stock_service";
  explicit StockService(Commands& commands) : commands_(commands) {}
  void handle(const OrderPlaced& e, const evs::RecordedEvent& cause) {
    commands_.reserve_stock({e.order_id, e.sku, e.quantity},
                            {.metadata = evs::caused_by(cause), .idempotency_key = evs::derived_id(cause.event_id, "reserve_stock")});
  }

 private:
  Commands& commands_;
};

class ShippingService : public evs::EffectHandler<ShippingService, StockReserved> {
 public:
  static constexpr std::string_view name = "shipping_service";
  explicit ShippingService(Commands& commands) : commands_(commands) {}
  void handle(const StockReserved& e, const evs::RecordedEvent& cause) {
    commands_.ship({e.order_id}, {.metadata = evs::caused_by(cause)});
  }

 private:
  Commands& commands_;
};

class PaymentService : public evs::EffectHandler<PaymentService, ReservationRejected> {
 public:
  static constexpr std::string_view name = "payment_service";
  explicit PaymentService(Commands& commands) : commands_(commands) {}
  void handle(const ReservationRejected& e, const evs::RecordedEvent& cause) {  // the compensation
    commands_.refund({e.order_id}, {.metadata = evs::caused_by(cause)});
    commands_.cancel({e.order_id, e.reason}, {.metadata = evs::caused_by(cause)});
  }

 private:
  Commands& commands_;
};

}  // namespace checkout::choreography
