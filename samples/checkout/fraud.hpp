// Fraud detection, added after the shop had been running: a new projection over events that already
// exist. Nothing in the code that places orders changed; started at position 0, it catches up from history.
#pragma once

#include "events.hpp"

#include <evs/projections/projection.hpp>

namespace checkout {

class FraudDetection : public evs::SqlProjection<FraudDetection, OrderPlaced> {
 public:
  static constexpr std::string_view name = "fraud_detection";
  static constexpr std::int64_t big_order_cents = 20'000;

  void setup(evs::SqlSession& db) {
    db.exec("CREATE TABLE IF NOT EXISTS fraud_flags (order_id TEXT PRIMARY KEY, customer TEXT, total_cents BIGINT)");
  }
  void handle(const OrderPlaced& e, evs::SqlSession& db) {
    if (e.total_cents >= big_order_cents)
      db.exec("INSERT INTO fraud_flags VALUES (?1, ?2, ?3)", {e.order_id, e.customer, e.total_cents});
  }
};

}  // namespace checkout
