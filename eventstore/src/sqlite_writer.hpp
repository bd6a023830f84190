// The SQLite store's single writer (internal): group commit on one read-write connection.
//
// Jobs queue from any thread. A commit takes the store's cross-process write turn (WriteTurn) first (when
// another process holds it past turn_timeout, the group fails with database_locked and nothing of it is
// stored), then
// gathers everything queued (up to max_group jobs and max_group_bytes of event data, at least one job),
// applies it in one BEGIN IMMEDIATE transaction, commits once, gives the turn up, tells the commit
// listeners, and only then completes the jobs. Gathering after the turn is taken means that the appends
// that queued while this process waited for another one's transaction all go into this commit.
// Each append of a group has its expectation checked on its own, and an append whose statements fail in
// SQLite fails alone: the group is then rolled back and run again with a savepoint around each append
// (savepoints cost time on every append, so the first run goes without), and the others commit. Only a failure that ends the transaction itself (a failed BEGIN or COMMIT, a full
// disk that made SQLite roll back, ...) fails the whole group, with the mapped error.
// A synchronous append that finds the writer idle commits on its own thread (append_and_wait);
// committing_ keeps commits one at a time either way.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <deque>
#include <functional>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <tuple>
#include <unordered_map>
#include <variant>
#include <vector>

#include "commit_listeners.hpp"
#include "evs/eventstore/event_store.hpp"
#include "evs/eventstore/schema_drift.hpp"
#include "pending_event.hpp"
#include "sqlite_connection.hpp"
#include "sqlite_write_turn.hpp"

namespace evs::sqlite {

// An event as queued for the writer: the caller's thread already encoded the user metadata.
using PendingEvent = detail::PendingEvent;

struct AppendJob {
  std::string stream_id;
  ExpectedVersion expected;
  std::vector<PendingEvent> events;
  EventStore::AppendCallback done;
  Result<AppendResult> outcome{};
  std::chrono::steady_clock::time_point started = std::chrono::steady_clock::now();  // for append latency
};

struct SnapshotJob {
  Snapshot snapshot;
  std::function<void(Result<void>)> done;
  Result<void> outcome{};
};

using WriteJob = std::variant<AppendJob, SnapshotJob>;

struct WriterLimits {
  std::size_t max_group = 1024;            // appends per group transaction (at least 1)
  std::size_t max_group_bytes = 16 << 20;  // event data per group transaction (a group holds >= 1 job)
  std::size_t max_event_bytes = 0;         // per event (PendingEvent::bytes); 0: only SQLite's limit
  // How long a commit waits for the write turn (SqliteOptions::busy_timeout) before its group fails with
  // database_locked.
  std::chrono::milliseconds turn_timeout{5000};
  // Where the member descriptions recorded in event_schemas come from (never null).
  const EventRegistry* registry = nullptr;
  // An appended event whose fingerprint differs from the one recorded for its (type, version): refuse
  // fails its append with schema_drift; warn stores it and passes the message to schema_warning (see
  // report_schema_warning) once per writer and (type, version, fingerprint), after the commit, on the
  // committing thread; off stores it silently. The record itself never changes.
  SchemaCheck schema_check = SchemaCheck::refuse;
  std::function<void(const std::string&)> schema_warning;
};

class Writer {
 public:
  // `copier`: a second read-write connection for background checkpoints (see checkpoint_pages), or none.
  Writer(Connection connection, std::optional<Connection> copier, WriterLimits limits,
         detail::CommitListeners& listeners, detail::AppendObservers& observers);
  // Commits everything queued, then stops the threads. The copier's connection closes first, so the
  // writer's (the last) checkpoints the WAL and removes it.
  ~Writer();
  Writer(const Writer&) = delete;
  Writer& operator=(const Writer&) = delete;

  // True on the writer thread or inside a commit (an append callback, a commit listener): a blocking write
  // there would wait for itself.
  bool on_writer_thread() const;

  // invalid_argument when an event of `job` is bigger than the store accepts (an empty Error otherwise):
  // checked on the caller's thread, before the job joins a group.
  Error check_size(const AppendJob& job) const;
  Error check_size(const Snapshot& snapshot) const;

  // Stores `job` and returns its outcome. When the writer is idle (nothing queued, no commit running), the
  // calling thread commits the job itself (with whatever queues meanwhile), which saves the two thread
  // hand-offs of a queued append. Otherwise the job queues for group commit.
  Result<AppendResult> append_and_wait(AppendJob job);

