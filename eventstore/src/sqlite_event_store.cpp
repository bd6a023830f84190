// The SQLite backend. Layout of this file:
//   - row decoding for readers (NameCache, read_event)
//   - ReaderPool: read-only connections handed out per read
//   - SqliteEventStore::Impl: open/migrate, reads
//   - SqliteEventStore: the public methods
// The writer (group commit, the cross-process write turn) lives in sqlite_writer.cpp.
#include "evs/eventstore/sqlite_event_store.hpp"

#include <algorithm>
#include <bit>
#include <future>
#include <limits>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <type_traits>
#include <unordered_map>
#include <vector>

#include <sys/statvfs.h>

#include "append_checks.hpp"
#include "commit_listeners.hpp"
#include "evs/core/codec.hpp"
#include "sqlite_connection.hpp"
#include "sqlite_schema.hpp"
#include "sqlite_support.hpp"
#include "sqlite_writer.hpp"

namespace evs {
namespace {

using sqlite::Access;
using sqlite::AppendJob;
using sqlite::Connection;
using sqlite::from_us;
using sqlite::must;
using sqlite::PendingEvent;
using sqlite::SnapshotJob;
using sqlite::Statement;
using sqlite::StorageFailure;
using sqlite::to_db;
using sqlite::to_u64;
using sqlite::Transaction;
using sqlite::Writer;

using UserMetadata = std::map<std::string, std::string>;

// Columns of event queries, in this order (read_event() relies on it): the lean columns (what replaying an
// aggregate needs) first, then the rest of the envelope. The stream and the type come as their file-local
// ids; readers turn them into names through their NameCache instead of joining.
#define EVS_LEAN_COLUMNS "e.position, e.version, e.type, e.schema_version, e.encoding, e.payload"
#define EVS_EVENT_COLUMNS \
  EVS_LEAN_COLUMNS ", e.event_id, e.recorded_at, e.correlation_id, e.causation_id, e.metadata, e.stream"

// Stream and type names by their file-local ids, learned from committed rows on one read connection. Rows
// of `streams` and `event_types` are never deleted or renamed and their ids are INTEGER PRIMARY KEYs (kept
// by VACUUM), so an id, once committed, names the same thing for the life of the file. Saves a join (two
// b-tree searches) and a string copy out of SQLite for every event read.
class NameCache {
 public:
  const std::string& stream(Connection& c, std::int64_t id) {
    return lookup(c, streams_, id, "SELECT name FROM streams WHERE id = ?1", "stream");
  }
  const std::string& type(Connection& c, std::int64_t id) {
    return lookup(c, types_, id, "SELECT name FROM event_types WHERE id = ?1", "event type");
  }
  // The id of a type name, or 0 if no event of that type is stored (0 is not cached: it may appear later).
  std::int64_t type_id(Connection& c, const std::string& name, std::string_view action) {
    if (auto it = type_ids_.find(name); it != type_ids_.end()) return it->second;
    auto statement = must(c.cached("SELECT id FROM event_types WHERE name = ?1", action));
    statement->bind_text(1, name);
    if (!must(statement->step(action))) return 0;
    const std::int64_t id = statement->column_int64(0);
    type_ids_.emplace(name, id);
    return id;
  }

 private:
  static constexpr std::size_t max_entries = 100'000;  // per map; a full map starts over

  static const std::string& lookup(Connection& c, std::unordered_map<std::int64_t, std::string>& names,
                                   std::int64_t id, std::string_view sql, std::string_view what) {
    if (auto it = names.find(id); it != names.end()) return it->second;
    constexpr std::string_view action = "read";
    auto statement = must(c.cached(sql, action));
    statement->bind(1, id);
    if (!must(statement->step(action)))
      throw StorageFailure{{errc::io_error, "read " + c.path() + ": an event refers to " + std::string(what) +
                                                " #" + std::to_string(id) + ", which is missing (the file is damaged)"}};
    if (names.size() >= max_entries) names.clear();
    return names.emplace(id, std::string(statement->column_text(0))).first->second;
  }

