#include "sqlite_writer.hpp"

#include <algorithm>
#include <bit>
#include <future>
#include <map>
#include <utility>

#include "append_checks.hpp"
#include "evs/core/codec.hpp"
#include "sqlite_support.hpp"

namespace evs::sqlite {
namespace {

void set_outcome(WriteJob& job, const Error& error) {
  std::visit([&](auto& j) { j.outcome = error; }, job);
}

// Calls the job's callback with its outcome. A throwing callback cannot be reported to anyone; it must not
// take the writer thread down, so its exception is dropped.
void complete(WriteJob& job) noexcept {
  std::visit(
      [](auto& j) {
        try {
          if (j.done) j.done(std::move(j.outcome));
        } catch (...) {
        }
      },
      job);
}

std::size_t job_bytes(const WriteJob& job) {
  if (const auto* append = std::get_if<AppendJob>(&job)) {
    std::size_t bytes = 0;
    for (const PendingEvent& e : append->events) bytes += e.bytes();
    return bytes;
  }
  return std::get<SnapshotJob>(job).snapshot.payload.size();
}

// Room left in a row for the fixed-size columns and SQLite's record header.
constexpr std::size_t row_overhead = 1024;

// "is N bytes, over the limit ...", the end of an invalid_argument message.
std::string too_big(std::size_t bytes, std::size_t limit) {
  return "is " + std::to_string(bytes) + " bytes, over the limit of " +
         std::to_string(limit) + " bytes per event (SqliteOptions::max_event_bytes, at most SQLite's " +
         "length limit); nothing of it was stored";
}

}  // namespace

thread_local const Writer* Writer::committing_here = nullptr;

Writer::Writer(Connection connection, std::optional<Connection> copier, WriterLimits limits,
               detail::CommitListeners& listeners, detail::AppendObservers& observers)
    : connection_(std::move(connection)),
      copier_(std::move(copier)),
      limits_([&] {
        WriterLimits l = limits;
        l.max_group = std::max<std::size_t>(l.max_group, 1);
        if (l.registry == nullptr) l.registry = &EventRegistry::global();
        return l;
      }()),
      max_event_bytes_([&] {
        const auto sqlite_limit =
            static_cast<std::size_t>(sqlite3_limit(connection_.handle(), SQLITE_LIMIT_LENGTH, -1));
        const std::size_t allowed = sqlite_limit > row_overhead ? sqlite_limit - row_overhead : 0;
        return limits.max_event_bytes == 0 ? allowed : std::min(limits.max_event_bytes, allowed);
      }()),
      listeners_(listeners),
      observers_(observers),
      // Next to the file SQLite really opened (symlinks resolved), as its -wal and -shm are.
      turn_([&] {
        const char* file = sqlite3_db_filename(connection_.handle(), "main");
        return file != nullptr && *file != '\0' ? std::string(file) : connection_.path();
      }()),
      thread_([this] { run(); }) {
  if (copier_) copier_thread_ = std::thread([this] { copy(); });
  // Replaces SQLite's automatic-checkpoint hook: see checkpoint_pages.
  sqlite3_wal_hook(connection_.handle(), &Writer::wal_hook, this);
}

Writer::~Writer() {
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
  }
  wake_.notify_one();
  copy_wake_.notify_one();
  if (copier_thread_.joinable()) copier_thread_.join();
  thread_.join();
  sqlite3_wal_hook(connection_.handle(), nullptr, nullptr);
}

bool Writer::on_writer_thread() const {
  return std::this_thread::get_id() == thread_.get_id() || committing_here == this;
}

Error Writer::check_size(const AppendJob& job) const {
  for (std::size_t i = 0; i < job.events.size(); ++i) {
    const std::size_t bytes = job.events[i].bytes();
    if (bytes > max_event_bytes_)
      return {errc::invalid_argument,
              "append to stream " + job.stream_id + ": event " + std::to_string(i + 1) + " of " +
                  std::to_string(job.events.size()) + " (payload, metadata and ids) " +
                  too_big(bytes, max_event_bytes_)};
  }
  return {};
}

Error Writer::check_size(const Snapshot& snapshot) const {
  const std::size_t bytes = snapshot.payload.size() + snapshot.state_type.size() + snapshot.stream_id.size();
  if (bytes > max_event_bytes_)
    return {errc::invalid_argument,
            "save a snapshot of stream " + snapshot.stream_id + ": the snapshot " +
                too_big(bytes, max_event_bytes_)};
  return {};
}

