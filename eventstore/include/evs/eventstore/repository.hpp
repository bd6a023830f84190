// Repository<A>: loads aggregates (latest valid snapshot + the events after it) and saves their pending
// events with the right expectation. Optional snapshot policy: one snapshot every N events.
//
// A snapshot is used only while it matches the code: the fingerprint of the state type (its layout) and
// the aggregate's snapshot version (its apply() logic). Declare
//   static constexpr std::uint32_t snapshot_version = 2;
// in the aggregate when apply() changes so that a stored state would differ from a replay (default 1):
// every older snapshot is then ignored and the aggregate is replayed from its events (and re-snapshotted).
#pragma once

#include "evs/core/aggregate.hpp"
#include "evs/core/codec.hpp"
#include "evs/core/event.hpp"
#include "evs/core/registry.hpp"
#include "evs/eventstore/event_store.hpp"

#include <boost/core/demangle.hpp>

#include <algorithm>
#include <limits>
#include <optional>
#include <string>
#include <string_view>
#include <type_traits>
#include <vector>

namespace evs {

// The aggregate's A::snapshot_version, or 1 when it declares none.
template <class A>
constexpr std::uint32_t snapshot_version_of() {
  if constexpr (requires { A::snapshot_version; }) {
    static_assert(std::is_convertible_v<decltype(A::snapshot_version), std::uint32_t>,
                  "snapshot_version: declare it as static constexpr std::uint32_t");
    return A::snapshot_version;
  } else {
    return 1;
  }
}

struct RepositoryOptions {
  Encoding encoding = Encoding::binary;  // how new events and snapshots are encoded
  std::uint64_t snapshot_every = 0;      // save a snapshot each time the version crosses a multiple of N; 0 = never
  std::size_t page_size = 4096;          // events read per round trip while loading
};

template <class A>
class Repository {
 public:
  using State = typename A::state_type;

  // Checks the upcasting chains of the global registry first (once per process): a broken chain stops the
  // program here, at start-up, with every broken link named (see EventRegistry::validate).
  explicit Repository(EventStore& store, RepositoryOptions options = {}) : store_(store), options_(options) {
    detail::require_valid_upcasting_chains();
    options_.page_size = std::max<std::size_t>(options_.page_size, 1);
  }

  // The aggregate with every stored event applied. Errors: stream_not_found, and any read/decode error.
  [[nodiscard]] Result<A> load(std::string_view id) { return load_until(id, std::numeric_limits<std::uint64_t>::max()); }

  // Like load(), but a stream with no events gives a new aggregate at version 0 instead of an error.
  [[nodiscard]] Result<A> load_or_create(std::string_view id) {
    auto r = load(id);
    if (!r && r.error().is(errc::stream_not_found)) return A(std::string(id));
    return r;
  }

  // Time travel: the aggregate as it was when the global log ended at `position`.
  [[nodiscard]] Result<A> load_as_of(std::string_view id, std::uint64_t position) { return load_until(id, position); }

  // Time travel: the aggregate as it was at time `t` (events recorded at or before t).
  [[nodiscard]] Result<A> load_as_of(std::string_view id, Timestamp t) {
    auto p = store_.position_at(t);
    if (!p) return p.error();
    if (*p == 0) return Error{errc::stream_not_found, "no events recorded at or before the requested time"};
    return load_until(id, *p);
  }

  // For a command identified by `command_id`: the aggregate as it was just before that command's first
  // event (command_event_id(command_id, 0)) if the command's events are stored, so a retried command is
  // decided again on the same state; otherwise the same as load(). The events are looked for after the
  // latest snapshot only: a retry of a command that a newer snapshot already includes is decided on the
  // current state (and still stores nothing new if it raises as many events as the first time).
  // Errors: as load(), stream_not_found included.
  [[nodiscard]] Result<A> load_for_command(std::string_view id, const Uuid& command_id) {
    return load_until(id, std::numeric_limits<std::uint64_t>::max(), command_event_id(command_id, 0));
  }

