// Shop events shared by the projection tests and their child processes, plus a deterministic generator of a
// mixed log: order streams ("order-N") carrying the three handled types, and audit streams ("audit-N")
// carrying a type no projection handles, so catch-up filtering is exercised.
#pragma once

#include <evs/core/event.hpp>
#include <evs/eventstore/event_store.hpp>

#include <cstdint>
#include <random>
#include <string>
#include <vector>

namespace shop {

struct OrderPlaced {
  std::string order_id;
  std::string customer;
  std::int64_t total_cents = 0;
};
BOOST_DESCRIBE_STRUCT(OrderPlaced, (), (order_id, customer, total_cents))
EVS_EVENT(OrderPlaced, "shop.order_placed", 1)

struct ItemAdded {
  std::string order_id;
  std::string sku;
  std::int64_t qty = 0;
  std::int64_t price_cents = 0;
};
BOOST_DESCRIBE_STRUCT(ItemAdded, (), (order_id, sku, qty, price_cents))
EVS_EVENT(ItemAdded, "shop.item_added", 1)

struct OrderCancelled {
  std::string order_id;
  std::string reason;
};
BOOST_DESCRIBE_STRUCT(OrderCancelled, (), (order_id, reason))
EVS_EVENT(OrderCancelled, "shop.order_cancelled", 1)

// Handled by no projection.
struct AuditNoted {
  std::string note;
};
BOOST_DESCRIBE_STRUCT(AuditNoted, (), (note))
EVS_EVENT(AuditNoted, "shop.audit_noted", 1)

template <class E>
evs::EventData make(const E& e) {
  return evs::make_event_data(e);
}

// One append: a stream and its events.
struct Append {
  std::string stream;
  std::vector<evs::EventData> events;
};

// Deterministic random traffic: `order_streams` order streams, a few audit streams, `max_batch` events at
// most per append. Remembers which order streams already exist so each starts with OrderPlaced.
class Generator {
 public:
  Generator(unsigned seed, int order_streams, int max_batch = 3, std::string prefix = "order")
      : rng_(seed), order_streams_(order_streams), max_batch_(max_batch), prefix_(std::move(prefix)) {}

  Append next() {
    Append a;
    const int n = 1 + static_cast<int>(rng_() % static_cast<unsigned>(max_batch_));
    if (rng_() % 10 == 0) {
      a.stream = "audit-" + std::to_string(rng_() % 4);
      for (int i = 0; i < n; ++i) a.events.push_back(make(AuditNoted{"note " + std::to_string(rng_() % 1000)}));
      return a;
    }
    const int s = static_cast<int>(rng_() % static_cast<unsigned>(order_streams_));
    a.stream = prefix_ + "-" + std::to_string(s);
    if (started_.size() <= static_cast<std::size_t>(s)) started_.resize(static_cast<std::size_t>(s) + 1, false);
    for (int i = 0; i < n; ++i) {
      if (!started_[static_cast<std::size_t>(s)]) {
        started_[static_cast<std::size_t>(s)] = true;
        a.events.push_back(make(OrderPlaced{a.stream, "cust-" + std::to_string(rng_() % 50),
                                            static_cast<std::int64_t>(rng_() % 10000)}));
      } else if (rng_() % 20 == 0) {
        a.events.push_back(make(OrderCancelled{a.stream, "changed mind"}));
      } else {
        a.events.push_back(make(ItemAdded{a.stream, "sku-" + std::to_string(rng_() % 100),
                                          1 + static_cast<std::int64_t>(rng_() % 5),
                                          static_cast<std::int64_t>(rng_() % 5000)}));
      }
    }
    return a;
  }

 private:
  std::mt19937 rng_;
  int order_streams_;
  int max_batch_;
  std::string prefix_;
  std::vector<bool> started_;
};

}  // namespace shop