Result<AppendResult> Writer::append_and_wait(AppendJob job) {
  {
    std::unique_lock lock(mutex_);
    if (!stopping_ && !committing_ && queue_.empty()) {
      committing_ = true;
      lock.unlock();
      Result<AppendResult> outcome;
      job.done = [&outcome](Result<AppendResult> r) { outcome = std::move(r); };
      commit(WriteJob(std::move(job)));
      lock.lock();
      committing_ = false;
      const bool more = !queue_.empty() || checkpoint_due_;  // the writer thread checkpoints, not us
      lock.unlock();
      if (more) wake_.notify_one();
      return outcome;
    }
  }
  std::promise<Result<AppendResult>> promise;
  auto future = promise.get_future();
  job.done = [&promise](Result<AppendResult> r) { promise.set_value(std::move(r)); };
  submit(std::move(job));
  return future.get();
}

void Writer::submit(WriteJob job) {
  {
    std::lock_guard lock(mutex_);
    if (!stopping_) {
      queue_.push_back(std::move(job));
      wake_.notify_one();
      return;
    }
  }
  set_outcome(job, Error{errc::shutting_down, "write to " + connection_.path() + ": the store is closing"});
  complete(job);
}

void Writer::run() {
  for (;;) {
    {
      std::unique_lock lock(mutex_);
      // Waits while an appender commits its own job (append_and_wait), then takes what queued meanwhile.
      wake_.wait(lock, [&] { return !committing_ && (stopping_ || !queue_.empty() || checkpoint_due_); });
      if (checkpoint_due_) {
        committing_ = true;
        lock.unlock();
        checkpoint();
        lock.lock();
        committing_ = false;
        continue;
      }
      if (queue_.empty()) return;  // stopping, and everything queued is done
      committing_ = true;
    }
    commit(std::nullopt);
    std::lock_guard lock(mutex_);
    committing_ = false;
  }
}

// WAL checkpoints. SQLite's automatic checkpoint runs inside the COMMIT that crosses the threshold, so that
// append, every append queued behind it and the commit listeners (who hear of the commit only
// afterwards) wait while the WAL is copied into the database and both are synced. Here the WAL hook only
// notes that a checkpoint is due, in two phases:
//  1. the copier thread, on its own connection, copies the WAL into the database (a PASSIVE checkpoint:
//     it blocks neither the writer nor readers), while appends go on;
//  2. the writer thread then finishes it on its own connection, between two groups: only the few frames
//     committed during phase 1 remain. With no write in flight the WAL ends fully backfilled, so the next
//     transaction restarts it from the beginning (a WAL overwritten in place is much cheaper to sync than
//     a growing one, and it stays small).
// Without a copier (or if the WAL grew far past the threshold) the writer thread does it all, still after
// answering the group that crossed the threshold. Errors are ignored: the next commit makes it due again.
int Writer::wal_hook(void* self, sqlite3*, const char*, int pages) {
  if (pages < checkpoint_pages) return SQLITE_OK;
  auto* writer = static_cast<Writer*>(self);
  bool wake_copier = false;
  {
    std::lock_guard lock(writer->mutex_);
    if (writer->copier_ && pages < 8 * checkpoint_pages) {
      if (!writer->copy_due_ && !writer->copying_ && !writer->checkpoint_due_)
        wake_copier = writer->copy_due_ = true;
    } else {
      writer->checkpoint_due_ = true;
    }
  }
  if (wake_copier) writer->copy_wake_.notify_one();
  return SQLITE_OK;
}

// Phase 1, on the copier thread.
void Writer::copy() {
  std::unique_lock lock(mutex_);
  for (;;) {
    copy_wake_.wait(lock, [&] { return stopping_ || copy_due_; });
    if (stopping_) return;
    copy_due_ = false;
    copying_ = true;
    lock.unlock();
    sqlite3_wal_checkpoint_v2(copier_->handle(), nullptr, SQLITE_CHECKPOINT_PASSIVE, nullptr, nullptr);
    lock.lock();
    copying_ = false;
    checkpoint_due_ = true;  // phase 2: frames committed meanwhile (a no-op if there are none)
    wake_.notify_one();
  }
}