  std::unordered_map<std::int64_t, std::string> streams_;
  std::unordered_map<std::int64_t, std::string> types_;
  std::unordered_map<std::string, std::int64_t> type_ids_;
};

// Decodes the current row of a query selecting EVS_EVENT_COLUMNS (or only EVS_LEAN_COLUMNS when `lean`)
// into `event`, overwriting every field (a reused RecordedEvent keeps only its buffers). `stream_id`: the
// stream's name when the caller knows it, else null (looked up by the row's stream id; never null when
// `lean`). Throws StorageFailure (corrupt_payload) when the stored id or metadata does not decode.
void read_event(RecordedEvent& event, const Statement& row, Connection& c, NameCache& names,
                const std::string* stream_id, bool lean = false) {
  event.position = to_u64(row.column_int64(0));
  event.version = to_u64(row.column_int64(1));
  event.type = names.type(c, row.column_int64(2));
  event.schema_version = static_cast<std::uint32_t>(row.column_int64(3));
  event.encoding = static_cast<Encoding>(row.column_int64(4));
  event.payload = row.column_blob(5);
  event.stream_id = stream_id != nullptr ? *stream_id : names.stream(c, row.column_int64(11));
  if (lean) {  // what the lean columns skip: defaults, never a reused event's old values
    event.event_id = {};
    event.recorded_at = {};
    event.metadata = {};
    return;
  }
  const auto corrupt = [&](std::string_view what) {
    return StorageFailure{{errc::corrupt_payload, "read " + c.path() + ": the " + std::string(what) +
                                                      " of the event at position " +
                                                      std::to_string(event.position) + " does not decode"}};
  };
  const auto id = Uuid::from_bytes(row.column_blob(6));
  if (!id) throw corrupt("event id");
  event.event_id = *id;
  event.recorded_at = from_us(row.column_int64(7));
  const auto text_or_empty = [&](int column, std::string& into) {
    if (row.column_is_null(column))
      into.clear();
    else
      into = row.column_text(column);
  };
  text_or_empty(8, event.metadata.correlation_id);
  text_or_empty(9, event.metadata.causation_id);
  if (row.column_is_null(10)) {
    event.metadata.user.clear();
  } else {
    auto user = decode<UserMetadata>(row.column_blob(10), Encoding::binary);
    if (!user) throw corrupt("user metadata (" + user.error().message + ")");
    event.metadata.user = std::move(*user);
  }
}

// ---- ReaderPool
// ---------------------------------------------------------------------------------------------

// A pooled read connection with what it has learned of the file.
struct Reader {
  Connection connection;
  NameCache names;
};

// Read-only connections, created on demand and reused; each keeps its own prepared statements and names.
class ReaderPool {
 public:
  ReaderPool(std::filesystem::path path, std::chrono::milliseconds busy_timeout)
      : path_(std::move(path)), busy_timeout_(busy_timeout) {}

  // A connection for the duration of one read; back to the pool when the lease ends.
  class Lease {
   public:
    Lease(ReaderPool& pool, std::unique_ptr<Reader> reader) : pool_(&pool), reader_(std::move(reader)) {}
    ~Lease() {
      if (pool_ != nullptr) pool_->release(std::move(reader_));
    }
    Lease(Lease&& other) noexcept
        : pool_(std::exchange(other.pool_, nullptr)), reader_(std::move(other.reader_)) {}
    Lease& operator=(Lease&&) = delete;
    Connection& operator*() { return reader_->connection; }
    Reader& reader() { return *reader_; }

   private:
    ReaderPool* pool_;
    std::unique_ptr<Reader> reader_;
  };

  Result<Lease> acquire() {
    {
      std::lock_guard lock(mutex_);
      if (!idle_.empty()) {
        std::unique_ptr<Reader> reader = std::move(idle_.back());
        idle_.pop_back();
        return Lease(*this, std::move(reader));
      }
    }
    auto connection = Connection::open(path_, Access::read, busy_timeout_, immutable_);
    if (!connection) return connection.error();
    return Lease(*this, std::make_unique<Reader>(Reader{std::move(*connection), {}}));
  }

  // From now on opens connections with immutable=1 (see Connection::open) and drops the idle ones. Only
  // for a store nothing can write; call before the pool is shared between threads.
  bool immutable() {
    std::lock_guard lock(mutex_);
    return immutable_;
  }

  void use_immutable() {
    std::lock_guard lock(mutex_);
    immutable_ = true;
    idle_.clear();
  }

 private:
  static constexpr std::size_t max_idle = 16;

  void release(std::unique_ptr<Reader> reader) {
    std::lock_guard lock(mutex_);
    if (idle_.size() < max_idle) idle_.push_back(std::move(reader));
  }

