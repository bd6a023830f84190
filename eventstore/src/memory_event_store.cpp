#include "evs/eventstore/memory_event_store.hpp"

#include "append_checks.hpp"
#include "commit_listeners.hpp"

#include <algorithm>
#include <condition_variable>
#include <map>
#include <mutex>
#include <set>
#include <tuple>
#include <unordered_map>

namespace evs {

struct MemoryEventStore::Impl {
  MemoryOptions options;
  std::mutex mutex;
  std::vector<RecordedEvent> log;                                       // index = position - 1
  std::unordered_map<std::string, std::vector<std::size_t>> streams;    // stream -> log indexes
  std::unordered_map<Uuid, std::size_t, UuidHash> by_id;                // event id -> log index
  std::map<std::string, Snapshot, std::less<>> snapshots;
  std::map<std::pair<std::string, std::uint32_t>, RecordedSchema> schemas;  // (type, schema version) -> record
  detail::CommitListeners listeners;
  detail::AppendObservers observers;
  std::uint64_t changes = 0;  // change_token(): bumped by every append that stores events
  std::set<std::tuple<std::string, std::uint32_t, std::uint64_t>> warned;  // drifts warned about

  // Listeners hear commits in position order: an append that stored positions [first, last] waits until
  // every earlier position was announced. Positions are handed out under `mutex`, so the wait always ends.
  std::mutex notify_mutex;
  std::condition_variable notify_turn;
  std::uint64_t notified_through = 0;  // guarded by notify_mutex

  void notify_in_order(const AppendResult& stored) {
    std::unique_lock lock(notify_mutex);
    notify_turn.wait(lock, [&] { return notified_through + 1 == stored.first_position; });
    listeners.notify(stored.last_position);
    notified_through = stored.last_position;
    notify_turn.notify_all();
  }

  std::uint64_t version_of(std::string_view stream) const {
    auto it = streams.find(std::string(stream));
    return it == streams.end() ? 0 : it->second.size();
  }

  // MemoryOptions::schema_check for the events of one append, before anything of it is stored: the
  // refusal, or an empty Error (warnings for `warn` are added to `warnings`). An event is compared with the
  // record of its (type, version), or else with the first event of that (type, version) in this append
  // (the one that will be recorded).
  Error check_schemas(std::string_view stream, std::span<const EventData> events,
                      std::vector<std::string>& warnings) {
    if (options.schema_check == SchemaCheck::off) return {};
    std::map<std::pair<std::string, std::uint32_t>, std::uint64_t> first_in_append;
    for (const EventData& e : events) {
      if (e.fingerprint == 0) continue;
      const auto key = std::pair(e.type, e.schema_version);
      RecordedSchema recorded;
      if (auto it = schemas.find(key); it != schemas.end()) {
        recorded = it->second;
      } else if (auto first = first_in_append.find(key); first != first_in_append.end()) {
        recorded = {e.type, e.schema_version, first->second,
                    registered_members(EventRegistry::global(), e.type, e.schema_version, first->second), {}};
      } else {
        first_in_append.emplace(key, e.fingerprint);
        continue;
      }
      if (recorded.fingerprint == e.fingerprint) continue;
      const SchemaDrift drift = appended_schema_drift(recorded, e.fingerprint, EventRegistry::global());
      if (options.schema_check == SchemaCheck::refuse)
        return {errc::schema_drift, appended_schema_drift_report("the memory store", stream, drift, false)};
      if (warned.emplace(e.type, e.schema_version, e.fingerprint).second)
        warnings.push_back(appended_schema_drift_report("the memory store", stream, drift, true));
    }
    return {};
  }