// Phase 2 (or all of it), on the writer thread with committing_ set.
void Writer::checkpoint() {
  {
    std::lock_guard lock(mutex_);
    checkpoint_due_ = false;
  }
  sqlite3_wal_checkpoint_v2(connection_.handle(), nullptr, SQLITE_CHECKPOINT_PASSIVE, nullptr, nullptr);
}

void Writer::take_queued(std::vector<WriteJob>& group) {
  std::size_t bytes = 0;
  for (const WriteJob& job : group) bytes += job_bytes(job);
  std::lock_guard lock(mutex_);
  while (!queue_.empty() && group.size() < limits_.max_group) {
    const std::size_t next = job_bytes(queue_.front());
    if (!group.empty() && bytes + next > limits_.max_group_bytes) break;
    bytes += next;
    group.push_back(std::move(queue_.front()));
    queue_.pop_front();
  }
}

// Runs on the writer thread or on an appender's thread (append_and_wait); never on two at once
// (committing_), so the connection and the caches need no lock of their own.
void Writer::commit(std::optional<WriteJob> first) {
  committing_here = this;
  struct Reset {
    ~Reset() { committing_here = nullptr; }
  } reset;
  const bool turn = turn_.acquire(limits_.turn_timeout);
  // Taken after the wait either way: what queued meanwhile commits now, or fails now instead of waiting
  // for the turn once more per append.
  std::vector<WriteJob> group;
  if (first) group.push_back(std::move(*first));
  take_queued(group);
  std::optional<Error> failure;
  if (!turn) {
    failure = Error{errc::database_locked,
                    "append to " + connection_.path() + ": another process has held the writers' turn (" +
                        turn_.path() + ") for longer than the busy timeout of " +
                        std::to_string(limits_.turn_timeout.count()) +
                        " ms; nothing of this append was stored; retry later, or resume or stop the process "
                        "that holds it (a stopped or hung evs process)"};
  } else {
    try {
      if (!write_group(group, false)) write_group(group, true);
    } catch (const StorageFailure& f) {
      failure = f.error;
    } catch (const std::exception& e) {
      failure = Error{errc::io_error, "append to " + connection_.path() + ": " + e.what()};
    }
  }
  turn_.release();
  std::uint64_t committed_position = 0;
  if (failure) {
    // The transaction rolled back: nothing of this group is stored, and the caches may hold its changes.
    invalidate_caches();
    for (WriteJob& job : group) set_outcome(job, *failure);
  } else {
    for (const WriteJob& job : group)
      if (const auto* append = std::get_if<AppendJob>(&job); append && append->outcome)
        committed_position = std::max(committed_position, append->outcome->last_position);
  }
  // Listeners hear of the commit before the appenders are answered, so an appender that then waits for
  // a projection never waits for a wake-up still in flight.
  if (committed_position > notified_position_) {
    notified_position_ = committed_position;
    listeners_.notify(notified_position_);
  }
  observers_.report([&](detail::AppendObservers::Group& observed) {
    for (const WriteJob& job : group)
      if (const auto* append = std::get_if<AppendJob>(&job))
        observed.add(append->started, detail::AppendObservers::stored(append->outcome), !append->outcome);
  });
  for (WriteJob& job : group) complete(job);
  deliver_schema_warnings();
}

bool Writer::write_group(std::vector<WriteJob>& group, bool isolate) {
  constexpr std::string_view action = "append to";
  const auto run = [&](std::string_view sql) { must(must(connection_.cached(sql, action))->run(action)); };
  auto transaction = must(Transaction::begin(connection_, Transaction::Mode::immediate, action));
  check_data_version();
  for (WriteJob& job : group) {
    if (isolate) run("SAVEPOINT evs_job");
    try {
      std::visit([&](auto& j) { apply(j); }, job);
    } catch (const StorageFailure& f) {
      // Alone in its group, or SQLite ended the whole transaction (a full disk, an I/O error): the group
      // fails with this error.
      if (group.size() == 1 || sqlite3_get_autocommit(connection_.handle()) != 0) throw;
      invalidate_caches();  // they may hold what the rollback undoes
      if (!isolate) return false;  // the transaction rolls back; the caller runs the group again, isolated
      run("ROLLBACK TO evs_job");
      set_outcome(job, f.error);
    }
    if (isolate) run("RELEASE evs_job");
  }
  must(transaction.commit("commit appends to"));
  return true;
}

