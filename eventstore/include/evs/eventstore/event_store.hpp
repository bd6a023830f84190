// The EventStore interface: the one contract every backend (in-memory, SQLite, later PostgreSQL) implements
// and one shared contract test suite checks.
//
// Guarantees of every implementation:
//  - An acknowledged append is durable (per the backend's durability setting) and visible to every later
//    read on any thread. Global positions are unique, gap-free, start at 1, and the events of one append
//    occupy consecutive positions. Stream versions are contiguous, starting at 1.
//  - Appends are atomic: all events of one append are stored, or none.
//  - recorded_at never decreases along global positions (time travel relies on it).
//  - All methods are safe to call concurrently from any number of threads.
//  - Expected outcomes (conflict, missing stream, duplicate, bad argument, locked/read-only db, full disk)
//    come back as errors in Result; nothing already acknowledged is ever lost because of them.
#pragma once

#include "evs/core/envelope.hpp"
#include "evs/core/error.hpp"
#include "evs/core/event.hpp"
#include "evs/core/expected_version.hpp"
#include "evs/eventstore/schema_drift.hpp"

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <limits>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace evs {

struct AppendResult {
  std::uint64_t stream_version = 0;  // the stream's version after the append (the last event's version)
  std::uint64_t first_position = 0;  // global position of the first appended event (0 for an empty append)
  std::uint64_t last_position = 0;   // global position of the last appended event (0 for an empty append)
  bool idempotent_replay = false;    // true: these event ids were already stored; nothing new was written
};

enum class Direction : std::uint8_t { forward, backward };

inline constexpr std::uint64_t end_of_stream = std::numeric_limits<std::uint64_t>::max();

struct ReadStreamOptions {
  Direction direction = Direction::forward;
  // forward: first version returned is >= from_version; backward: first version returned is <= from_version.
  std::uint64_t from_version = 1;
  std::size_t max_count = std::numeric_limits<std::size_t>::max();
  // Only events with global position <= until_position (time travel). Default: no bound.
  std::uint64_t until_position = std::numeric_limits<std::uint64_t>::max();
  // false: a backend may fill only position, stream_id, version, type, schema_version, encoding and payload,
  // leaving event_id, recorded_at and metadata default (a cheaper read, for replaying aggregates: apply()
  // sees only the typed event).
  bool envelope = true;

  static ReadStreamOptions backward_from_end(std::size_t max_count = std::numeric_limits<std::size_t>::max()) {
    return {Direction::backward, end_of_stream, max_count};
  }
};

// Filter for read_all. Empty vectors mean "no filter on that field"; both filters combine with AND.
struct ReadAllFilter {
  std::vector<std::string> event_types;  // type names, e.g. {"shop.order_placed"}
  std::vector<std::string> categories;   // stream categories (the part of the stream id before the first '-')
  bool empty() const { return event_types.empty() && categories.empty(); }
};

struct ReadAllBatch {
  std::vector<RecordedEvent> events;  // ascending global position, all matching the filter
  // Where the next read should start: one past the last position examined. When the batch is short because
  // the filter skipped events, next_position still moves past them, so sparse filters make progress.
  std::uint64_t next_position = 1;
};

// The latest snapshot of one stream's aggregate state.
struct Snapshot {
  std::string stream_id;
  std::uint64_t version = 0;       // the stream version the state includes
  std::string state_type;          // informational: the state type's name
  std::uint64_t fingerprint = 0;   // schema fingerprint of the state type; a mismatch means "ignore"
  Encoding encoding = Encoding::binary;
  std::string payload;
  Timestamp recorded_at{};
  // The aggregate's snapshot_version (bumped when its apply() logic changes); a mismatch means "ignore".
  std::uint32_t snapshot_version = 1;
};

// How append_event stores its one event.
struct AppendEventOptions {
  EventMetadata metadata;
  // The event's id; without one, a new id. Pass a deterministic id (e.g. a command's id) to make a retried
  // append idempotent: the same id in the same stream stores nothing and reports the original result.
  std::optional<Uuid> event_id;
  Encoding encoding = Encoding::binary;
};

class EventStore {
 public:
  virtual ~EventStore() = default;

  // Appends one typed event (an EVS_EVENT type: its registered name, schema version and encoded payload)
  // with the contract of append():
  //   store.append_event("transfer-t1", ExpectedVersion::no_stream(), TransferRequested{...}, {.metadata = m});
  template <Event E>
  [[nodiscard]] Result<AppendResult> append_event(std::string_view stream_id, ExpectedVersion expected, const E& event,
                                                  const AppendEventOptions& options = {}) {
    const EventData data = make_event_data(event, options.encoding, options.metadata, options.event_id);
    return append(stream_id, expected, std::span<const EventData>(&data, 1));
  }

  // Appends `events` to `stream_id` atomically if the stream's current version satisfies `expected`.
  // Errors: wrong_expected_version (nothing stored; message names the current version), invalid_argument
  // (empty stream id or type name, an id repeated inside the batch), duplicate_event (some but not all ids
  // are already stored in this stream, or an id is stored in another stream), read_only, database_locked,
  // disk_full, io_error, shutting_down.
  // Idempotence: if every event id is already stored in this stream, as the same consecutive versions, the
  // call stores nothing and returns the original result with idempotent_replay = true, whatever `expected`.
  // An empty `events` checks the expectation only and returns the current version.
  [[nodiscard]] virtual Result<AppendResult> append(std::string_view stream_id, ExpectedVersion expected,
                                      std::span<const EventData> events) = 0;

  using AppendCallback = std::function<void(Result<AppendResult>)>;
  // Asynchronous append: same contract as append(); `done` is called exactly once, on an unspecified thread
  // (possibly before append_async returns), after the outcome is durable. The backend copies what it needs
  // from the arguments before returning. Backends with a single writer batch concurrent appends into one
  // transaction (group commit), each append's expectation checked on its own.
  virtual void append_async(std::string_view stream_id, ExpectedVersion expected,
                            std::span<const EventData> events, AppendCallback done) = 0;

  // Reads one stream in the given direction. Errors: stream_not_found (the stream has no events; with an
  // until_position bound, none at or before it), io_error. An existing stream with nothing in range gives an
  // empty vector.
  [[nodiscard]] virtual Result<std::vector<RecordedEvent>> read_stream(std::string_view stream_id,
                                                         const ReadStreamOptions& options = {}) = 0;

  // Reads the global log from `from_position` (inclusive) in ascending order, at most `max_count` events
  // that match `filter`. Reading past the end returns an empty batch with next_position unchanged.
  [[nodiscard]] virtual Result<ReadAllBatch> read_all(std::uint64_t from_position, std::size_t max_count,
                                        const ReadAllFilter& filter = {}) = 0;

  // read_stream and read_all into a caller's buffer: `out` is replaced by the result, reusing its elements'
  // storage, so a caller reading page after page (a repository, a projection catching up) stops allocating
  // per event once its buffer is warm. Same contracts and errors; after an error `out` is unspecified.
  // The defaults call read_stream / read_all; backends override them to reuse the buffers.
  [[nodiscard]] virtual Result<void> read_stream_into(std::vector<RecordedEvent>& out, std::string_view stream_id,
                                        const ReadStreamOptions& options = {}) {
    auto events = read_stream(stream_id, options);
    if (!events) return events.error();
    out = std::move(*events);
    return {};
  }
  [[nodiscard]] virtual Result<void> read_all_into(ReadAllBatch& out, std::uint64_t from_position, std::size_t max_count,
                                     const ReadAllFilter& filter = {}) {
    auto batch = read_all(from_position, max_count, filter);
    if (!batch) return batch.error();
    out = std::move(*batch);
    return {};
  }

  // The stream's current version; 0 if it does not exist.
  [[nodiscard]] virtual Result<std::uint64_t> stream_version(std::string_view stream_id) = 0;

  // The global position of the last stored event; 0 if the store is empty.
  [[nodiscard]] virtual Result<std::uint64_t> last_position() = 0;

  // The number of events with after < position <= through (what lag_events counts). The default is
  // `through - after`, exact for backends with gap-free positions; backends with gaps count.
  [[nodiscard]] virtual Result<std::uint64_t> count_events(std::uint64_t after, std::uint64_t through) {
    return through > after ? through - after : 0;
  }

  // The last global position recorded at or before `t`; 0 if none.
  [[nodiscard]] virtual Result<std::uint64_t> position_at(Timestamp t) = 0;

  // ---- Change notification (what projections wake up on) ----

  using CommitListener = std::function<void(std::uint64_t last_position)>;
  // Calls `listener` after every commit of new events made through this object, with the new last position,
  // on the committing thread (SQLite: the writer thread, or the thread of an append() that committed itself).
  // Calls come in position order, also under concurrent appends: each call's last_position is larger than
  // the one before, and every position up to it is readable. One call may cover several commits.
  // It must be quick and must not call this store's blocking methods. Returns an id for
  // remove_commit_listener. Thread-safe.
  virtual std::uint64_t add_commit_listener(CommitListener listener) = 0;
  // After it returns, the listener is not running and will not be called again.
  virtual void remove_commit_listener(std::uint64_t id) = 0;

  // ---- Append figures (what metrics read) ----

  // One commit's appends, as the backend committed them: a group commit on SQLite and PostgreSQL (every
  // append answered by one transaction, or by one failed attempt), one append on the in-memory store.
  struct AppendGroup {
    std::size_t appends = 0;  // appends answered by this commit, failed ones included
    std::size_t failed = 0;   // of them, the ones answered with an error
    std::size_t events = 0;   // events stored (an idempotent replay or a failure stores none)
    // One per append: from the append()/append_async() call to its outcome being known.
    std::span<const std::chrono::nanoseconds> latencies;
  };
  using AppendObserver = std::function<void(const AppendGroup&)>;
  // Calls `observer` after each commit of appends made through this object, on the committing thread, before
  // the appenders are answered. The same rules as a commit listener: quick, no blocking calls into this
  // store, no adding or removing observers from inside it. Returns an id for remove_append_observer.
  // Thread-safe. The default (a backend that reports nothing) never calls it.
  virtual std::uint64_t add_append_observer(AppendObserver observer) {
    (void)observer;
    return 0;
  }
  // After it returns, the observer is not running and will not be called again.
  virtual void remove_append_observer(std::uint64_t id) { (void)id; }

  // A cheap number that changes whenever the store may have changed, including through other objects or
  // other processes (SQLite: PRAGMA data_version). Poll it to notice commits you were not told about.
  [[nodiscard]] virtual Result<std::uint64_t> change_token() = 0;

  // Replaces the stream's snapshot. A snapshot may be saved for any version <= the stream's version.
  [[nodiscard]] virtual Result<void> save_snapshot(const Snapshot& snapshot) = 0;

  // The stream's latest snapshot, or nullopt. `max_version` ignores a snapshot newer than that version.
  [[nodiscard]] virtual Result<std::optional<Snapshot>> load_snapshot(std::string_view stream_id,
                                                        std::uint64_t max_version = end_of_stream) = 0;

  // ---- Shape drift (see schema_drift.hpp) ----

  // What the store recorded per (type name, schema version): the fingerprint and member description of
  // the type of the first event of that version appended with a fingerprint (EventData::fingerprint != 0;
  // later appends never change a record). Ordered by type name, then version. Errors: io_error.
  [[nodiscard]] virtual Result<std::vector<RecordedSchema>> recorded_schemas() = 0;
};

}  // namespace evs
