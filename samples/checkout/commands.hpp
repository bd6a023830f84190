// The command side: what clients and the saga ask the shop to do. Each command loads an aggregate,
// lets it decide, and saves its events (evs::create / update / upsert retry on a concurrent change).
#pragma once

#include "order.hpp"
#include "payments.hpp"
#include "stock.hpp"

#include <evs/eventstore/command_handler.hpp>

#include <atomic>
#include <map>
#include <set>

namespace checkout {

inline const std::map<std::string, std::int64_t> catalog{
    {"BOOK", 2500}, {"MUG", 1200}, {"POSTER", 900}, {"LAMP", 4500}};

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
                              &Order::place, r, total, *charge);
    if (!placed) return placed.error();
    return *charge;
  }

  void restock(const std::string& sku, std::int32_t quantity) {
    evs::upsert(stock_, sku, &Stock::restock, quantity).value();
  }

  // --- Issued by the saga (or the choreographed services). `meta` links the events to their cause. ---
  // They throw when they cannot be done; the projection engine then retries the event that caused them.

  // `command_id` identifies this request: a re-issued one (same id) reserves once and gets its first answer.
  void reserve_stock(const std::string& order_id, const std::string& sku, std::int32_t quantity,
                     const evs::EventMetadata& meta, const evs::Uuid& command_id) {
    if (unreachable_sku == sku) {  // the supplier's system for this sku is down: the request is lost
      ++lost_requests;
      return;
    }
    evs::handle_command(stock_, sku, [&](Stock& s) { s.reserve(order_id, quantity); },
                        {.metadata = meta, .command_id = command_id})
        .value();
  }
  void ship(const std::string& order_id, const evs::EventMetadata& meta) {
    evs::handle_command(orders_, order_id, [](Order& o) { return o.ship(); }, options(meta)).value();
  }
  void refund(const std::string& order_id, const evs::EventMetadata& meta) {
    const std::string charge = orders_.load(order_id).value().state().charge_id;
    const std::string refund = gateway_.refund(charge).value();  // idempotent: refunding twice refunds once
    evs::handle_command(orders_, order_id, [&](Order& o) { return o.record_refund(refund); }, options(meta)).value();
  }
  void cancel(const std::string& order_id, const std::string& reason, const evs::EventMetadata& meta) {
    evs::handle_command(orders_, order_id, [&](Order& o) { return o.cancel(reason); }, options(meta)).value();
  }

  std::string unreachable_sku;          // set before the engine starts
  std::atomic<int> lost_requests = 0;

 private:
  static evs::CommandOptions options(const evs::EventMetadata& meta) {
    return {.create_if_missing = false, .metadata = meta};
  }

  evs::Repository<Order> orders_;
  evs::Repository<Stock> stock_;
  CardGateway& gateway_;
};

}  // namespace checkout
