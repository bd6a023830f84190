// The PostgreSQL backend: one event store shared by every process and node that connects to the same database
// (and schema). Built when evs is configured with EVS_POSTGRESQL=ON; see docs/postgresql.md.
//
// Ordering. Every event's global position is (writer's transaction id + tx offset) * 2^20 + its index in that
// transaction. Positions are therefore unique and ascending in log order, the events of one append occupy
// consecutive positions, but positions have gaps and are not in commit order. Readers (read_all,
// last_position, position_at, commit listeners) only see the log below the *fence*: the oldest transaction
// still running in the cluster. Everything below it is final, so a reader that keeps a position as its
// cursor never skips an event that commits late. Limits: at most 2^20 - 1 events per transaction (one append
// or one group), and transaction ids below 2^43.
//
// read_stream and stream_version see every committed event of a stream at once (read-your-writes for
// aggregates); the log readers may lag an acknowledged append while an older transaction anywhere in the
// cluster is still open (PgEventStore::fence_holders() says who holds it).
//
// Writes go through `writers` connections practising group commit: each takes every append queued while it
// was busy, decides each append's outcome on its own under per-stream advisory locks, and commits the group
// as one transaction. A lost connection is reconnected and the group retried with the same event ids, so an
// append whose COMMIT reply was lost is resolved by the idempotent retry, never stored twice. Commit
// listeners are called by the store's follower thread: after this object's commits, after a NOTIFY from any
// process, or after its fallback poll, whenever the readable head moved.
#pragma once

#include "evs/eventstore/event_store.hpp"

#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <vector>

namespace evs {

struct PgOptions {
  // Where the store lives: a postgresql:// URI or a libpq "key=value" connection string.
  std::string url;
  // The PostgreSQL schema holding the store's tables (created if missing). Several stores can share one
  // database in different schemas.
  std::string schema = "public";
  // Connections that commit appends (each one group at a time), and connections for reads.
  std::size_t writers = 1;
  std::size_t readers = 4;
  // Upper bounds on one group transaction: appends, and bytes of event data. A group takes at least one
  // append. A single append of more than 2^20 - 1 events is refused with invalid_argument.
  std::size_t max_group = 1024;
  std::size_t max_group_bytes = 16 << 20;
  // The largest event an append accepts (payload, metadata and ids); 0: PostgreSQL's 1 GB field limit.
  std::size_t max_event_bytes = 0;
  // How long one connection attempt may take.
  std::chrono::milliseconds connect_timeout{std::chrono::seconds(10)};
  // A statement running longer is canceled (timed_out); zero: no limit.
  std::chrono::milliseconds statement_timeout{0};
  // How long an append keeps reconnecting and retrying after the server went away before it fails with
  // unavailable (its message then says that the outcome is unknown and that a retry with the same event ids
  // is safe). Reads retry once on a fresh connection and otherwise fail with unavailable at once.
  std::chrono::milliseconds reconnect_timeout{std::chrono::seconds(30)};
  // The follower's fallback poll of the head (notifications normally wake it within a millisecond).
  std::chrono::milliseconds poll_interval{100};
  // Open without writing anything (no migrations; appends and snapshots fail with read_only).
  bool read_only = false;
  // Shape-drift checks at open and at append, as SqliteOptions::schema_check (see schema_drift.hpp).
  SchemaCheck schema_check = SchemaCheck::refuse;
  std::function<void(const std::string&)> schema_warning;
  const EventRegistry* registry = nullptr;  // null: the global registry
};

// One session that holds the fence back: an open transaction with an id, oldest first.
struct PgFenceHolder {
  int pid = 0;
  std::string application_name;
  std::string state;  // "active", "idle in transaction", ...; "prepared" for a prepared transaction
  std::chrono::milliseconds age{0};  // how long its transaction has been open
};

class PgEventStore final : public EventStore {
 public:
  // Connects, creates or migrates the schema and starts the follower. Throws evs::Exception with
  // unavailable (server unreachable), not_an_evs_database (the schema holds something else), read_only,
  // schema_drift or io_error, with a message naming the database.
  explicit PgEventStore(PgOptions options);
  ~PgEventStore() override;  // finishes queued appends, stops the follower, closes the connections
  PgEventStore(const PgEventStore&) = delete;
  PgEventStore& operator=(const PgEventStore&) = delete;

  Result<AppendResult> append(std::string_view stream_id, ExpectedVersion expected,
                              std::span<const EventData> events) override;
  void append_async(std::string_view stream_id, ExpectedVersion expected, std::span<const EventData> events,
                    AppendCallback done) override;
  Result<std::vector<RecordedEvent>> read_stream(std::string_view stream_id,
                                                 const ReadStreamOptions& options = {}) override;
  Result<ReadAllBatch> read_all(std::uint64_t from_position, std::size_t max_count,
                                const ReadAllFilter& filter = {}) override;
  Result<void> read_stream_into(std::vector<RecordedEvent>& out, std::string_view stream_id,
                                const ReadStreamOptions& options = {}) override;
  Result<void> read_all_into(ReadAllBatch& out, std::uint64_t from_position, std::size_t max_count,
                             const ReadAllFilter& filter = {}) override;
  Result<std::uint64_t> stream_version(std::string_view stream_id) override;
  Result<std::uint64_t> last_position() override;
  Result<std::uint64_t> position_at(Timestamp t) override;
  // Counts rows (positions have gaps); stops counting at 10 million.
  Result<std::uint64_t> count_events(std::uint64_t after, std::uint64_t through) override;
  std::uint64_t add_commit_listener(CommitListener listener) override;
  void remove_commit_listener(std::uint64_t id) override;
  std::uint64_t add_append_observer(AppendObserver observer) override;
  void remove_append_observer(std::uint64_t id) override;
  Result<std::uint64_t> change_token() override;
  Result<void> save_snapshot(const Snapshot& snapshot) override;
  Result<std::optional<Snapshot>> load_snapshot(std::string_view stream_id,
                                                std::uint64_t max_version = end_of_stream) override;
  Result<std::vector<RecordedSchema>> recorded_schemas() override;

  // The sessions holding the readers' fence back, oldest first (empty when none is older than `min_age`).
  Result<std::vector<PgFenceHolder>> fence_holders(std::chrono::milliseconds min_age = std::chrono::seconds(1));

  const PgOptions& options() const;
  // The schema version this build writes.
  static int schema_version();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace evs