  // The original result if `events` is an exact retry; an error if it overlaps only partly; nullopt if new.
  std::optional<Result<AppendResult>> idempotent(std::string_view stream, std::span<const EventData> events) {
    std::size_t found = 0;
    for (const EventData& e : events) {
      auto it = by_id.find(e.event_id);
      if (it == by_id.end()) continue;
      ++found;
      if (log[it->second].stream_id != stream)
        return Result<AppendResult>(
            detail::partial_duplicate(stream, e.event_id, "is already stored in stream " + log[it->second].stream_id));
    }
    if (found == 0) return std::nullopt;
    if (found != events.size())
      return Result<AppendResult>(detail::partial_duplicate(
          stream, events.front().event_id, "is part of a retry that overlaps an earlier append only partly"));
    const RecordedEvent& first = log[by_id[events.front().event_id]];
    for (std::size_t i = 0; i < events.size(); ++i) {
      const RecordedEvent& r = log[by_id[events[i].event_id]];
      if (r.version != first.version + i)
        return Result<AppendResult>(detail::partial_duplicate(
            stream, events[i].event_id, "was stored at another place in the stream than this retry puts it"));
    }
    const RecordedEvent& last = log[by_id[events.back().event_id]];
    return Result<AppendResult>(AppendResult{last.version, first.position, last.position, true});
  }
};

MemoryEventStore::MemoryEventStore() : MemoryEventStore(MemoryOptions{}) {}
MemoryEventStore::MemoryEventStore(MemoryOptions options) : impl_(std::make_unique<Impl>()) {
  impl_->options = std::move(options);
}
MemoryEventStore::~MemoryEventStore() = default;

Result<AppendResult> MemoryEventStore::append(std::string_view stream_id, ExpectedVersion expected,
                                              std::span<const EventData> events) {
  std::vector<std::string> warnings;
  const auto started = std::chrono::steady_clock::now();
  auto result = append_locked(stream_id, expected, events, warnings);
  impl_->observers.report([&](detail::AppendObservers::Group& group) {
    group.add(started, detail::AppendObservers::stored(result), !result);
  });
  for (const std::string& w : warnings) report_schema_warning(impl_->options.schema_warning, w);
  if (result && result->last_position != 0 && !result->idempotent_replay) impl_->notify_in_order(*result);
  return result;
}

Result<AppendResult> MemoryEventStore::append_locked(std::string_view stream_id, ExpectedVersion expected,
                                                     std::span<const EventData> events,
                                                     std::vector<std::string>& warnings) {
  if (Error e = detail::validate_append(stream_id, events); e.code) return e;
  std::lock_guard lock(impl_->mutex);
  if (auto replay = impl_->idempotent(stream_id, events)) return *replay;
  const std::uint64_t current = impl_->version_of(stream_id);
  if (!expected.accepts(current)) return detail::wrong_version(stream_id, current, expected);
  if (events.empty()) return AppendResult{current, 0, 0, false};
  if (Error refused = impl_->check_schemas(stream_id, events, warnings); refused.code) return refused;

  auto& indexes = impl_->streams[std::string(stream_id)];
  Timestamp now = std::chrono::time_point_cast<std::chrono::microseconds>(Clock::now());
  if (!impl_->log.empty()) now = std::max(now, impl_->log.back().recorded_at);
  AppendResult result{current + events.size(), impl_->log.size() + 1, impl_->log.size() + events.size(), false};
  ++impl_->changes;
  for (const EventData& e : events) {
    RecordedEvent r;
    r.position = impl_->log.size() + 1;
    r.stream_id = std::string(stream_id);
    r.version = indexes.size() + 1;
    r.event_id = e.event_id;
    r.type = e.type;
    r.schema_version = e.schema_version;
    r.encoding = e.encoding;
    r.recorded_at = now;
    r.payload = e.payload;
    r.metadata = e.metadata;
    if (e.fingerprint != 0) {
      auto [at, added] = impl_->schemas.try_emplace({e.type, e.schema_version});
      if (added)
        at->second = {e.type, e.schema_version, e.fingerprint,
                      registered_members(EventRegistry::global(), e.type, e.schema_version, e.fingerprint), now};
    }
    impl_->by_id.emplace(e.event_id, impl_->log.size());
    indexes.push_back(impl_->log.size());
    impl_->log.push_back(std::move(r));
  }
  return result;
}

std::uint64_t MemoryEventStore::add_commit_listener(CommitListener listener) {
  return impl_->listeners.add(std::move(listener));
}

void MemoryEventStore::remove_commit_listener(std::uint64_t id) { impl_->listeners.remove(id); }

std::uint64_t MemoryEventStore::add_append_observer(AppendObserver observer) {
  return impl_->observers.add(std::move(observer));
}

void MemoryEventStore::remove_append_observer(std::uint64_t id) { impl_->observers.remove(id); }

Result<std::uint64_t> MemoryEventStore::change_token() {
  std::lock_guard lock(impl_->mutex);
  return impl_->changes;
}

void MemoryEventStore::append_async(std::string_view stream_id, ExpectedVersion expected,
                                    std::span<const EventData> events, AppendCallback done) {
  done(append(stream_id, expected, events));
}

Result<std::vector<RecordedEvent>> MemoryEventStore::read_stream(std::string_view stream_id,
                                                                 const ReadStreamOptions& o) {
  std::lock_guard lock(impl_->mutex);
  auto it = impl_->streams.find(std::string(stream_id));
  const auto& log = impl_->log;
  const auto visible = [&](std::size_t index) { return log[index].position <= o.until_position; };
  if (it == impl_->streams.end() || it->second.empty() || !visible(it->second.front()))
    return Error{errc::stream_not_found, "stream " + std::string(stream_id) + " has no events"};
  const auto& idx = it->second;
  std::vector<RecordedEvent> out;
  if (o.direction == Direction::forward) {
    for (std::uint64_t v = std::max<std::uint64_t>(o.from_version, 1); v <= idx.size() && out.size() < o.max_count; ++v) {
      if (!visible(idx[v - 1])) break;
      out.push_back(log[idx[v - 1]]);
    }
  } else {
    for (std::uint64_t v = std::min<std::uint64_t>(o.from_version, idx.size()); v >= 1 && out.size() < o.max_count; --v)
      if (visible(idx[v - 1])) out.push_back(log[idx[v - 1]]);
  }
  return out;
}

Result<ReadAllBatch> MemoryEventStore::read_all(std::uint64_t from_position, std::size_t max_count,
                                                const ReadAllFilter& filter) {
  std::lock_guard lock(impl_->mutex);
  ReadAllBatch batch;
  std::uint64_t p = std::max<std::uint64_t>(from_position, 1);
  const auto matches = [&](const RecordedEvent& e) {
    const auto has = [](const std::vector<std::string>& set, std::string_view v) {
      return set.empty() || std::find(set.begin(), set.end(), v) != set.end();
    };
    return has(filter.event_types, e.type) && has(filter.categories, stream_category(e.stream_id));
  };
  for (; p <= impl_->log.size() && batch.events.size() < max_count; ++p)
    if (matches(impl_->log[p - 1])) batch.events.push_back(impl_->log[p - 1]);
  batch.next_position = p == std::max<std::uint64_t>(from_position, 1) ? from_position : p;  // nothing examined: unchanged
  return batch;
}

Result<std::uint64_t> MemoryEventStore::stream_version(std::string_view stream_id) {
  std::lock_guard lock(impl_->mutex);
  return impl_->version_of(stream_id);
}

Result<std::uint64_t> MemoryEventStore::last_position() {
  std::lock_guard lock(impl_->mutex);
  return impl_->log.size();
}

Result<std::uint64_t> MemoryEventStore::position_at(Timestamp t) {
  std::lock_guard lock(impl_->mutex);
  auto it = std::upper_bound(impl_->log.begin(), impl_->log.end(), t,
                             [](Timestamp ts, const RecordedEvent& e) { return ts < e.recorded_at; });
  return static_cast<std::uint64_t>(it - impl_->log.begin());
}

Result<void> MemoryEventStore::save_snapshot(const Snapshot& snapshot) {
  if (snapshot.stream_id.empty()) return Error{errc::invalid_argument, "snapshot without a stream id"};
  std::lock_guard lock(impl_->mutex);
  if (const std::uint64_t current = impl_->version_of(snapshot.stream_id); snapshot.version > current)
    return Error{errc::invalid_argument, "snapshot of stream " + snapshot.stream_id + " at version " +
                                             std::to_string(snapshot.version) + ", but the stream is at version " +
                                             std::to_string(current)};
  auto it = impl_->snapshots.find(snapshot.stream_id);
  if (it != impl_->snapshots.end() && it->second.version > snapshot.version) return {};  // keep the newer one
  Snapshot s = snapshot;
  s.recorded_at = std::chrono::time_point_cast<std::chrono::microseconds>(Clock::now());
  impl_->snapshots[snapshot.stream_id] = std::move(s);
  return {};
}

Result<std::optional<Snapshot>> MemoryEventStore::load_snapshot(std::string_view stream_id,
                                                                std::uint64_t max_version) {
  std::lock_guard lock(impl_->mutex);
  auto it = impl_->snapshots.find(stream_id);
  if (it == impl_->snapshots.end() || it->second.version > max_version) return std::optional<Snapshot>{};
  return std::optional<Snapshot>{it->second};
}

Result<std::vector<RecordedSchema>> MemoryEventStore::recorded_schemas() {
  std::lock_guard lock(impl_->mutex);
  std::vector<RecordedSchema> out;
  for (const auto& [key, schema] : impl_->schemas) out.push_back(schema);
  return out;
}

}  // namespace evs