  // Queues `job`; once the writer is stopping, completes it at once with shutting_down.
  void submit(WriteJob job);

 private:
  struct StreamState {
    std::int64_t id = 0;        // streams.id; 0 when the stream does not exist
    std::uint64_t version = 0;  // 0 when the stream does not exist
  };
  struct Head {
    std::uint64_t position = 0;    // the last stored position (0: empty store)
    std::int64_t recorded_at = 0;  // its recorded_at (microseconds)
  };
  struct StringHash {
    using is_transparent = void;
    std::size_t operator()(std::string_view s) const noexcept { return std::hash<std::string_view>{}(s); }
  };
  template <class V>
  using StringMap = std::unordered_map<std::string, V, StringHash, std::equal_to<>>;

  static constexpr std::size_t max_cached_streams = 100'000;
  static constexpr int checkpoint_pages = 1000;  // SQLite's default wal_autocheckpoint

  void run();
  static int wal_hook(void* self, sqlite3*, const char*, int pages);
  void copy();
  void checkpoint();

  // With committing_ set: takes the write turn, gathers `first` (if any) and what is queued into a group,
  // commits it, and completes its jobs.
  void commit(std::optional<WriteJob> first);
  void take_queued(std::vector<WriteJob>& group);
  // Applies the group in one transaction and commits it, each job in its own savepoint when `isolate`.
  // Without `isolate`, a job failing inside a transaction that is still alive rolls the transaction back
  // and returns false: the caller runs the group again, isolated (savepoints cost, failures are rare).
  // Throws StorageFailure when the transaction itself fails.
  bool write_group(std::vector<WriteJob>& group, bool isolate);
  void apply(AppendJob& job);
  void apply(SnapshotJob& job);
  std::optional<Result<AppendResult>> check_duplicates(const AppendJob& job, const StreamState& stream);
  AppendResult insert(const AppendJob& job, StreamState stream);

  // Writer caches: valid only while they match the database (see invalidate_caches).
  StreamState stream_state(const std::string& name);
  void remember_stream(const std::string& name, StreamState state);
  std::string stream_name(std::int64_t id);
  std::int64_t type_id(const std::string& name);
  // Records the event's (type, schema version) in event_schemas unless it is there already, and compares
  // the event's fingerprint with the recorded one (WriterLimits::schema_check): throws StorageFailure
  // (schema_drift) to refuse, or queues a warning. In the append's transaction, before its events.
  void record_schema(const PendingEvent& e, const std::string& stream, std::int64_t recorded_at);
  RecordedSchema recorded_schema(const std::string& type, std::uint32_t version);
  void deliver_schema_warnings();
  Head load_head();
  void check_data_version();
  void invalidate_caches();

  Connection connection_;
  std::optional<Connection> copier_;  // closes before connection_
  const WriterLimits limits_;
  const std::size_t max_event_bytes_;  // limits_.max_event_bytes, or what SQLite's length limit allows
  detail::CommitListeners& listeners_;
  detail::AppendObservers& observers_;
  WriteTurn turn_;
  std::uint64_t notified_position_ = 0;  // the last position listeners were told about

  // Committer state (whoever has committing_ set).
  StringMap<StreamState> streams_;
  StringMap<std::int64_t> types_;
  // (type, schema version) known to be in event_schemas, with the recorded fingerprint.
  StringMap<std::vector<std::pair<std::uint32_t, std::uint64_t>>> schemas_;
  std::set<std::tuple<std::string, std::uint32_t, std::uint64_t>> warned_;  // drifts warned about
  std::vector<std::string> schema_warnings_;  // to deliver after the commit
  std::optional<Head> head_;
  std::int64_t data_version_ = -1;

  // Shared with submitting threads.
  std::mutex mutex_;
  std::condition_variable wake_;
  std::deque<WriteJob> queue_;
  bool stopping_ = false;
  bool committing_ = false;      // a commit() or checkpoint() is running (writer thread or an appender's)
  bool checkpoint_due_ = false;  // the writer thread should checkpoint (phase 2, or all of it)
  bool copy_due_ = false;        // the copier should copy the WAL (phase 1)
  bool copying_ = false;         // the copier is copying
  std::condition_variable copy_wake_;
  std::thread copier_thread_;  // started in the constructor body

  // The writer whose commit() runs on this thread, if any.
  static thread_local const Writer* committing_here;

  std::thread thread_;  // last: starts once everything above is constructed
};

}  // namespace evs::sqlite