  const std::filesystem::path path_;
  const std::chrono::milliseconds busy_timeout_;
  bool immutable_ = false;
  std::mutex mutex_;
  std::vector<std::unique_ptr<Reader>> idle_;
};

// Filtered read_all examines the log in windows of this many positions, so one query never sorts or scans
// more than a window however sparse the filter is.
constexpr std::uint64_t filter_window = 16'384;

}  // namespace

// ---- Impl
// ---------------------------------------------------------------------------------------------------

struct SqliteEventStore::Impl {
  SqliteOptions options;
  std::string path;
  std::string read_only_reason;  // why the store is read-only; empty when writable
  // The file's schema version at open: current_schema_version, unless a read-only open found an older one
  // that it reads as it is (see sqlite::oldest_readable_schema_version).
  int opened_schema_version = sqlite::current_schema_version;
  // Destroyed after the readers (declaration order): the writer drains its queue, and its connection,
  // closing last, checkpoints the WAL into the main file and removes the -wal and -shm files.
  detail::CommitListeners listeners;  // outlives the writer, which notifies it
  detail::AppendObservers observers;  // the same
  std::unique_ptr<Writer> writer;  // null when read-only
  ReaderPool readers;
  // A dedicated read connection for change_token(): PRAGMA data_version is per connection.
  std::mutex token_mutex;
  std::optional<Connection> token_connection;

  explicit Impl(SqliteOptions opts)
      : options(std::move(opts)), path(options.path.string()), readers(options.path, options.busy_timeout) {
    if (path.empty())
      throw Exception(errc::invalid_argument, "SqliteOptions::path is empty: name the store's file");
    if (options.read_only) {
      read_only_reason = "it was opened with SqliteOptions::read_only";
      if (options.immutable) readers.use_immutable();
      check_read_only_schema(std::nullopt);
      return;
    }
    auto connection = open_writer();
    if (connection) {
      writer = std::make_unique<Writer>(std::move(*connection), open_copier(), writer_limits(), listeners, observers);
      return;
    }
    std::error_code ec;
    if (!connection.error().is(errc::read_only) || !std::filesystem::exists(options.path, ec))
      throw Exception(connection.error());
    read_only_reason = "the file cannot be written: " + connection.error().message;
    check_read_only_schema(connection.error());
  }

  // The read-write connection, configured (WAL, synchronous) and migrated. Inspects the schema before
  // changing anything, so a foreign file is rejected untouched.
  Result<Connection> open_writer() {
    const std::filesystem::path dir = options.path.parent_path();
    std::error_code ec;
    if (!dir.empty() && !std::filesystem::is_directory(dir, ec))
      return Error{errc::io_error,
                   "open " + path + ": the directory " + dir.string() + " does not exist; create it first"};
    auto connection = Connection::open(options.path, Access::write, options.busy_timeout);
    if (!connection) return connection.error();
    if (auto version = sqlite::inspect_schema(*connection); !version) return version.error();

    constexpr std::string_view action = "open";
    {
      auto statement = connection->cached("PRAGMA journal_mode = WAL", action);
      if (!statement) return statement.error();
      auto row = (*statement)->step(action);
      if (!row) return row.error();
      if (!*row || (*statement)->column_text(0) != "wal")
        return Error{errc::io_error, "open " + path +
                                         ": could not switch the database to WAL mode (journal mode is " +
                                         std::string((*statement)->column_text(0)) + ")"};
    }
    const char* synchronous =
        options.durability == Durability::full ? "PRAGMA synchronous = FULL" : "PRAGMA synchronous = NORMAL";
    if (auto done = connection->exec(synchronous, action); !done) return done.error();
    if (auto done = sqlite::migrate_schema(*connection); !done) return done.error();
    return connection;
  }

  sqlite::WriterLimits writer_limits() const {
    return {options.max_group,
            options.max_group_bytes,
            options.max_event_bytes,
            std::clamp(options.busy_timeout, std::chrono::milliseconds(0),
                       std::chrono::milliseconds(std::numeric_limits<int>::max())),
            &registry(),
            options.schema_check,
            options.schema_warning};
  }

  // The writer's second connection, for background WAL checkpoints (see Writer::checkpoint_pages), or
  // nullopt if it cannot be opened (the writer thread then checkpoints alone). Its synchronous setting,
  // the store's, decides how those checkpoints sync.
  std::optional<Connection> open_copier() {
    auto connection = Connection::open(options.path, Access::write, options.busy_timeout);
    if (!connection) return std::nullopt;
    const char* synchronous =
        options.durability == Durability::full ? "PRAGMA synchronous = FULL" : "PRAGMA synchronous = NORMAL";
    if (!connection->exec(synchronous, "open")) return std::nullopt;
    return std::move(*connection);
  }

  const EventRegistry& registry() const {
    return options.registry != nullptr ? *options.registry : EventRegistry::global();
  }

