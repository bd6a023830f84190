// The SQL read model used by the projection tests and by projection_child: per-stream counters and sums,
// plus an append-only table with one row per processed event (no unique key, so a duplicate delivery shows).
//
//   stream_stats(stream PK, events, sum_cents, items, cancelled, last_version, chain, order_violations)
//   processed(seq, position, stream, version, type)       seq: insertion order
//
// Its SQL runs unchanged on SQLite and PostgreSQL (bigint columns, CASE instead of SQLite's two-argument
// max(), the upsert's columns qualified with the table name), except the one column type each spells its own way (an autoincrementing key), chosen by dialect().
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
        "CREATE TABLE IF NOT EXISTS stream_stats(stream TEXT PRIMARY KEY, events BIGINT NOT NULL, "
        "sum_cents BIGINT NOT NULL, items BIGINT NOT NULL, cancelled BIGINT NOT NULL, "
        "last_version BIGINT NOT NULL, chain BIGINT NOT NULL, order_violations BIGINT NOT NULL)");
    const std::string seq = db.dialect() == evs::SqlDialect::sqlite ? "seq INTEGER PRIMARY KEY"
                                                                    : "seq BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY";
    db.exec("CREATE TABLE IF NOT EXISTS processed(" + seq +
            ", position BIGINT NOT NULL, stream TEXT NOT NULL, version BIGINT NOT NULL, type TEXT NOT NULL)");
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
        "ON CONFLICT(stream) DO UPDATE SET events = stream_stats.events + 1, "
        "sum_cents = stream_stats.sum_cents + ?2, items = stream_stats.items + ?3, "
        "cancelled = CASE WHEN ?4 > stream_stats.cancelled THEN ?4 ELSE stream_stats.cancelled END, "
        "order_violations = stream_stats.order_violations + CASE WHEN ?5 <= stream_stats.last_version THEN 1 ELSE 0 END, "
        "last_version = ?5, chain = (stream_stats.chain * 1000003 + ?6) % 2147483647",
        {m.stream_id, cents, items, cancelled, static_cast<std::int64_t>(m.version),
         static_cast<std::int64_t>(m.position)});
    db.exec("INSERT INTO processed(position, stream, version, type) VALUES(?1, ?2, ?3, ?4)",
            {static_cast<std::int64_t>(m.position), m.stream_id, static_cast<std::int64_t>(m.version), m.type});
  }
};

}  // namespace shop
