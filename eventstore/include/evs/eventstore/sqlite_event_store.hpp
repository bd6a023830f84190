// The embedded SQLite backend (the default). One file, WAL mode, versioned schema migrations on open.
//
// Writes go through one writer thread that practises group commit: every append queued while the previous
// transaction was committing is committed in the next single transaction, each append in its own savepoint
// with its expectation checked on its own (one failing append fails alone), so durable throughput is not
// bounded by one fsync per append. Several processes writing one file take turns through the sidecar lock
// file `<path>-lock` (see docs/event-format.md): a waiting process writes as soon as the turn is free, and
// its group then takes everything that queued while it waited. A synchronous append() that
// finds the writer idle commits on the caller's thread instead (one writer at a time either way), which
// saves two thread hand-offs. A WAL checkpoint runs on the writer thread after the commit that made it due
// has been acknowledged (not inside that commit). Reads use a pool of read-only connections and run
// concurrently with the writer (WAL).
#pragma once

#include "evs/eventstore/event_store.hpp"

#include <chrono>
#include <filesystem>
#include <functional>
#include <string>
#include <memory>

namespace evs {

enum class Durability : std::uint8_t {
  // synchronous=FULL: the WAL is fsynced before an append is acknowledged. Survives power loss.
  full,
  // synchronous=NORMAL: the WAL is fsynced at checkpoints only. A crash of the process loses nothing; a power
  // loss or OS crash may lose the last acknowledged appends, but never corrupts the file.
  normal,
};

struct SqliteOptions {
  std::filesystem::path path;
  Durability durability = Durability::full;
  // How long a write waits for a lock held by another process before failing with database_locked: the
  // writers' turn in `<path>-lock` (held by another evs process for one transaction at a time, so only a
  // stopped or hung one keeps it this long), and SQLite's own lock (another program's transaction).
  std::chrono::milliseconds busy_timeout{5000};
  // Open without writing anything (no migrations; appends fail with read_only). A file that cannot be
  // written is opened this way automatically if its schema is already current. A store of an older schema
  // version that this build reads as it is (version 1: before the schema records) opens read-only too,
  // without migrating: it has no recorded schemas (nothing for schema_check to compare) and its snapshots
  // have snapshot version 1.
  bool read_only = false;
  // With read_only: read the file through SQLite's immutable=1, so that opening and reading create no -wal or
  // -shm file and take no lock. Only for a file nothing writes while it is open (a closed store: no -wal
  // next to it); changes made meanwhile by another process may be missed or misread. Ignored when writable.
  bool immutable = false;
  // Upper bounds on one group transaction: appends, and bytes of event data (payloads and metadata). A
  // group always takes at least one append, however big.
  std::size_t max_group = 1024;
  std::size_t max_group_bytes = 16 << 20;
  // The largest event (payload, metadata and ids) an append accepts; a bigger one fails its append (or
  // snapshot) with invalid_argument before anything is queued. 0: whatever SQLite's length limit allows
  // (about 1e9 bytes in the default build).
  std::size_t max_event_bytes = 0;
  // Shape-drift check at open (see schema_drift.hpp), before anything is decoded: the types registered in
  // `registry` are compared with the ones the store recorded per (type name, schema version). refuse: the
  // constructor throws evs::Exception(schema_drift) naming each type, version and the members added,
  // removed, renamed or retyped; warn: the same message goes to `schema_warning` (stderr when unset) and
  // the store opens; off: no comparison. Read-only opens are checked too.
  // And at append, for what the open could not see (a type this registry does not know, a record another
  // process made since): an event whose fingerprint differs from the one recorded for its (type name,
  // schema version). refuse: the append fails with schema_drift naming the type, version and members, and
  // stores nothing; warn: it is stored and the message goes to `schema_warning` once per store object and
  // (type, version, fingerprint), after the commit, on the committing thread; off: it is stored silently.
  // The record never changes, and it is written in the transaction of the events that make it.
  SchemaCheck schema_check = SchemaCheck::refuse;
  std::function<void(const std::string&)> schema_warning;
  // The registry the check compares with and appends take member descriptions from; null: the global one.
  const EventRegistry* registry = nullptr;
};

class SqliteEventStore final : public EventStore {
 public:
  // Opens (creating if needed) and migrates the store. Throws evs::Exception with not_an_evs_database,
  // read_only, database_locked or io_error and a message naming the file when that fails.
  explicit SqliteEventStore(SqliteOptions options);
  ~SqliteEventStore() override;  // finishes queued appends, then closes
  SqliteEventStore(const SqliteEventStore&) = delete;
  SqliteEventStore& operator=(const SqliteEventStore&) = delete;

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
  std::uint64_t add_commit_listener(CommitListener listener) override;
  void remove_commit_listener(std::uint64_t id) override;
  std::uint64_t add_append_observer(AppendObserver observer) override;
  void remove_append_observer(std::uint64_t id) override;
  Result<std::uint64_t> change_token() override;
  Result<void> save_snapshot(const Snapshot& snapshot) override;
  Result<std::optional<Snapshot>> load_snapshot(std::string_view stream_id,
                                                std::uint64_t max_version = end_of_stream) override;
  Result<std::vector<RecordedSchema>> recorded_schemas() override;

  const SqliteOptions& options() const;
  // The schema version this build writes (see docs/event-format.md).
  static int schema_version();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace evs
