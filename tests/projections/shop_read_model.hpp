// The SQL read model used by the projection tests and by projection_child: per-stream counters and sums,
// plus an append-only table with one row per processed event (no unique key, so a duplicate delivery shows).
//
//   stream_stats(stream PK, events, sum_cents, items, cancelled, last_version, chain, order_violations)
//   processed(position, stream, version, type)
//
// `chain` is an order-sensitive hash of the positions applied to the stream, `order_violations` counts
// events whose version was not above the stream's last applied version.
#pragma once

#include "../support/shop_events.hpp"

#include <evs/projections/projection.hpp>

namespace shop {

class ShopStats : public evs::SqlProjection<ShopStats, OrderPlaced, ItemAdded, OrderCancelled> {
 public:
  static constexpr std::string_view name = "shop_stats";
  static constexpr std::int64_t chain_modulus = 2147483647;
  static constexpr std::int64_t chain_factor = 1000003;

  void setup(evs::SqlSession& db) {
    db.exec(
        "CREATE TABLE IF NOT EXISTS stream_stats(stream TEXT PRIMARY KEY, events INTEGER NOT NULL, "
        "sum_cents INTEGER NOT NULL, items INTEGER NOT NULL, cancelled INTEGER NOT NULL, "
        "last_version INTEGER NOT NULL, chain INTEGER NOT NULL, order_violations INTEGER NOT NULL)");
    db.exec(
        "CREATE TABLE IF NOT EXISTS processed(position INTEGER NOT NULL, stream TEXT NOT NULL, "
        "version INTEGER NOT NULL, type TEXT NOT NULL)");
  }
  void handle(const OrderPlaced& e, const evs::RecordedEvent& m, evs::SqlSession& db) {
    apply(m, db, e.total_cents, 0, 0);
  }
  void handle(const ItemAdded& e, const evs::RecordedEvent& m, evs::SqlSession& db) {
    apply(m, db, e.qty * e.price_cents, e.qty, 0);
  }
  void handle(const OrderCancelled&, const evs::RecordedEvent& m, evs::SqlSession& db) { apply(m, db, 0, 0, 1); }

 private:
  static void apply(const evs::RecordedEvent& m, evs::SqlSession& db, std::int64_t cents, std::int64_t items,
                    std::int64_t cancelled) {
    db.exec(
        "INSERT INTO stream_stats(stream, events, sum_cents, items, cancelled, last_version, chain, "
        "order_violations) VALUES(?1, 1, ?2, ?3, ?4, ?5, ?6 % 2147483647, 0) "
        "ON CONFLICT(stream) DO UPDATE SET events = events + 1, sum_cents = sum_cents + ?2, items = items + ?3, "
        "cancelled = max(cancelled, ?4), order_violations = order_violations + (?5 <= last_version), "
        "last_version = ?5, chain = (chain * 1000003 + ?6) % 2147483647",
        {m.stream_id, cents, items, cancelled, static_cast<std::int64_t>(m.version),
         static_cast<std::int64_t>(m.position)});
    db.exec("INSERT INTO processed(position, stream, version, type) VALUES(?1, ?2, ?3, ?4)",
            {static_cast<std::int64_t>(m.position), m.stream_id, static_cast<std::int64_t>(m.version), m.type});
  }
};

}  // namespace shop