void Writer::apply(AppendJob& job) {
  const StreamState stream = stream_state(job.stream_id);
  if (job.events.empty()) {
    if (job.expected.accepts(stream.version))
      job.outcome = AppendResult{stream.version, 0, 0, false};
    else
      job.outcome = detail::wrong_version(job.stream_id, stream.version, job.expected);
    return;
  }
  if (auto replay = check_duplicates(job, stream)) {
    job.outcome = std::move(*replay);
    return;
  }
  if (!job.expected.accepts(stream.version)) {
    job.outcome = detail::wrong_version(job.stream_id, stream.version, job.expected);
    return;
  }
  job.outcome = insert(job, stream);
}

void Writer::apply(SnapshotJob& job) {
  const Snapshot& s = job.snapshot;
  const StreamState stream = stream_state(s.stream_id);
  if (s.version > stream.version) {
    job.outcome = Error{errc::invalid_argument,
                        "snapshot of stream " + s.stream_id + " at version " + std::to_string(s.version) +
                            ", but the stream is at version " + std::to_string(stream.version)};
    return;
  }
  constexpr std::string_view action = "save a snapshot to";
  // Replaces the stored snapshot unless that one is newer.
  auto statement = must(connection_.cached(
      "INSERT INTO snapshots (stream, version, state_type, fingerprint, encoding, payload, recorded_at, "
      "snapshot_version) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8) "
      "ON CONFLICT (stream) DO UPDATE SET version = excluded.version, state_type = excluded.state_type, "
      "fingerprint = excluded.fingerprint, encoding = excluded.encoding, payload = excluded.payload, "
      "recorded_at = excluded.recorded_at, snapshot_version = excluded.snapshot_version "
      "WHERE excluded.version >= snapshots.version",
      action));
  statement->bind_text(1, s.stream_id);
  statement->bind(2, to_db(s.version));
  statement->bind_text(3, s.state_type);
  statement->bind(4, std::bit_cast<std::int64_t>(s.fingerprint));
  statement->bind(5, static_cast<std::int64_t>(s.encoding));
  statement->bind_blob(6, s.payload);
  statement->bind(7, s.recorded_at == Timestamp{} ? now_us() : s.recorded_at.time_since_epoch().count());
  statement->bind(8, static_cast<std::int64_t>(s.snapshot_version));
  must(statement->run(action));
  job.outcome = {};
}

// Idempotence: nullopt when no id of the batch is stored yet; otherwise the replayed result (every id
// stored in this stream at consecutive versions, in batch order) or a duplicate_event error.
std::optional<Result<AppendResult>> Writer::check_duplicates(const AppendJob& job, const StreamState& stream) {
  struct Stored {
    std::size_t index;
    std::int64_t stream;
    std::uint64_t version;
    std::uint64_t position;
  };
  std::vector<Stored> stored;
  constexpr std::string_view action = "append to";
  for (std::size_t i = 0; i < job.events.size(); ++i) {
    auto lookup = must(
        connection_.cached("SELECT stream, version, position FROM events WHERE event_id = ?1", action));
    lookup->bind_blob(1, job.events[i].id.bytes_view());
    if (must(lookup->step(action)))
      stored.push_back(
          {i, lookup->column_int64(0), to_u64(lookup->column_int64(1)), to_u64(lookup->column_int64(2))});
  }
  if (stored.empty()) return std::nullopt;

  const auto duplicate = [&](const Stored& s, std::string why) {
    return detail::partial_duplicate(job.stream_id, job.events[s.index].id, why);
  };
  for (const Stored& s : stored)
    if (s.stream != stream.id) return duplicate(s, "is already stored in stream " + stream_name(s.stream));
  if (stored.size() != job.events.size())
    return duplicate(stored.front(), "is already stored in this stream, but " +
                                         std::to_string(job.events.size() - stored.size()) + " of the " +
                                         std::to_string(job.events.size()) +
                                         " events of this append are not: it is not an exact retry");
  for (std::size_t i = 1; i < stored.size(); ++i)
    if (stored[i].version != stored.front().version + i)
      return duplicate(stored[i], "is already stored in this stream at version " +
                                      std::to_string(stored[i].version) +
                                      ", out of the order of this append: it is not an exact retry");
  return AppendResult{stored.back().version, stored.front().position, stored.back().position, true};
}