  // Appends the aggregate's pending events, expecting the stream to be at persisted_version(), and marks
  // them committed. Nothing pending: appends nothing and returns the version the aggregate knows.
  // With a `command_id`, the i-th pending event gets the id command_event_id(command_id, i) instead of a new
  // one, so saving the same command's events again stores nothing and returns the original result
  // (idempotent_replay = true), whatever version the aggregate was loaded at.
  [[nodiscard]] Result<AppendResult> save(A& aggregate, const EventMetadata& metadata = {},
                                          const std::optional<Uuid>& command_id = std::nullopt) {
    const auto& pending = aggregate.pending_events();
    const std::uint64_t before = aggregate.persisted_version();
    if (pending.empty()) return AppendResult{before, 0, 0, false};
    std::vector<EventData> batch;
    batch.reserve(pending.size());
    for (const auto& event : pending)
      std::visit(
          [&](const auto& e) {
            std::optional<Uuid> event_id;
            if (command_id) event_id = command_event_id(*command_id, batch.size());
            batch.push_back(make_event_data(e, options_.encoding, metadata, event_id));
          },
          event);
    const std::string stream = aggregate.stream_id();
    auto result = store_.append(stream, ExpectedVersion::exact(before), batch);
    if (!result) return result;
    aggregate.mark_committed();
    const std::uint64_t n = options_.snapshot_every;
    // No snapshot of a replayed command: the state it re-decided need not match the stored events
    // byte for byte (a retried command may have computed, e.g., a different timestamp).
    if (n > 0 && !result->idempotent_replay && aggregate.version() / n > before / n) {
      // A snapshot is an optimisation: failing to save one never fails the save (the events are stored).
      (void)save_snapshot(aggregate);
    }
    return result;
  }

  // Stores a snapshot of the aggregate's current (persisted) state.
  [[nodiscard]] Result<void> save_snapshot(const A& aggregate) {
    Snapshot s;
    s.stream_id = aggregate.stream_id();
    s.version = aggregate.persisted_version();
    s.state_type = boost::core::demangle(typeid(State).name());
    s.fingerprint = fingerprint_v<State>;
    s.snapshot_version = snapshot_version_of<A>();
    s.encoding = options_.encoding;
    s.payload = encode(aggregate.state(), options_.encoding);
    return store_.save_snapshot(s);
  }

 private:
  // Loads up to `until_position`; with `stop_before`, stops just before the event with that id (read with
  // the envelope then, to see event ids).
  [[nodiscard]] Result<A> load_until(std::string_view id, std::uint64_t until_position,
                                     const std::optional<Uuid>& stop_before = std::nullopt) {
    A aggregate{std::string(id)};
    const std::string stream = aggregate.stream_id();
    std::uint64_t next_version = 1;
    if (auto snap = usable_snapshot(stream, until_position); !snap) {
      return snap.error();
    } else if (*snap) {
      aggregate.restore(std::move((*snap)->first), (*snap)->second);
      next_version = (*snap)->second + 1;
    }
    std::vector<RecordedEvent> page;  // reused from page to page
    for (;;) {
      ReadStreamOptions o;
      o.from_version = next_version;
      o.max_count = options_.page_size;
      o.until_position = until_position;
      o.envelope = stop_before.has_value();  // otherwise apply() sees only the typed event
      if (auto read = store_.read_stream_into(page, stream, o); !read) {
        if (read.error().is(errc::stream_not_found) && next_version > 1) break;  // snapshot covers it all
        return read.error();
      }
      for (const RecordedEvent& e : page) {
        if (stop_before && e.event_id == *stop_before) return aggregate;
        if (auto r = aggregate.replay(e); !r) return r.error();
      }
      if (page.size() < options_.page_size) break;
      next_version = page.back().version + 1;
    }
    return aggregate;
  }

  // The latest snapshot if it is trustworthy for this load: fingerprint matches the current State type, its
  // snapshot version the aggregate's, it decodes, and (for time travel) it does not include events after until_position. Otherwise nullopt, so
  // the caller replays from the start; a bad snapshot is never an error.
  [[nodiscard]] Result<std::optional<std::pair<State, std::uint64_t>>> usable_snapshot(const std::string& stream,
                                                                          std::uint64_t until_position) {
    using Out = std::optional<std::pair<State, std::uint64_t>>;
    auto snap = store_.load_snapshot(stream);
    if (!snap) return snap.error();
    if (!*snap || (*snap)->fingerprint != fingerprint_v<State> ||
        (*snap)->snapshot_version != snapshot_version_of<A>() || (*snap)->version == 0)
      return Out{};
    if (until_position != std::numeric_limits<std::uint64_t>::max()) {
      ReadStreamOptions o;
      o.from_version = (*snap)->version;
      o.max_count = 1;
      o.envelope = false;
      auto at = store_.read_stream(stream, o);
      if (!at) return at.error().is(errc::stream_not_found) ? Result<Out>(Out{}) : Result<Out>(at.error());
      if (at->empty() || at->front().position > until_position) return Out{};
    }
    State state{};
    if (!decode_into((*snap)->payload, (*snap)->encoding, state)) return Out{};
    return Out{std::in_place, std::move(state), (*snap)->version};
  }

  EventStore& store_;
  RepositoryOptions options_;
};

}  // namespace evs