  // The shape-drift check of SqliteOptions::schema_check. Throws on refuse, like the rest of the open.
  void check_schemas() {
    if (options.schema_check == SchemaCheck::off) return;
    auto recorded = read("read the event schemas of", false, [&](Reader& r) { return recorded_schemas(r); });
    if (!recorded) throw Exception(recorded.error());
    apply_schema_check(options.schema_check, path, *recorded, registry(), options.schema_warning);
  }

  // Whether the file, as `c` reads it, has what schema version schema_records_since added (event_schemas,
  // snapshots.snapshot_version). Only a store opened read-only at an older version lacks it, until a writer
  // (of another process) migrates it.
  bool has_schema_records(Connection& c) const {
    if (opened_schema_version >= sqlite::schema_records_since) return true;
    return query_u64(c, "PRAGMA user_version", "read the schema of") >=
           static_cast<std::uint64_t>(sqlite::schema_records_since);
  }

  // Nothing recorded when the store predates the records.
  std::vector<RecordedSchema> recorded_schemas(Reader& r) const {
    constexpr std::string_view action = "read the event schemas of";
    if (!has_schema_records(r.connection)) return {};
    auto statement = must(r.connection.cached(
        "SELECT type, schema_version, fingerprint, members, recorded_at FROM event_schemas "
        "ORDER BY type, schema_version",
        action));
    std::vector<RecordedSchema> out;
    while (must(statement->step(action))) {
      RecordedSchema s;
      s.type = std::string(statement->column_text(0));
      s.schema_version = static_cast<std::uint32_t>(statement->column_int64(1));
      s.fingerprint = std::bit_cast<std::uint64_t>(statement->column_int64(2));
      s.members = std::string(statement->column_text(3));
      s.recorded_at = from_us(statement->column_int64(4));
      out.push_back(std::move(s));
    }
    return out;
  }

  // For a read-only store: the schema must be current already (nothing may be written), or old enough for
  // this build to read as it is (sqlite::oldest_readable_schema_version). Throws otherwise.
  void check_read_only_schema(const std::optional<Error>& write_failure) {
    const auto inspect = [&]() -> Result<int> {
      auto lease = readers.acquire();
      if (!lease) return lease.error();
      return sqlite::inspect_schema(**lease);
    };
    auto version = inspect();
    // A WAL store closed cleanly in a read-only directory has no -shm, and none can be created: SQLite
    // reads it only as immutable. Safe, as no writer can exist without creating -wal/-shm there.
    if (!version && !wal_files_exist() && (version.error().is(errc::read_only) || on_read_only_file_system())) {
      readers.use_immutable();
      version = inspect();
    }
    if (!version) throw Exception(version.error());
    if (*version >= sqlite::oldest_readable_schema_version && *version <= sqlite::current_schema_version) {
      opened_schema_version = *version;
      return;
    }
    const std::string needs = *version == 0 ? "the store is not created yet"
                                            : "the store has schema version " + std::to_string(*version) +
                                                  " and needs migrating to " +
                                                  std::to_string(sqlite::current_schema_version);
    if (write_failure)
      throw Exception(
          Error{write_failure->code, write_failure->message + "; " + needs + ", which needs write access"});
    if (*version == 0)
      throw Exception(
          errc::not_an_evs_database,
          "open " + path +
              ": the file is empty, not an evs store yet; open it writable once to create the store");
    throw Exception(errc::read_only, "open " + path + ": " + needs +
                                         ", which a read-only open cannot do; open it writable once");
  }

  // True when the file system holding the store is mounted read-only (nobody can write it).
  bool on_read_only_file_system() const {
    struct statvfs fs {};
    const std::filesystem::path dir = options.path.has_parent_path() ? options.path.parent_path() : ".";
    return statvfs(dir.c_str(), &fs) == 0 && (fs.f_flag & ST_RDONLY) != 0;
  }

  bool wal_files_exist() const {
    std::error_code ec;
    return std::filesystem::exists(path + "-wal", ec) || std::filesystem::exists(path + "-shm", ec);
  }

  Error read_only_error(std::string_view action) const {
    return {errc::read_only,
            std::string(action) + " " + path + ": the store is read-only because " + read_only_reason};
  }

