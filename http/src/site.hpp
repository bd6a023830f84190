// Internal: what the server shows, and the one place that reads it. The store (EventStore, plus its tables
// through the tool's StoreSql for what the interface does not offer: the stream list, correlation
// lookups), the projections (the engine's health, or without an engine what their databases record), and
// their databases (dead letters, partition checkpoints, rebuild shadows).
//
// Thread safety: every method may be called from any io_context thread at once. Queries on the store's
// tables are serialized on one connection (opened on first use, reopened after a failure); figures that
// cost a query per projection are cached for ServeOptions::cache_for.
#pragma once

#include "evs/http/server.hpp"

#include "evs/eventstore/event_store.hpp"
#include "evs/projections/engine.hpp"

#include "commands.hpp"
#include "metrics.hpp"
#include "store_sql.hpp"

#include <chrono>
#include <condition_variable>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <ostream>
#include <string>
#include <vector>

namespace evs::http {

// One projection as the API and the metrics show it.
struct ProjectionView {
  ProjectionHealth health;
  std::string state;     // to_string(health.state), or "stored" without an engine (read from its database)
  std::string kind;      // "sql", "memory", "effect"; empty when unknown (stored, not configured here)
  std::string database;  // its database, or empty (an in-memory view)
  std::uint64_t retry_queued = 0;  // dead letters queued for retry (from its database)
  std::vector<std::pair<std::size_t, std::uint64_t>> partition_checkpoints;  // (partition, position) stored
};

// A Result's value, or evs::Exception with its error.
template <class T>
T must(Result<T>&& r) {
  if (!r) throw Exception(r.error());
  return std::move(*r);
}

// Whether `location` names a SQLite file (not a PostgreSQL location), and whether it is one that does not exist.
bool is_sqlite(const std::string& location);
bool missing_sqlite_file(const std::string& location);

class Site {
 public:
  Site(EventStore& store, ProjectionEngine* engine, cli::Application app, ServeOptions options);
  ~Site();

  EventStore& store() { return store_; }
  ProjectionEngine* engine() { return engine_; }
  const cli::Application& app() const { return app_; }
  const EventRegistry& registry() const { return *app_.registry; }
  const ServeOptions& options() const { return options_; }
  std::string store_location() const { return app_.default_db.string(); }
  bool postgres() const;
  Metrics& metrics() { return metrics_; }

  // Runs `query` on the store's tables, serialized with every other such call. An evs::Exception from it
  // closes the connection (the next call reopens it) and is rethrown.
  void with_store_sql(const std::function<void(cli::StoreSql&)>& query);
  // Runs `query` on the database at `location` (a projection's), on a connection kept open for the next
  // call (opened read-write, so that a SQLite file closed when it was opened is still read as it changes);
  // serialized per database. An evs::Exception from it closes the connection and is rethrown.
  void with_database(const std::string& location, const std::function<void(cli::StoreSql&)>& query);

  // Runs `query` on a connection opened for this one call, read-only (a copy that may be gone by the next).
  void read_once(const std::string& location, const std::function<void(cli::StoreSql&)>& query);

  // Every projection: the engine's, else the stored ones; cached for options().cache_for. While one request
  // reads them afresh, the others get the last figures instead of waiting (only the first read waits).
  std::vector<ProjectionView> projections();
  // The number of streams, cached for options().cache_for.
  std::int64_t stream_count();
  // The database of projection `name` (its configured one, else where its rows were found); nullopt when
  // no database is known for it.
  std::optional<std::string> database_of(const std::string& name);
  // Every database that holds projection tables (the configured ones, and the store's own file).
  std::vector<std::string> projection_databases();

 private:
  std::vector<ProjectionView> read_projections();
  std::unique_ptr<cli::StoreSql> open_kept(const std::string& location);

  EventStore& store_;
  ProjectionEngine* engine_;
  cli::Application app_;
  ServeOptions options_;
  std::ostream discard_;  // the tool's context writes nowhere here
  cli::Context context_;
  Metrics metrics_;

  std::mutex sql_mutex_;
  std::unique_ptr<cli::StoreSql> sql_;
  struct Database {
    std::mutex mutex;
    std::unique_ptr<cli::StoreSql> sql;
  };
  std::mutex databases_mutex_;
  std::map<std::string, std::unique_ptr<Database>> databases_;  // by location; never erased

  std::mutex cache_mutex_;
  std::condition_variable refreshed_;
  bool refreshing_ = false;
  std::chrono::steady_clock::time_point cached_at_{};
  std::vector<ProjectionView> cached_;
  std::chrono::steady_clock::time_point streams_at_{};
  std::int64_t streams_ = 0;
};

}  // namespace evs::http
