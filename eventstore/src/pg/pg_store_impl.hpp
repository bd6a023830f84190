// What the PostgreSQL store's parts share (internal): options, connection pools, the caches of interned
// type names and recorded schemas, the commit listeners and the change token.
#pragma once

#include "evs/eventstore/pg_event_store.hpp"

#include <atomic>
#include <cstdint>
#include <map>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <tuple>
#include <unordered_map>

#include "../commit_listeners.hpp"
#include "pg_pool.hpp"

namespace evs::pg {

inline std::int64_t now_us() {
  return std::chrono::duration_cast<std::chrono::microseconds>(Clock::now().time_since_epoch()).count();
}
inline Timestamp from_us(std::int64_t us) { return Timestamp(std::chrono::microseconds(us)); }
inline std::int64_t to_db(std::uint64_t value) {
  constexpr auto max = static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max());
  return static_cast<std::int64_t>(value > max ? max : value);
}

// Whether a failed statement is worth running again as it was: a deadlock or serialization failure
// (SQLSTATE 40P01, 40001) the server resolved by aborting this transaction.
bool transient_conflict(const Error& error);

// State shared by the writer, the follower and the readers. Members are thread-safe as annotated.
struct StoreShared {
  PgOptions options;
  std::string channel;         // the NOTIFY channel of this store (notify_channel())
  PgConnectOptions connect;    // with search_path = the store's schema
  const EventRegistry* registry = nullptr;
  detail::CommitListeners listeners;
  detail::AppendObservers observers;
  std::atomic<std::uint64_t> changes{0};  // change_token()

  // Interned event type names (only ids of committed rows), both directions. Guarded by cache_mutex.
  std::mutex cache_mutex;
  std::unordered_map<std::string, std::int32_t> type_ids;
  std::unordered_map<std::int32_t, std::string> type_names;
  // Recorded schemas seen so far (records never change once written). Guarded by cache_mutex.
  std::map<std::pair<std::string, std::uint32_t>, RecordedSchema> schemas;
  // Drifts already warned about (SchemaCheck::warn warns once per store object). Guarded by cache_mutex.
  std::set<std::tuple<std::string, std::uint32_t, std::uint64_t>> warned;

  std::string describe() const { return "the PostgreSQL store (schema " + options.schema + ")"; }
};

}  // namespace evs::pg