  // Runs `body(reader)` on a pooled read connection, inside one read transaction when `consistent`
  // (several statements that must see one snapshot). StorageFailure thrown by the body becomes the error.
  template <class Body>
  auto read(std::string_view action, bool consistent, Body&& body)
      -> Result<decltype(body(std::declval<Reader&>()))> {
    try {
      auto lease = must(readers.acquire());
      std::optional<Transaction> transaction;
      if (consistent)
        transaction.emplace(must(Transaction::begin(*lease, Transaction::Mode::deferred, action)));
      // The transaction (read-only) ends with its scope.
      if constexpr (std::is_void_v<decltype(body(lease.reader()))>) {
        body(lease.reader());
        return {};
      } else {
        return body(lease.reader());
      }
    } catch (const StorageFailure& f) {
      return f.error;
    } catch (const std::exception& e) {
      return Error{errc::io_error, std::string(action) + " " + path + ": " + e.what()};
    }
  }

  static std::uint64_t query_u64(Connection& c, std::string_view sql, std::string_view action) {
    auto statement = must(c.cached(sql, action));
    return must(statement->step(action)) ? to_u64(statement->column_int64(0)) : 0;
  }

  // Element `n` of a reused vector (its old element, or a new one at the end); advances `n`.
  static RecordedEvent& slot(std::vector<RecordedEvent>& out, std::size_t& n) {
    if (n == out.size()) out.emplace_back();
    return out[n++];
  }

  void read_stream(Reader& r, std::vector<RecordedEvent>& out, std::string_view stream_id,
                   const ReadStreamOptions& o) {
    constexpr std::string_view action = "read a stream from";
    Connection& c = r.connection;
    std::int64_t stream = 0;
    {
      auto statement = must(c.cached("SELECT id FROM streams WHERE name = ?1", action));
      statement->bind_text(1, stream_id);
      if (!must(statement->step(action))) throw StorageFailure{not_found(stream_id, o)};
      stream = statement->column_int64(0);
    }
    if (o.until_position != std::numeric_limits<std::uint64_t>::max()) {
      // The stream's first event has its smallest position.
      auto statement =
          must(c.cached("SELECT position FROM events WHERE stream = ?1 AND version = 1", action));
      statement->bind(1, stream);
      if (!must(statement->step(action)) || to_u64(statement->column_int64(0)) > o.until_position)
        throw StorageFailure{not_found(stream_id, o)};
    }
    if (o.max_count == 0) {
      out.clear();
      return;
    }
    // Built per call (the connection caches the prepared statement by its text). Without a position bound
    // the query does not read each row's position twice.
    const bool lean = !o.envelope;
    const bool forward = o.direction == Direction::forward;
    std::string sql = lean ? "SELECT " EVS_LEAN_COLUMNS : "SELECT " EVS_EVENT_COLUMNS;
    sql += forward ? " FROM events e WHERE e.stream = ?1 AND e.version >= ?2"
                   : " FROM events e WHERE e.stream = ?1 AND e.version <= ?2";
    if (o.until_position != std::numeric_limits<std::uint64_t>::max()) sql += " AND e.position <= ?3";
    sql += forward ? " ORDER BY e.version ASC LIMIT ?4" : " ORDER BY e.version DESC LIMIT ?4";
    auto statement = must(c.cached(sql, action));
    statement->bind(1, stream);
    statement->bind(2, to_db(o.from_version));
    statement->bind(3, to_db(o.until_position));  // unused without the bound: SQLite allows it (?4 exists)
    statement->bind(4, to_db(static_cast<std::uint64_t>(o.max_count)));
    out.reserve(std::min<std::size_t>(o.max_count, 1024));
    const std::string name(stream_id);
    std::size_t n = 0;
    while (must(statement->step(action))) read_event(slot(out, n), *statement, c, r.names, &name, lean);
    out.resize(n);
  }

  Error not_found(std::string_view stream_id, const ReadStreamOptions& o) const {
    std::string message = "stream " + std::string(stream_id) + " has no events";
    if (o.until_position != std::numeric_limits<std::uint64_t>::max())
      message += " at or before position " + std::to_string(o.until_position);
    return {errc::stream_not_found, std::move(message)};
  }

