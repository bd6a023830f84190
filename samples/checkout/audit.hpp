// The demo's self-check: facts counted from the log (the source of truth) next to the same facts read
// from the read models and the fakes. Any difference is a bug.
#pragma once

#include "app.hpp"

#include <evs/core/dispatch.hpp>
#include <evs/projections/sql_database.hpp>

#include <map>
#include <string>
#include <vector>

namespace checkout {

struct LogFacts {
  std::int64_t placed = 0, shipped = 0, cancelled = 0, refunds = 0;
  std::int64_t placed_cents = 0, refunded_cents = 0, big_orders = 0;
  std::map<std::string, std::int64_t> stock;  // sku -> restocked - reserved
};

template <class E>
bool is(const evs::RecordedEvent& ev) { return ev.type == evs::event_info_v<E>.name; }
// The event as today's code sees it: an older version is upcast.
template <class E>
E payload(const evs::RecordedEvent& ev) {
  E out{};
  evs::dispatch_event<E>(ev, "audit", [&](const E& e) { out = e; }).value();
  return out;
}

// One pass over the whole log, decoding the checkout's events.
inline LogFacts facts_from_log(evs::EventStore& store) {
  LogFacts f;
  for (std::uint64_t from = 1;;) {
    auto batch = store.read_all(from, 1000).value();
    if (batch.events.empty()) break;
    for (const evs::RecordedEvent& ev : batch.events) {
      if (is<OrderPlaced>(ev)) {
        const auto e = payload<OrderPlaced>(ev);
        ++f.placed;
        f.placed_cents += e.total_cents;
        f.big_orders += e.total_cents >= FraudDetection::big_order_cents;
      }
      if (is<OrderShipped>(ev)) ++f.shipped;
      if (is<OrderCancelled>(ev)) ++f.cancelled;
      if (is<PaymentRefunded>(ev)) {
        ++f.refunds;
        f.refunded_cents += payload<PaymentRefunded>(ev).amount_cents;
      }
      if (is<Restocked>(ev)) f.stock[payload<Restocked>(ev).sku] += payload<Restocked>(ev).quantity;
      if (is<StockReserved>(ev)) f.stock[payload<StockReserved>(ev).sku] -= payload<StockReserved>(ev).quantity;
    }
    from = batch.next_position;
  }
  return f;
}

// A read model is plain SQL in a SQLite file or a PostgreSQL schema: query it with anything. Here, a
// SqlSession on the projections' database (the same location as ProjectionOptions::database).
class ReadModelDb {
 public:
  explicit ReadModelDb(const std::string& location) : db_(evs::SqlDatabase::open(location)) {}

  // The first column of the first row as an integer (0 for no row or NULL).
  std::int64_t integer(std::string_view sql, const std::string& param = {}) {
    const auto v = param.empty() ? db_.session().scalar(sql) : db_.session().scalar(sql, {param});
    return !v || evs::sql_is_null(*v) ? 0 : evs::sql_int(*v);
  }
  evs::SqlSession& session() { return db_.session(); }

  // Every row, its columns as text joined by '|' (NULL as empty).
  std::vector<std::string> rows(const std::string& sql) {
    std::vector<std::string> out;
    for (const evs::SqlRow& r : db_.session().query(sql)) {
      std::string row;
      for (std::size_t c = 0; c < r.size(); ++c) {
        std::string text;
        if (const auto* i = std::get_if<std::int64_t>(&r[c])) text = std::to_string(*i);
        else if (const auto* t = std::get_if<std::string>(&r[c])) text = *t;
        else if (const auto* d = std::get_if<double>(&r[c])) text = std::to_string(*d);
        else if (const auto* b = std::get_if<evs::SqlBlob>(&r[c])) text = b->bytes;
        row += (c ? "|" : "") + text;
      }
      out.push_back(std::move(row));
    }
    return out;
  }

 private:
  evs::SqlDatabase db_;
};

}  // namespace checkout