AppendResult Writer::insert(const AppendJob& job, StreamState stream) {
  constexpr std::string_view action = "append to";
  const Head head = load_head();
  const std::int64_t recorded_at = std::max(now_us(), head.recorded_at);
  const std::uint64_t first_position = head.position + 1;
  const std::uint64_t new_version = stream.version + job.events.size();

  // Schemas first: an event type the check refuses fails the append before anything of it is written.
  for (const PendingEvent& e : job.events)
    if (e.fingerprint != 0) record_schema(e, job.stream_id, recorded_at);

  if (stream.id == 0) {
    auto statement = must(connection_.cached(
        "INSERT INTO streams (name, category, version, updated_at) VALUES (?1, ?2, ?3, ?4)", action));
    statement->bind_text(1, job.stream_id);
    statement->bind_text(2, stream_category(job.stream_id));
    statement->bind(3, to_db(new_version));
    statement->bind(4, recorded_at);
    must(statement->run(action));
    stream.id = sqlite3_last_insert_rowid(connection_.handle());
  } else {
    auto statement =
        must(connection_.cached("UPDATE streams SET version = ?1, updated_at = ?2 WHERE id = ?3", action));
    statement->bind(1, to_db(new_version));
    statement->bind(2, recorded_at);
    statement->bind(3, stream.id);
    must(statement->run(action));
  }

  for (std::size_t i = 0; i < job.events.size(); ++i) {
    const PendingEvent& e = job.events[i];
    const std::int64_t type = type_id(e.type);
    auto statement =
        must(connection_.cached("INSERT INTO events (position, stream, version, event_id, type, "
                                "schema_version, encoding, recorded_at, "
                                "correlation_id, causation_id, metadata, payload) "
                                "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)",
                                action));
    statement->bind(1, to_db(first_position + i));
    statement->bind(2, stream.id);
    statement->bind(3, to_db(stream.version + 1 + i));
    statement->bind_blob(4, e.id.bytes_view());
    statement->bind(5, type);
    statement->bind(6, e.schema_version);
    statement->bind(7, static_cast<std::int64_t>(e.encoding));
    statement->bind(8, recorded_at);
    statement->bind_text_or_null(9, e.correlation_id);
    statement->bind_text_or_null(10, e.causation_id);
    if (e.metadata)
      statement->bind_blob(11, *e.metadata);
    else
      statement->bind_null(11);
    if (e.encoding == Encoding::json)
      statement->bind_text(12, e.payload);  // TEXT, so SQLite's json functions read it directly
    else
      statement->bind_blob(12, e.payload);
    must(statement->run(action));
  }

  const std::uint64_t last_position = first_position + job.events.size() - 1;
  head_ = Head{last_position, recorded_at};
  remember_stream(job.stream_id, {stream.id, new_version});
  return {new_version, first_position, last_position, false};
}

Writer::StreamState Writer::stream_state(const std::string& name) {
  if (auto it = streams_.find(name); it != streams_.end()) return it->second;
  constexpr std::string_view action = "append to";
  auto statement = must(connection_.cached("SELECT id, version FROM streams WHERE name = ?1", action));
  statement->bind_text(1, name);
  if (!must(statement->step(action))) return {};  // absent streams are not cached: nothing to invalidate
  const StreamState state{statement->column_int64(0), to_u64(statement->column_int64(1))};
  remember_stream(name, state);
  return state;
}

void Writer::remember_stream(const std::string& name, StreamState state) {
  if (streams_.size() >= max_cached_streams && !streams_.contains(name)) streams_.clear();
  streams_.insert_or_assign(name, state);
}

std::string Writer::stream_name(std::int64_t id) {
  constexpr std::string_view action = "append to";
  auto statement = must(connection_.cached("SELECT name FROM streams WHERE id = ?1", action));
  statement->bind(1, id);
  return must(statement->step(action)) ? std::string(statement->column_text(0)) : "#" + std::to_string(id);
}

std::int64_t Writer::type_id(const std::string& name) {
  if (auto it = types_.find(name); it != types_.end()) return it->second;
  constexpr std::string_view action = "append to";
  std::int64_t id = 0;
  {
    auto select = must(connection_.cached("SELECT id FROM event_types WHERE name = ?1", action));
    select->bind_text(1, name);
    if (must(select->step(action))) id = select->column_int64(0);
  }
  if (id == 0) {
    auto statement = must(connection_.cached("INSERT INTO event_types (name) VALUES (?1)", action));
    statement->bind_text(1, name);
    must(statement->run(action));
    id = sqlite3_last_insert_rowid(connection_.handle());
  }
  types_.emplace(name, id);
  return id;
}

