// Opening a store by its location, so an application (and every evs command) switches backends with a
// connection string instead of code:
//   "postgresql://host/db?evs_schema=shop"  (or postgres://, or a libpq "host=... dbname=..." string):
//                                            a PgEventStore; evs_schema picks the schema (default public)
//   "sqlite:/var/lib/app/events.db"          a SqliteEventStore
//   "/var/lib/app/events.db"                 the same: anything else is a SQLite path
#pragma once

#include "evs/eventstore/event_store.hpp"

#include <functional>
#include <memory>
#include <string>
#include <string_view>

namespace evs {

// What every backend takes alike; backend-specific settings keep their defaults (construct the store
// yourself to change them).
struct OpenStoreOptions {
  bool read_only = false;
  SchemaCheck schema_check = SchemaCheck::refuse;
  std::function<void(const std::string&)> schema_warning;
  const EventRegistry* registry = nullptr;
};

enum class StoreBackend : std::uint8_t { sqlite, postgresql };

// Which backend `location` names, and what that backend is given: the SQLite path, or the PostgreSQL
// connection string without evs's own evs_schema parameter, plus the schema.
struct StoreLocation {
  StoreBackend backend = StoreBackend::sqlite;
  std::string target;  // the path, or the connection string for libpq
  std::string schema;  // PostgreSQL only: the schema (evs_schema=...), "public" by default
};

// Parses a location. Errors: invalid_argument (empty, or an empty path after "sqlite:").
Result<StoreLocation> parse_store_location(std::string_view location);

// Opens the store at `location`. Throws evs::Exception as the backend's constructor does, and
// invalid_argument for a PostgreSQL location when evs was built without PostgreSQL (EVS_POSTGRESQL=OFF).
std::unique_ptr<EventStore> open_store(std::string_view location, const OpenStoreOptions& options = {});

}  // namespace evs
