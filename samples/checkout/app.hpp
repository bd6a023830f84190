// The running shop: one event store, the outside world (fakes), the command side, and everything that
// follows the log: read models, side effects and the saga, all on one projection engine.
#pragma once

#include "commands.hpp"
#include "effects.hpp"
#include "fraud.hpp"
#include "read_models.hpp"
#include "saga.hpp"

#include <evs/cli/cli.hpp>
#include <evs/eventstore/open_store.hpp>
#include <evs/eventstore/sqlite_event_store.hpp>
#include <evs/projections/engine.hpp>

#include <filesystem>
#include <memory>

namespace checkout {

// The store's location: a SQLite path, or "postgresql://...?evs_schema=NAME" (evs::open_store).
inline bool on_postgresql(const std::string& location) {
  const auto parsed = evs::parse_store_location(location);
  return parsed && parsed->backend == evs::StoreBackend::postgresql;
}

// Read models live next to the log: in "<name>-read.db", or on PostgreSQL in the schema "<schema>_read".
inline std::string read_db_for(const std::string& location, const std::string& suffix = "read") {
  if (on_postgresql(location)) {
    const auto parsed = evs::parse_store_location(location).value();
    const bool uri = parsed.target.starts_with("postgres");
    const char* separator = !uri ? " " : parsed.target.find('?') == std::string::npos ? "?" : "&";
    return parsed.target + separator + "evs_schema=" + parsed.schema + "_" + suffix;
  }
  const std::filesystem::path events_db = location;
  return (events_db.parent_path() / (events_db.stem().string() + "-" + suffix + ".db")).string();
}

// The event store at `location`; SQLite with synchronous=NORMAL (a power cut may lose the last commits).
inline std::unique_ptr<evs::EventStore> open_shop_store(const std::string& location) {
  if (on_postgresql(location)) return evs::open_store(location);
  return std::make_unique<evs::SqliteEventStore>(evs::SqliteOptions{.path = location, .durability = evs::Durability::normal});
}

struct ShopOptions {
  std::chrono::milliseconds reservation_timeout{1000};
  evs::RetryPolicy email_retry{.max_attempts = 7, .initial_backoff = std::chrono::milliseconds(10)};
};

class Shop {
 public:
  explicit Shop(const std::string& location, ShopOptions options = {})
      : owned_store(open_shop_store(location)),
        store(*owned_store),
        commands(store, gateway),
        email(mail),
        warehouse_notification(warehouse),
        fulfilment(store, options.reservation_timeout),
        engine(store) {
    const evs::ProjectionOptions read_model{.database = read_db_for(location)};
    engine.add(orders, read_model);
    engine.add(revenue, read_model);
    engine.add(stock, read_model);
    engine.add(warehouse_notification, read_model);
    auto with_retry = read_model;
    with_retry.retry = options.email_retry;
    engine.add(email, with_retry);
    fulfilment.attach(engine, read_model, commands.saga_handlers());
  }

  // What the dashboard (evs::http) shows of this shop: its store at `location`, and the projections its engine
  // runs with their database (dead letters, rebuilds).
  evs::cli::Application site(const std::string& location) {
    evs::cli::Application app{"checkout", location};
    const evs::ProjectionOptions read_model{.database = read_db_for(location)};
    for (evs::Projection* p : std::initializer_list<evs::Projection*>{&orders, &revenue, &stock, &email,
                                                                       &warehouse_notification, &fulfilment})
      app.projections.push_back({p, read_model});
    return app;
  }

  std::unique_ptr<evs::EventStore> owned_store;
  evs::EventStore& store;
  // The outside world.
  CardGateway gateway;
  MailServer mail;
  Warehouse warehouse;
  // The command side.
  Commands commands;
  // What follows the log.
  OrdersByCustomer orders;
  RevenuePerDay revenue;
  StockLevels stock;
  EmailConfirmation email;
  WarehouseNotification warehouse_notification;
  Fulfilment fulfilment;
  evs::ProjectionEngine engine;  // last: stopped before the projections it runs are destroyed
};

// The SQL read models, as the embedded replay tool sees them (`checkout rebuild revenue_per_day`).
struct ReadModels {
  OrdersByCustomer orders;
  RevenuePerDay revenue;
  StockLevels stock;
  FraudDetection fraud;

  evs::cli::Application tool(const std::filesystem::path& events_db) {
    evs::cli::Application app{"checkout", events_db};
    const evs::ProjectionOptions read_model{.database = read_db_for(events_db)};
    for (evs::Projection* p : std::initializer_list<evs::Projection*>{&orders, &revenue, &stock, &fraud})
      app.projections.push_back({p, read_model});
    return app;
  }
};

}  // namespace checkout
