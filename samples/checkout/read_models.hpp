// The read models (the Q in CQRS): SQL tables that projections keep up to date from the log. Each batch
// of changes commits together with the projection's checkpoint, so a crash never applies an event twice.
#pragma once

#include "events.hpp"

#include <evs/projections/projection.hpp>

#include <chrono>
#include <cstdio>

namespace checkout {

// "2026-11-22": the UTC day an event was recorded.
inline std::string day_of(evs::Timestamp t) {
  const std::chrono::year_month_day d{std::chrono::floor<std::chrono::days>(t)};
  char buf[16];
  std::snprintf(buf, sizeof buf, "%04d-%02u-%02u", int(d.year()), unsigned(d.month()), unsigned(d.day()));
  return buf;
}

class OrdersByCustomer
    : public evs::SqlProjection<OrdersByCustomer, OrderPlaced, OrderShipped, OrderCancelled> {
 public:
  static constexpr std::string_view name = "orders_by_customer";
  void setup(evs::SqlSession& db) {
    db.exec("CREATE TABLE IF NOT EXISTS orders (order_id TEXT PRIMARY KEY, customer TEXT NOT NULL, "
            "sku TEXT, quantity BIGINT, total_cents BIGINT, currency TEXT, status TEXT NOT NULL)");
    db.exec("CREATE INDEX IF NOT EXISTS orders_by_customer_idx ON orders(customer)");
  }
  void handle(const OrderPlaced& e, evs::SqlSession& db) {
    db.exec("INSERT INTO orders VALUES (?1, ?2, ?3, ?4, ?5, ?6, 'placed')",
            {e.order_id, e.customer, e.sku, std::int64_t{e.quantity}, e.total_cents, e.currency});
  }
  void handle(const OrderShipped& e, evs::SqlSession& db) {
    db.exec("UPDATE orders SET status = 'shipped' WHERE order_id = ?1", {e.order_id});
  }
  void handle(const OrderCancelled& e, evs::SqlSession& db) {
    db.exec("UPDATE orders SET status = 'cancelled' WHERE order_id = ?1", {e.order_id});
  }
};

class RevenuePerDay : public evs::SqlProjection<RevenuePerDay, OrderPlaced, PaymentRefunded> {
 public:
  static constexpr std::string_view name = "revenue_per_day";
  void setup(evs::SqlSession& db) {
    db.exec("CREATE TABLE IF NOT EXISTS revenue_per_day (day TEXT PRIMARY KEY, orders BIGINT NOT NULL, "
            "gross_cents BIGINT NOT NULL, refunded_cents BIGINT NOT NULL)");
  }
  void handle(const OrderPlaced& e, const evs::RecordedEvent& m, evs::SqlSession& db) {
    db.exec("INSERT INTO revenue_per_day VALUES (?1, 1, ?2, 0) ON CONFLICT(day) DO UPDATE SET "
            "orders = revenue_per_day.orders + 1, gross_cents = revenue_per_day.gross_cents + ?2",
            {day_of(m.recorded_at), e.total_cents});
  }
  void handle(const PaymentRefunded& e, const evs::RecordedEvent& m, evs::SqlSession& db) {
    db.exec("INSERT INTO revenue_per_day VALUES (?1, 0, 0, ?2) ON CONFLICT(day) DO UPDATE SET "
            "refunded_cents = revenue_per_day.refunded_cents + ?2",
            {day_of(m.recorded_at), e.amount_cents});
  }
};

class StockLevels : public evs::SqlProjection<StockLevels, Restocked, StockReserved> {
 public:
  static constexpr std::string_view name = "stock_levels";
  void setup(evs::SqlSession& db) {
    db.exec("CREATE TABLE IF NOT EXISTS stock_levels (sku TEXT PRIMARY KEY, available BIGINT NOT NULL, "
            "reserved BIGINT NOT NULL)");
  }
  void handle(const Restocked& e, evs::SqlSession& db) {
    db.exec("INSERT INTO stock_levels VALUES (?1, ?2, 0) ON CONFLICT(sku) DO UPDATE SET "
            "available = stock_levels.available + ?2",
            {e.sku, std::int64_t{e.quantity}});
  }
  void handle(const StockReserved& e, evs::SqlSession& db) {
    db.exec("UPDATE stock_levels SET available = available - ?2, reserved = reserved + ?2 WHERE sku = ?1",
            {e.sku, std::int64_t{e.quantity}});
  }
};

}  // namespace checkout