  void read_all(Reader& r, ReadAllBatch& batch, std::uint64_t from, std::size_t max_count,
                const ReadAllFilter& filter) {
    constexpr std::string_view action = "read all events from";
    Connection& c = r.connection;
    std::vector<RecordedEvent>& out = batch.events;
    std::size_t n = 0;
    batch.next_position = from;
    const std::uint64_t head = query_u64(c, "SELECT max(position) FROM events", action);
    const std::uint64_t start = std::max<std::uint64_t>(from, 1);
    if (max_count == 0 || start > head) {  // nothing to examine: next_position unchanged
      out.clear();
      return;
    }

    std::vector<std::int64_t> type_ids;
    for (const std::string& name : filter.event_types)
      if (const std::int64_t id = r.names.type_id(c, name, action); id != 0) type_ids.push_back(id);
    const bool nothing_matches = !filter.event_types.empty() && type_ids.empty();
    const std::string sql = read_all_sql(type_ids.size(), filter.categories.size());

    // Unfiltered: one query up to the head. Filtered: window by window, so each query stays bounded.
    const std::uint64_t window = filter.empty() ? head : filter_window;
    out.reserve(std::min<std::size_t>(max_count, 1024));
    for (std::uint64_t low = start; !nothing_matches && low <= head && n < max_count;) {
      const std::uint64_t high = std::min(head, low + window - 1);
      auto statement = must(c.cached(sql, action));
      statement->bind(1, to_db(low));
      statement->bind(2, to_db(high));
      statement->bind(3, to_db(static_cast<std::uint64_t>(max_count - n)));
      int index = 4;
      for (std::int64_t id : type_ids) statement->bind(index++, id);
      for (const std::string& category : filter.categories) statement->bind_text(index++, category);
      while (must(statement->step(action))) read_event(slot(out, n), *statement, c, r.names, nullptr);
      // The next window starts at the next stored position: a log imported from PostgreSQL has gaps far
      // wider than a window, which would otherwise be scanned window by empty window.
      low = high < head ? next_stored_position(c, high + 1, action) : head + 1;
    }
    out.resize(n);
    // A full batch stops at its last event; a short one examined everything up to the head.
    batch.next_position = n == max_count ? out.back().position + 1 : head + 1;
  }

  // SQL for read_all with the given numbers of type ids and categories: ?1..?2 the position range, ?3 the
  // limit, then the type ids, then the categories. Streams are joined only to filter on categories; events
  // drive the join (CROSS JOIN fixes the order) and the category index is disabled (+), so a query scans
  // its position range instead of a whole category.
  static std::string read_all_sql(std::size_t types, std::size_t categories) {
    std::string sql = "SELECT " EVS_EVENT_COLUMNS " FROM events e";
    if (categories > 0) sql += " CROSS JOIN streams s ON s.id = e.stream";
    sql += " WHERE e.position BETWEEN ?1 AND ?2";
    int index = 4;
    const auto in_list = [&](std::string_view column, std::size_t count) {
      if (count == 0) return;
      sql.append(" AND ").append(column).append(" IN (");
      for (std::size_t i = 0; i < count; ++i)
        sql.append(i == 0 ? "?" : ", ?").append(std::to_string(index++));
      sql.append(")");
    };
    // One type: the (type, position) index yields the rows in position order, however sparse the type. Several
    // types: an IN list on that index would collect and sort the whole window (all columns, payloads
    // included) for every batch, so scan the position range instead (+ disables the index) and skip the
    // other types row by row inside SQL; LIMIT stops the scan as soon as the batch is full.
    in_list(types == 1 ? "e.type" : "+e.type", types);
    in_list("+s.category", categories);
    sql.append(" ORDER BY e.position LIMIT ?3");
    return sql;
  }

  // The first stored position at or after `position` (the head + 1 when there is none: callers stay below it).
  static std::uint64_t next_stored_position(Connection& c, std::uint64_t position, std::string_view action) {
    auto statement = must(c.cached("SELECT min(position) FROM events WHERE position >= ?1", action));
    statement->bind(1, to_db(position));
    must(statement->step(action));
    return statement->column_is_null(0) ? std::numeric_limits<std::uint64_t>::max() : to_u64(statement->column_int64(0));
  }