void Writer::record_schema(const PendingEvent& e, const std::string& stream, std::int64_t recorded_at) {
  auto& known = schemas_[e.type];
  auto it = std::find_if(known.begin(), known.end(), [&](const auto& v) { return v.first == e.schema_version; });
  if (it == known.end()) {
    constexpr std::string_view action = "append to";
    auto statement = must(connection_.cached(
        "INSERT OR IGNORE INTO event_schemas (type, schema_version, fingerprint, members, recorded_at) "
        "VALUES (?1, ?2, ?3, ?4, ?5)",
        action));
    statement->bind_text(1, e.type);
    statement->bind(2, static_cast<std::int64_t>(e.schema_version));
    statement->bind(3, std::bit_cast<std::int64_t>(e.fingerprint));
    statement->bind_text(4, registered_members(*limits_.registry, e.type, e.schema_version, e.fingerprint));
    statement->bind(5, recorded_at);
    must(statement->run(action));
    const std::uint64_t fingerprint = sqlite3_changes(connection_.handle()) == 1
                                          ? e.fingerprint
                                          : recorded_schema(e.type, e.schema_version).fingerprint;
    it = known.insert(known.end(), {e.schema_version, fingerprint});
  }
  if (it->second == e.fingerprint || limits_.schema_check == SchemaCheck::off) return;
  const SchemaDrift drift =
      appended_schema_drift(recorded_schema(e.type, e.schema_version), e.fingerprint, *limits_.registry);
  if (limits_.schema_check == SchemaCheck::refuse)
    throw StorageFailure{
        {errc::schema_drift, appended_schema_drift_report(connection_.path(), stream, drift, false)}};
  if (warned_.emplace(e.type, e.schema_version, e.fingerprint).second)
    schema_warnings_.push_back(appended_schema_drift_report(connection_.path(), stream, drift, true));
}

RecordedSchema Writer::recorded_schema(const std::string& type, std::uint32_t version) {
  constexpr std::string_view action = "append to";
  auto statement = must(connection_.cached(
      "SELECT fingerprint, members, recorded_at FROM event_schemas WHERE type = ?1 AND schema_version = ?2",
      action));
  statement->bind_text(1, type);
  statement->bind(2, static_cast<std::int64_t>(version));
  RecordedSchema r;
  r.type = type;
  r.schema_version = version;
  if (must(statement->step(action))) {
    r.fingerprint = std::bit_cast<std::uint64_t>(statement->column_int64(0));
    r.members = std::string(statement->column_text(1));
    r.recorded_at = from_us(statement->column_int64(2));
  }
  return r;
}

void Writer::deliver_schema_warnings() {
  for (const std::string& message : std::exchange(schema_warnings_, {})) {
    try {
      report_schema_warning(limits_.schema_warning, message);
    } catch (...) {  // like an append callback's: it must not take the writer down
    }
  }
}

Writer::Head Writer::load_head() {
  if (head_) return *head_;
  constexpr std::string_view action = "append to";
  auto statement = must(connection_.cached(
      "SELECT position, recorded_at FROM events ORDER BY position DESC LIMIT 1", action));
  Head head;
  if (must(statement->step(action)))
    head = {to_u64(statement->column_int64(0)), statement->column_int64(1)};
  head_ = head;
  return head;
}

// Another process may have committed since our last transaction: then every cache is stale.
// PRAGMA data_version changes exactly when another connection committed.
void Writer::check_data_version() {
  constexpr std::string_view action = "append to";
  auto statement = must(connection_.cached("PRAGMA data_version", action));
  must(statement->step(action));
  const std::int64_t version = statement->column_int64(0);
  if (version != data_version_) {
    // Rows of event_schemas are never changed or deleted: another process's commit cannot make them stale.
    auto schemas = std::move(schemas_);
    invalidate_caches();
    schemas_ = std::move(schemas);
  }
  data_version_ = version;
}

void Writer::invalidate_caches() {
  streams_.clear();
  types_.clear();
  schemas_.clear();
  head_.reset();
}

}  // namespace evs::sqlite
