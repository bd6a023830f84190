// The command side: what clients and the saga ask the shop to do. Each command loads an aggregate,
// lets it decide, and saves its events (evs::create / update / upsert retry on a concurrent change).
#pragma once

#include "order.hpp"
#include "payments.hpp"
#include "stock.hpp"

#include <evs/eventstore/command_handler.hpp>
#include <evs/projections/saga_commands.hpp>  // CommandMetadata

#include <atomic>
#include <map>
#include <set>
#include <tuple>

namespace checkout {

// The commands the saga sends (described structs: named in its audit trail, compared in its tests).
struct ReserveStock {
  std::string order_id;
  std::string sku;
  std::int32_t quantity = 0;
};
BOOST_DESCRIBE_STRUCT(ReserveStock, (), (order_id, sku, quantity))
struct ShipOrder {
  std::string order_id;
};
BOOST_DESCRIBE_STRUCT(ShipOrder, (), (order_id))
struct RefundPayment {
  std::string order_id;
};
BOOST_DESCRIBE_STRUCT(RefundPayment, (), (order_id))
struct CancelOrder {
  std::string order_id;
  std::string reason;
};
BOOST_DESCRIBE_STRUCT(CancelOrder, (), (order_id, reason))

// The prices, in cents of catalog_currency.
inline const std::map<std::string, std::int64_t> catalog{
    {"BOOK", 2500}, {"MUG", 1200}, {"POSTER", 900}, {"LAMP", 4500}};
inline constexpr const char* catalog_currency = "USD";

// The namespace of the idempotency keys derived from order ids.
inline const evs::Uuid order_requests = *evs::Uuid::parse("5b0c7a1e-3f7d-4c52-9e0a-8d6f2b9c4e11");

class Commands {
 public:
  Commands(evs::EventStore& store, CardGateway& gateway) : orders_(store), stock_(store), gateway_(gateway) {}

  // The checkout: validate, charge the card, append OrderPlaced, answer. Everything else (email, stock,
  // shipping, read models) happens later, each at its own pace. The order id is the idempotency key: a
  // retried request is charged once and placed once. Returns the charge id.
  evs::Result<std::string> place_order(const OrderRequest& r) {
    auto price = catalog.find(r.sku);
    if (price == catalog.end()) return evs::reject("unknown sku " + r.sku);
    if (auto ok = validate(r); !ok) return ok.error();
    const std::int64_t total = price->second * r.quantity;
    auto charge = gateway_.charge(r.order_id, r.card, total);
    if (!charge) return charge.error();
    auto placed = evs::create(orders_, r.order_id,
                              {.metadata = {.correlation_id = r.order_id},
                               .idempotency_key = evs::Uuid::name_based(order_requests, r.order_id)},
                              &Order::place, r, total, catalog_currency, *charge);
    if (!placed) return placed.error();
    return *charge;
  }

  void restock(const std::string& sku, std::int32_t quantity) {
    evs::upsert(stock_, sku, &Stock::restock, quantity).value();
  }

  // --- Sent by the saga (or the choreographed services). `options` link the events to their cause and
  // carry the idempotency key that makes a re-issued command store nothing new. They throw when they cannot
  // be done; the projection engine then retries the event that caused them.

  void reserve_stock(const ReserveStock& c, const evs::CommandOptions& options) {
    if (unreachable_sku == c.sku) {  // the supplier's system for this sku is down: the request is lost
      ++lost_requests;
      return;
    }
    evs::upsert(stock_, c.sku, options, &Stock::reserve, c.order_id, c.quantity).value();
  }
  void ship(const ShipOrder& c, const evs::CommandOptions& options) {
    evs::update(orders_, c.order_id, options, &Order::ship).value();
  }
  void refund(const RefundPayment& c, const evs::CommandOptions& options) {
    const std::string charge = orders_.load(c.order_id).value().state().charge_id;
    const std::string refund = gateway_.refund(charge).value();  // idempotent: refunding twice refunds once
    evs::update(orders_, c.order_id, options, &Order::record_refund, refund).value();
  }
  void cancel(const CancelOrder& c, const evs::CommandOptions& options) {
    evs::update(orders_, c.order_id, options, &Order::cancel, c.reason).value();
  }

  // The saga's command handlers, for Fulfilment::attach(engine, options, commands.saga_handlers()).
  auto saga_handlers() {
    return std::tuple([this](const ReserveStock& c, const evs::CommandMetadata& m) { reserve_stock(c, m.options()); },
                      [this](const ShipOrder& c, const evs::CommandMetadata& m) { ship(c, m.options()); },
                      [this](const RefundPayment& c, const evs::CommandMetadata& m) { refund(c, m.options()); },
                      [this](const CancelOrder& c, const evs::CommandMetadata& m) { cancel(c, m.options()); });
  }

  std::string unreachable_sku;          // set before the engine starts
  std::atomic<int> lost_requests = 0;

 private:
  evs::Repository<Order> orders_;
  evs::Repository<Stock> stock_;
  CardGateway& gateway_;
};

}  // namespace checkout