  std::uint64_t position_at(Reader& r, Timestamp t) {
    Connection& c = r.connection;
    constexpr std::string_view action = "find a position by time in";
    const std::int64_t target = t.time_since_epoch().count();
    const std::uint64_t head = query_u64(c, "SELECT max(position) FROM events", action);
    // recorded_at never decreases along positions: binary search for the last position recorded at or before
    // `target`, with primary-key seeks. Appended positions are gap-free, but a log imported from PostgreSQL
    // has gaps (and its recorded times follow its positions only up to overlapping transactions): each probe
    // takes the first stored position at or after the middle.
    const auto stored_at_or_after = [&](std::uint64_t position) {
      auto statement = must(c.cached(
          "SELECT position, recorded_at FROM events WHERE position >= ?1 ORDER BY position LIMIT 1", action));
      statement->bind(1, to_db(position));
      const auto damaged = [&] {
        return StorageFailure{{errc::io_error, "read " + path + ": no position at or after " + std::to_string(position) +
                                                   " below the head " + std::to_string(head) + " (the file is damaged)"}};
      };
      if (!must(statement->step(action))) throw damaged();
      const std::uint64_t found = to_u64(statement->column_int64(0));
      // A damaged b-tree can answer a seek with a smaller key; the search below relies on progress.
      if (found < position) throw damaged();
      return std::pair(found, statement->column_int64(1));
    };
    if (head == 0) return 0;
    const auto first = stored_at_or_after(1);
    if (first.second > target) return 0;
    // Invariant: `low` is stored and recorded at or before `target`; no answer lies above `high`.
    std::uint64_t low = first.first, high = head;
    while (low < high) {
      const std::uint64_t mid = low + (high - low + 1) / 2;
      const auto [position, recorded_at] = stored_at_or_after(mid);
      if (position <= high && recorded_at <= target)
        low = position;
      else
        high = mid - 1;  // nothing stored in [mid, position) and, from `position` on, recorded after `target`
    }
    return low;
  }

