#include "site.hpp"

#include "evs/core/error.hpp"
#include "evs/eventstore/open_store.hpp"
#include "evs/projections/lag.hpp"

#include "stored_projections.hpp"

#include <algorithm>
#include <filesystem>
#include <map>

namespace evs::http {

bool is_sqlite(const std::string& location) {
  const auto l = parse_store_location(location);
  return !l || l->backend == StoreBackend::sqlite;
}

bool missing_sqlite_file(const std::string& location) {
  if (!is_sqlite(location)) return false;
  const auto l = parse_store_location(location);
  std::error_code ec;
  return !std::filesystem::exists(l ? l->target : location, ec);
}

Site::Site(EventStore& store, ProjectionEngine* engine, cli::Application app, ServeOptions options)
    : store_(store),
      engine_(engine),
      app_(std::move(app)),
      options_(std::move(options)),
      discard_(nullptr),
      context_{app_, discard_, discard_, app_.default_db.string()},
      metrics_(store) {}

Site::~Site() = default;

bool Site::postgres() const {
  return !app_.default_db.empty() && context_.postgres();
}

void Site::with_store_sql(const std::function<void(cli::StoreSql&)>& query) {
  std::lock_guard lock(sql_mutex_);
  try {
    if (!sql_) sql_ = open_kept(store_location());
    query(*sql_);
  } catch (...) {
    sql_.reset();
    throw;
  }
}

std::unique_ptr<cli::StoreSql> Site::open_kept(const std::string& location) {
  // A connection kept open must see later changes: a read-only open of a SQLite file that is closed at that
  // instant would read it as an immutable file. Read-write (it never writes), unless the file cannot be
  // written (read-only media), where nothing else can change it either.
  try {
    return cli::open_sql_at(context_, location, true);
  } catch (const std::exception&) {
    return cli::open_sql_at(context_, location, false);
  }
}

void Site::read_once(const std::string& location, const std::function<void(cli::StoreSql&)>& query) {
  auto sql = cli::open_sql_at(context_, location, false);  // never creates a file
  query(*sql);
}

void Site::with_database(const std::string& location, const std::function<void(cli::StoreSql&)>& query) {
  Database* db = nullptr;
  {
    std::lock_guard lock(databases_mutex_);
    auto& slot = databases_[location];
    if (!slot) slot = std::make_unique<Database>();
    db = slot.get();
  }
  std::lock_guard lock(db->mutex);
  try {
    if (!db->sql) db->sql = open_kept(location);
    query(*db->sql);
  } catch (...) {
    db->sql.reset();
    throw;
  }
}

std::vector<std::string> Site::projection_databases() {
  std::vector<std::string> out = cli::projection_databases(context_, "");
  for (const std::string& extra : options_.projection_databases)
    if (std::none_of(out.begin(), out.end(), [&](const std::string& d) {
          return cli::same_file_key(d) == cli::same_file_key(extra);
        }))
      out.push_back(extra);
  return out;
}

std::optional<std::string> Site::database_of(const std::string& name) {
  for (const cli::ProjectionEntry& e : app_.projections)
    if (e.projection != nullptr && e.projection->name() == name && !e.options.database.empty())
      return e.options.database.string();
  for (const ProjectionView& v : projections())
    if (v.health.name == name && !v.database.empty()) return v.database;
  return std::nullopt;
}

std::vector<ProjectionView> Site::projections() {
  std::unique_lock lock(cache_mutex_);
  for (;;) {
    const bool loaded = cached_at_ != std::chrono::steady_clock::time_point{};
    if (loaded && std::chrono::steady_clock::now() - cached_at_ < options_.cache_for) return cached_;
    // One request reads the figures (without holding the lock: the reads may take a while); the others
    // serve the last ones meanwhile, or wait for the first.
    if (refreshing_) {
      if (loaded) return cached_;
      refreshed_.wait(lock, [&] { return !refreshing_; });
      continue;
    }
    refreshing_ = true;
    lock.unlock();
    std::vector<ProjectionView> views;
    std::exception_ptr error;
    try {
      views = read_projections();
    } catch (...) {
      error = std::current_exception();
    }
    lock.lock();
    refreshing_ = false;
    refreshed_.notify_all();
    if (error) std::rethrow_exception(error);
    cached_ = std::move(views);
    cached_at_ = std::chrono::steady_clock::now();
    return cached_;
  }
}

std::int64_t Site::stream_count() {
  {
    std::lock_guard lock(cache_mutex_);
    if (streams_at_ != std::chrono::steady_clock::time_point{} &&
        std::chrono::steady_clock::now() - streams_at_ < options_.cache_for)
      return streams_;
  }
  std::int64_t n = 0;
  with_store_sql([&](cli::StoreSql& sql) { n = sql.scalar("SELECT count(*) FROM streams"); });
  std::lock_guard lock(cache_mutex_);
  streams_ = n;
  streams_at_ = std::chrono::steady_clock::now();
  return n;
}

namespace {

Timestamp from_micros(std::int64_t micros) { return Timestamp(std::chrono::microseconds(micros)); }

// (partition, position) of each stored checkpoint of `name` in `sql`.
std::vector<std::pair<std::size_t, std::uint64_t>> partition_checkpoints(cli::StoreSql& sql, const std::string& name) {
  std::vector<std::pair<std::size_t, std::uint64_t>> out;
  if (!sql.has_table("evs_checkpoints")) return out;
  sql.each("SELECT partition, position FROM evs_checkpoints WHERE projection = $1 ORDER BY partition",
           {cli::SqlParam::text(name)}, [&](const cli::SqlRow& row) {
             out.emplace_back(static_cast<std::size_t>(row.integer(0)), static_cast<std::uint64_t>(row.integer(1)));
           });
  return out;
}

}  // namespace

std::vector<ProjectionView> Site::read_projections() {
  std::map<std::string, const cli::ProjectionEntry*> entries;
  for (const cli::ProjectionEntry& e : app_.projections)
    if (e.projection != nullptr) entries[std::string(e.projection->name())] = &e;
  const std::map<std::string, cli::StoredProjection> stored =
      cli::read_stored_projections(context_, projection_databases(), "");

  std::vector<ProjectionView> out;
  if (engine_ != nullptr) {
    for (ProjectionHealth& h : engine_->health()) {
      ProjectionView v;
      v.state = std::string(to_string(h.state));
      v.kind = cli::kind_name(h.kind);
      v.health = std::move(h);
      out.push_back(std::move(v));
    }
  } else {
    const std::uint64_t head = must(store_.last_position());
    for (const auto& [name, s] : stored) {
      ProjectionView v;
      v.state = "stored";
      ProjectionHealth& h = v.health;
      h.name = name;
      ReadAllFilter filter;
      if (const auto e = entries.find(name); e != entries.end()) {
        v.kind = cli::kind_name(e->second->projection->kind());
        h.kind = e->second->projection->kind();
        filter.event_types = e->second->projection->event_types();
      }
      h.position = s.position;
      h.head = head;
      if (s.checkpointed) {
        const ProjectionLag lag = must(projection_lag(store_, s.position, filter));
        h.head = lag.head;
        h.lag_events = lag.lag_events;
        h.lag_seconds = lag.lag_seconds;
      }
      h.partitions = static_cast<std::size_t>(std::max<std::uint64_t>(s.partitions, 1));
      for (const cli::StoredClaim& c : s.claims)
        h.claims.push_back({static_cast<std::size_t>(c.partition), c.held() ? c.owner : std::string(), c.epoch,
                            from_micros(c.lease_until)});
      out.push_back(std::move(v));
    }
  }
  for (ProjectionView& v : out) {
    const auto s = stored.find(v.health.name);
    if (const auto e = entries.find(v.health.name); e != entries.end() && !e->second->options.database.empty())
      v.database = e->second->options.database.string();
    else if (s != stored.end())
      v.database = s->second.database;
    if (s != stored.end()) {
      v.health.dead_letters = s->second.parked;
      v.retry_queued = s->second.retry;
    }
    if (!v.database.empty() && s != stored.end()) {
      with_database(v.database,
                    [&](cli::StoreSql& sql) { v.partition_checkpoints = partition_checkpoints(sql, v.health.name); });
    }
  }
  return out;
}

}  // namespace evs::http
