// Side-effect handlers: they call the outside world. The engine delivers each event at least once,
// retries a failing call with exponential backoff, remembers handled event ids in an inbox (so a
// redelivery does nothing), and parks an event that keeps failing in the dead letters.
#pragma once

#include "events.hpp"
#include "fakes.hpp"

#include <evs/projections/projection.hpp>

namespace checkout {

class EmailConfirmation : public evs::EffectHandler<EmailConfirmation, OrderPlaced> {
 public:
  static constexpr std::string_view name = "email_confirmation";
  explicit EmailConfirmation(MailServer& mail) : mail_(mail) {}
  void handle(const OrderPlaced& e, const evs::RecordedEvent& m) {  // throws while the server is down
    mail_.send(e.email, "Your order " + e.order_id + " is confirmed", m.event_id.to_string());
  }

 private:
  MailServer& mail_;
};

class WarehouseNotification : public evs::EffectHandler<WarehouseNotification, OrderShipped> {
 public:
  static constexpr std::string_view name = "warehouse_notification";
  explicit WarehouseNotification(Warehouse& warehouse) : warehouse_(warehouse) {}
  void handle(const OrderShipped& e) { warehouse_.pick(e.order_id); }

 private:
  Warehouse& warehouse_;
};

}  // namespace checkout