  std::optional<Snapshot> load_snapshot(Reader& r, std::string_view stream_id, std::uint64_t max_version) {
    Connection& c = r.connection;
    constexpr std::string_view action = "load a snapshot from";
    // Before schema_records_since, every snapshot has snapshot version 1.
    auto statement = must(c.cached(has_schema_records(c)
                                       ? "SELECT version, state_type, fingerprint, encoding, payload, recorded_at, "
                                         "snapshot_version FROM snapshots WHERE stream = ?1"
                                       : "SELECT version, state_type, fingerprint, encoding, payload, recorded_at, "
                                         "1 FROM snapshots WHERE stream = ?1",
                                   action));
    statement->bind_text(1, stream_id);
    if (!must(statement->step(action))) return std::nullopt;
    Snapshot s;
    s.version = to_u64(statement->column_int64(0));
    if (s.version > max_version) return std::nullopt;
    s.stream_id = std::string(stream_id);
    s.state_type = std::string(statement->column_text(1));
    s.fingerprint = std::bit_cast<std::uint64_t>(statement->column_int64(2));
    s.encoding = static_cast<Encoding>(statement->column_int64(3));
    s.payload = std::string(statement->column_blob(4));
    s.recorded_at = from_us(statement->column_int64(5));
    s.snapshot_version = static_cast<std::uint32_t>(statement->column_int64(6));
    return s;
  }
};

// ---- SqliteEventStore
// ---------------------------------------------------------------------------------------

SqliteEventStore::SqliteEventStore(SqliteOptions options)
    : impl_(std::make_unique<Impl>(std::move(options))) {
  impl_->check_schemas();
}

SqliteEventStore::~SqliteEventStore() = default;

Result<AppendResult> SqliteEventStore::append(std::string_view stream_id, ExpectedVersion expected,
                                              std::span<const EventData> events) {
  if (impl_->writer && impl_->writer->on_writer_thread())
    return Error{errc::invalid_argument,
                 "append() called inside an append callback would wait for itself; use append_async there"};
  if (Error invalid = detail::validate_append(stream_id, events); invalid.code) return invalid;
  if (!impl_->writer) return impl_->read_only_error("append to");
  AppendJob job{std::string(stream_id), expected, {}, {}};
  job.events.reserve(events.size());
  for (const EventData& e : events) job.events.push_back(PendingEvent::from(e));
  if (Error too_big = impl_->writer->check_size(job); too_big.code) return too_big;
  return impl_->writer->append_and_wait(std::move(job));
}

void SqliteEventStore::append_async(std::string_view stream_id, ExpectedVersion expected,
                                    std::span<const EventData> events, AppendCallback done) {
  if (Error invalid = detail::validate_append(stream_id, events); invalid.code) {
    done(std::move(invalid));
    return;
  }
  if (!impl_->writer) {
    done(impl_->read_only_error("append to"));
    return;
  }
  AppendJob job{std::string(stream_id), expected, {}, {}};
  job.events.reserve(events.size());
  for (const EventData& e : events) job.events.push_back(PendingEvent::from(e));
  if (Error too_big = impl_->writer->check_size(job); too_big.code) {
    done(std::move(too_big));
    return;
  }
  job.done = std::move(done);
  impl_->writer->submit(std::move(job));
}

Result<std::vector<RecordedEvent>> SqliteEventStore::read_stream(std::string_view stream_id,
                                                                 const ReadStreamOptions& options) {
  std::vector<RecordedEvent> events;
  if (auto r = read_stream_into(events, stream_id, options); !r) return r.error();
  return events;
}

Result<ReadAllBatch> SqliteEventStore::read_all(std::uint64_t from_position, std::size_t max_count,
                                                const ReadAllFilter& filter) {
  ReadAllBatch batch;
  if (auto r = read_all_into(batch, from_position, max_count, filter); !r) return r.error();
  return batch;
}

Result<void> SqliteEventStore::read_stream_into(std::vector<RecordedEvent>& out, std::string_view stream_id,
                                                const ReadStreamOptions& options) {
  return impl_->read("read a stream from", true, [&](Reader& r) { impl_->read_stream(r, out, stream_id, options); });
}

Result<void> SqliteEventStore::read_all_into(ReadAllBatch& out, std::uint64_t from_position, std::size_t max_count,
                                             const ReadAllFilter& filter) {
  return impl_->read("read all events from", true,
                     [&](Reader& r) { impl_->read_all(r, out, from_position, max_count, filter); });
}

Result<std::uint64_t> SqliteEventStore::stream_version(std::string_view stream_id) {
  return impl_->read("read a stream version from", false, [&](Reader& r) {
    constexpr std::string_view action = "read a stream version from";
    Connection& c = r.connection;
    auto statement = must(c.cached("SELECT version FROM streams WHERE name = ?1", action));
    statement->bind_text(1, stream_id);
    return must(statement->step(action)) ? to_u64(statement->column_int64(0)) : std::uint64_t{0};
  });
}

Result<std::uint64_t> SqliteEventStore::last_position() {
  return impl_->read("read the last position from", false, [&](Reader& r) {
    return Impl::query_u64(r.connection, "SELECT max(position) FROM events", "read the last position from");
  });
}

Result<std::uint64_t> SqliteEventStore::position_at(Timestamp t) {
  return impl_->read("find a position by time in", true,
                     [&](Reader& r) { return impl_->position_at(r, t); });
}

std::uint64_t SqliteEventStore::add_commit_listener(CommitListener listener) {
  return impl_->listeners.add(std::move(listener));
}

void SqliteEventStore::remove_commit_listener(std::uint64_t id) { impl_->listeners.remove(id); }

std::uint64_t SqliteEventStore::add_append_observer(AppendObserver observer) {
  return impl_->observers.add(std::move(observer));
}

void SqliteEventStore::remove_append_observer(std::uint64_t id) { impl_->observers.remove(id); }

Result<std::uint64_t> SqliteEventStore::change_token() {
  constexpr std::string_view action = "poll for changes in";
  std::lock_guard lock(impl_->token_mutex);
  try {
    if (!impl_->token_connection)
      impl_->token_connection.emplace(must(Connection::open(impl_->options.path, Access::read,
                                                            impl_->options.busy_timeout, impl_->readers.immutable())));
    return Impl::query_u64(*impl_->token_connection, "PRAGMA data_version", action);
  } catch (const StorageFailure& f) {
    impl_->token_connection.reset();
    return f.error;
  }
}

Result<void> SqliteEventStore::save_snapshot(const Snapshot& snapshot) {
  if (snapshot.stream_id.empty()) return Error{errc::invalid_argument, "snapshot stream id is empty"};
  if (!impl_->writer) return impl_->read_only_error("save a snapshot to");
  if (impl_->writer->on_writer_thread())
    return Error{errc::invalid_argument, "save_snapshot() called inside an append callback would wait for itself"};
  if (Error too_big = impl_->writer->check_size(snapshot); too_big.code) return too_big;
  std::promise<Result<void>> promise;
  auto future = promise.get_future();
  impl_->writer->submit(
      SnapshotJob{snapshot, [&promise](Result<void> r) { promise.set_value(std::move(r)); }});
  return future.get();
}

Result<std::optional<Snapshot>> SqliteEventStore::load_snapshot(std::string_view stream_id,
                                                                std::uint64_t max_version) {
  return impl_->read("load a snapshot from", false,
                     [&](Reader& r) { return impl_->load_snapshot(r, stream_id, max_version); });
}

Result<std::vector<RecordedSchema>> SqliteEventStore::recorded_schemas() {
  return impl_->read("read the event schemas of", false, [&](Reader& r) { return impl_->recorded_schemas(r); });
}

const SqliteOptions& SqliteEventStore::options() const { return impl_->options; }

int SqliteEventStore::schema_version() { return sqlite::current_schema_version; }

#undef EVS_EVENT_COLUMNS
#undef EVS_LEAN_COLUMNS

}  // namespace evs
