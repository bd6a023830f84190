#include "evs/eventstore/pg_event_store.hpp"

#include "../append_checks.hpp"
#include "evs/core/codec.hpp"
#include "pg_array.hpp"
#include "pg_follower.hpp"
#include "pg_schema.hpp"
#include "pg_writer.hpp"

#include <future>
#include <algorithm>
#include <limits>
#include <map>

namespace evs {

using namespace evs::pg;

namespace {

using UserMetadata = std::map<std::string, std::string>;

// The columns every event read selects, in decode_event's order.
#define EVS_PG_EVENT_COLUMNS                                                                          \
  "e.position, s.name, e.version, e.event_id, t.name, e.schema_version, e.encoding, e.recorded_at, " \
  "e.correlation_id, e.causation_id, e.metadata, e.payload"
#define EVS_PG_EVENT_JOINS " JOIN streams s ON s.id = e.stream JOIN event_types t ON t.id = e.type"

constexpr std::uint64_t no_bound = std::numeric_limits<std::uint64_t>::max();

bool by_position(const RecordedEvent& a, const RecordedEvent& b) { return a.position < b.position; }

// Fills `out` from the event columns starting at `col`. `lean` leaves the envelope (id, time, metadata)
// default. An undecodable id or metadata is corrupt_payload.
Result<void> decode_event(const PgResult& r, int row, int col, RecordedEvent& out, bool lean) {
  out.position = static_cast<std::uint64_t>(r.int64(row, col));
  out.stream_id.assign(r.text(row, col + 1));
  out.version = static_cast<std::uint64_t>(r.int64(row, col + 2));
  out.type.assign(r.text(row, col + 4));
  out.schema_version = static_cast<std::uint32_t>(r.int64(row, col + 5));
  out.encoding = static_cast<Encoding>(r.int64(row, col + 6));
  out.payload.assign(r.bytes(row, col + 11));
  if (lean) {
    out.event_id = Uuid{};
    out.recorded_at = Timestamp{};
    out.metadata = EventMetadata{};
    return {};
  }
  auto id = Uuid::from_bytes(r.bytes(row, col + 3));
  if (!id)
    return Error{errc::corrupt_payload, "the event at position " + std::to_string(out.position) +
                                            " has an event id that does not decode"};
  out.event_id = *id;
  out.recorded_at = from_us(r.int64(row, col + 7));
  out.metadata.correlation_id.assign(r.text(row, col + 8));
  out.metadata.causation_id.assign(r.text(row, col + 9));
  out.metadata.user.clear();
  if (!r.is_null(row, col + 10)) {
    auto user = decode<UserMetadata>(r.bytes(row, col + 10), Encoding::binary);
    if (!user)
      return Error{errc::corrupt_payload,
                   "the metadata of the event at position " + std::to_string(out.position) + " does not decode"};
    out.metadata.user = std::move(*user);
  }
  return {};
}

RecordedEvent& slot(std::vector<RecordedEvent>& out, std::size_t& n) {
  if (n == out.size()) out.emplace_back();
  return out[n++];
}

PgArray text_array(const std::vector<std::string>& values) {
  PgArray a(text_oid);
  for (const std::string& v : values) a.raw(v);
  return a;
}

}  // namespace

struct PgEventStore::Impl {
  StoreShared shared;
  std::unique_ptr<PgPool> readers;
  std::unique_ptr<PgFollower> follower;
  std::unique_ptr<PgWriter> writer;

  template <class T>
  Result<T> read(std::string_view action, const std::function<Result<T>(PgConnection&)>& work) {
    return readers->run<T>(action, work);
  }

  Error refuse_write(std::string_view what) const {
    return {errc::read_only, std::string(what) + " " + shared.describe() + ": the store was opened read-only"};
  }

  // Checks what can be checked before queueing; an empty Error when the append may go ahead.
  Error check_append(std::string_view stream_id, std::span<const EventData> events) const {
    if (shared.options.read_only) return refuse_write("append to");
    if (Error invalid = detail::validate_append(stream_id, events); invalid.code) return invalid;
    if (events.size() > max_events_per_transaction)
      return {errc::invalid_argument, "append to stream " + std::string(stream_id) + ": " +
                                          std::to_string(events.size()) + " events, over the limit of " +
                                          std::to_string(max_events_per_transaction) +
                                          " per append on PostgreSQL; nothing was stored"};
    const std::size_t limit = shared.options.max_event_bytes == 0 ? (std::size_t{1} << 30) - 1024
                                                                  : shared.options.max_event_bytes;
    for (const EventData& e : events) {
      const std::size_t bytes = e.payload.size() + e.type.size() + e.metadata.correlation_id.size() +
                                e.metadata.causation_id.size() + 16;
      if (bytes > limit)
        return {errc::invalid_argument, "append to stream " + std::string(stream_id) + ": event " +
                                            e.event_id.to_string() + " is " + std::to_string(bytes) +
                                            " bytes, over the limit of " + std::to_string(limit) +
                                            " bytes per event (PgOptions::max_event_bytes); nothing was stored"};
    }
    return {};
  }

  PendingAppend pending(std::string_view stream_id, ExpectedVersion expected, std::span<const EventData> events,
                        AppendCallback done) const {
    PendingAppend a{std::string(stream_id), expected, {}, 0, std::move(done)};
    a.events.reserve(events.size());
    for (const EventData& e : events) {
      a.events.push_back(PendingEvent::from(e));
      a.bytes += a.events.back().bytes();
    }
    return a;
  }
};

PgEventStore::PgEventStore(PgOptions options) : impl_(std::make_unique<Impl>()) {
  StoreShared& s = impl_->shared;
  if (options.url.empty()) throw Exception(Error{errc::invalid_argument, "PgOptions::url is empty"});
  if (options.schema.empty() || options.schema.find('\0') != std::string::npos)
    throw Exception(Error{errc::invalid_argument, "PgOptions::schema must be a non-empty name without NUL"});
  s.options = std::move(options);
  s.channel = notify_channel(s.options.schema);
  s.registry = s.options.registry != nullptr ? s.options.registry : &EventRegistry::global();
  s.connect.connect_timeout = s.options.connect_timeout;
  s.connect.statement_timeout = s.options.statement_timeout;
  s.connect.search_path = s.options.schema;
  impl_->readers = std::make_unique<PgPool>(s.options.url, s.connect, s.options.readers);

  auto opened = impl_->read<int>("open", [&](PgConnection& c) -> Result<int> {
    if (auto r = open_pg_schema(c, s.options.schema, s.options.read_only); !r) return r.error();
    return 0;
  });
  if (!opened) throw Exception(opened.error());
  if (s.options.schema_check != SchemaCheck::off) {
    auto recorded = recorded_schemas();
    if (!recorded) throw Exception(recorded.error());
    apply_schema_check(s.options.schema_check, s.describe(), *recorded, *s.registry, s.options.schema_warning);
  }
  impl_->follower = std::make_unique<PgFollower>(s);
  if (!s.options.read_only)
    impl_->writer = std::make_unique<PgWriter>(s, [this](bool notified) {
      ++impl_->shared.changes;
      impl_->follower->committed(notified);
    });
}

PgEventStore::~PgEventStore() {
  impl_->writer.reset();
  impl_->follower.reset();
}

const PgOptions& PgEventStore::options() const { return impl_->shared.options; }
int PgEventStore::schema_version() { return store_schema_version; }

Result<AppendResult> PgEventStore::append(std::string_view stream_id, ExpectedVersion expected,
                                          std::span<const EventData> events) {
  if (Error e = impl_->check_append(stream_id, events); e.code) return e;
  std::promise<Result<AppendResult>> promise;
  auto future = promise.get_future();
  impl_->writer->submit(impl_->pending(stream_id, expected, events,
                                       [&promise](Result<AppendResult> r) { promise.set_value(std::move(r)); }));
  return future.get();
}

void PgEventStore::append_async(std::string_view stream_id, ExpectedVersion expected,
                                std::span<const EventData> events, AppendCallback done) {
  if (Error e = impl_->check_append(stream_id, events); e.code) {
    done(std::move(e));
    return;
  }
  impl_->writer->submit(impl_->pending(stream_id, expected, events, std::move(done)));
}

Result<std::vector<RecordedEvent>> PgEventStore::read_stream(std::string_view stream_id,
                                                             const ReadStreamOptions& options) {
  std::vector<RecordedEvent> out;
  if (auto r = read_stream_into(out, stream_id, options); !r) return r.error();
  return out;
}

Result<void> PgEventStore::read_stream_into(std::vector<RecordedEvent>& out, std::string_view stream_id,
                                            const ReadStreamOptions& o) {
  const bool forward = o.direction == Direction::forward;
  const std::string sql = std::string("SELECT " EVS_PG_EVENT_COLUMNS " FROM events e" EVS_PG_EVENT_JOINS) +
                          (forward ? " WHERE s.name = $1 AND e.version >= $2" : " WHERE s.name = $1 AND e.version <= $2") +
                          " AND e.position <= $3" +
                          (forward ? " ORDER BY e.version ASC LIMIT $4" : " ORDER BY e.version DESC LIMIT $4");
  return impl_->read<void>("read a stream from", [&](PgConnection& c) -> Result<void> {
    std::size_t n = 0;
    if (o.max_count != 0) {
      PgParams p;
      p.text(stream_id).int64(to_db(o.from_version)).int64(to_db(o.until_position)).int64(to_db(o.max_count));
      auto r = c.prepared(sql, p, "read a stream from");
      if (!r) return r.error();
      for (int row = 0; row < r->rows(); ++row)
        if (auto d = decode_event(*r, row, 0, slot(out, n), !o.envelope); !d) return d.error();
    }
    out.resize(n);
    if (n != 0) return {};
    // Nothing in range: does the stream have events (at or before the bound)?
    PgParams p;
    p.text(stream_id);
    auto first = c.prepared(
        "SELECT e.position FROM events e JOIN streams s ON s.id = e.stream WHERE s.name = $1 AND e.version = 1", p,
        "read a stream from");
    if (!first) return first.error();
    if (first->rows() == 0 || static_cast<std::uint64_t>(first->int64(0, 0)) > o.until_position) {
      std::string message = "stream " + std::string(stream_id) + " has no events";
      if (o.until_position != no_bound) message += " at or before position " + std::to_string(o.until_position);
      return Error{errc::stream_not_found, std::move(message)};
    }
    return {};
  });
}

Result<ReadAllBatch> PgEventStore::read_all(std::uint64_t from_position, std::size_t max_count,
                                            const ReadAllFilter& filter) {
  ReadAllBatch batch;
  if (auto r = read_all_into(batch, from_position, max_count, filter); !r) return r.error();
  return batch;
}

Result<void> PgEventStore::read_all_into(ReadAllBatch& batch, std::uint64_t from_position, std::size_t max_count,
                                         const ReadAllFilter& filter) {
  // One statement, so the fence, the head and the rows come from one snapshot: nothing at or below the head
  // can commit later, and nothing above it is returned.
  // The batch is picked from events alone, in position order through the primary key with both bounds as
  // index conditions (the head is an InitPlan), and only its rows are joined for their names: a join before
  // the LIMIT lets the planner sort the whole rest of the log. A subquery with a LIMIT is never flattened,
  // and unlike a materialized CTE it does not copy the rows (payloads included) into a tuple store. The
  // rows come back in the join's order: sorted here if the plan changed it.
  std::string sql = "WITH h AS MATERIALIZED (SELECT coalesce(max(position), 0) AS head FROM events WHERE position < " +
                    std::string(fence_sql) +
                    ") SELECT h.head, " EVS_PG_EVENT_COLUMNS " FROM h LEFT JOIN ((SELECT * FROM events e WHERE "
                    "e.position >= $1 AND e.position <= (SELECT head FROM h)";
  if (!filter.event_types.empty()) sql += " AND e.type IN (SELECT id FROM event_types WHERE name = ANY($3::text[]))";
  if (!filter.categories.empty())
    sql += " AND e.stream IN (SELECT id FROM streams WHERE category = ANY($4::text[]))";
  sql += " ORDER BY e.position LIMIT $2) e" EVS_PG_EVENT_JOINS ") ON true";
  PgArray types = text_array(filter.event_types), categories = text_array(filter.categories);
  return impl_->read<void>("read all events from", [&](PgConnection& c) -> Result<void> {
    std::vector<RecordedEvent>& out = batch.events;
    batch.next_position = from_position;
    const std::uint64_t start = std::max<std::uint64_t>(from_position, 1);
    if (max_count == 0) {
      out.clear();
      return {};
    }
    PgParams p;
    p.int64(to_db(start)).int64(to_db(max_count));
    p.binary(types.bytes(), types.array_type()).binary(categories.bytes(), categories.array_type());
    auto r = c.prepared(sql, p, "read all events from");
    if (!r) return r.error();
    const auto head = static_cast<std::uint64_t>(r->int64(0, 0));
    std::size_t n = 0;
    for (int row = 0; row < r->rows(); ++row) {
      if (r->is_null(row, 1)) break;
      if (auto d = decode_event(*r, row, 1, slot(out, n), false); !d) return d.error();
    }
    out.resize(n);
    if (!std::is_sorted(out.begin(), out.end(), by_position))
      std::sort(out.begin(), out.end(), by_position);
    if (start > head) return {};  // nothing to examine: next_position unchanged
    // A full batch stops at its last event; a short one examined everything up to the head.
    batch.next_position = n == max_count ? out.back().position + 1 : head + 1;
    return {};
  });
}

Result<std::uint64_t> PgEventStore::stream_version(std::string_view stream_id) {
  return impl_->read<std::uint64_t>("read a stream version from", [&](PgConnection& c) -> Result<std::uint64_t> {
    PgParams p;
    p.text(stream_id);
    auto r = c.prepared("SELECT version FROM streams WHERE name = $1", p, "read a stream version from");
    if (!r) return r.error();
    return r->rows() == 0 ? 0 : static_cast<std::uint64_t>(r->int64(0, 0));
  });
}

Result<std::uint64_t> PgEventStore::last_position() {
  static const std::string sql =
      "SELECT coalesce(max(position), 0) FROM events WHERE position < " + std::string(fence_sql);
  return impl_->read<std::uint64_t>("read the head of", [&](PgConnection& c) -> Result<std::uint64_t> {
    auto r = c.prepared(sql, {}, "read the head of");
    if (!r) return r.error();
    return static_cast<std::uint64_t>(r->int64(0, 0));
  });
}

Result<std::uint64_t> PgEventStore::position_at(Timestamp t) {
  // recorded_at follows the log order up to the length of concurrent write transactions: look at the hour
  // before t through the time index first, and at everything only when nothing was recorded in that hour.
  static const std::string sql =
      "SELECT coalesce((SELECT max(position) FROM events WHERE recorded_at <= $1 AND recorded_at > $1 - 3600000000"
      " AND position < " + std::string(fence_sql) + "), (SELECT max(position) FROM events WHERE recorded_at <= $1"
      " AND position < " + std::string(fence_sql) + "), 0)";
  return impl_->read<std::uint64_t>("find a time in", [&](PgConnection& c) -> Result<std::uint64_t> {
    PgParams p;
    p.int64(t.time_since_epoch().count());
    auto r = c.prepared(sql, p, "find a time in");
    if (!r) return r.error();
    return static_cast<std::uint64_t>(r->int64(0, 0));
  });
}

Result<std::uint64_t> PgEventStore::count_events(std::uint64_t after, std::uint64_t through) {
  if (through <= after) return 0;
  return impl_->read<std::uint64_t>("count the events of", [&](PgConnection& c) -> Result<std::uint64_t> {
    PgParams p;
    p.int64(to_db(after)).int64(to_db(through));
    auto r = c.prepared("SELECT count(*) FROM (SELECT 1 FROM events WHERE position > $1 AND position <= $2"
                        " LIMIT 10000000) x",
                        p, "count the events of");
    if (!r) return r.error();
    return static_cast<std::uint64_t>(r->int64(0, 0));
  });
}

std::uint64_t PgEventStore::add_commit_listener(CommitListener listener) {
  impl_->follower->want_notifications();
  return impl_->shared.listeners.add(std::move(listener));
}

void PgEventStore::remove_commit_listener(std::uint64_t id) { impl_->shared.listeners.remove(id); }

std::uint64_t PgEventStore::add_append_observer(AppendObserver observer) {
  return impl_->shared.observers.add(std::move(observer));
}

void PgEventStore::remove_append_observer(std::uint64_t id) { impl_->shared.observers.remove(id); }

Result<std::uint64_t> PgEventStore::change_token() {
  impl_->follower->want_notifications();
  return impl_->shared.changes.load();
}

Result<void> PgEventStore::save_snapshot(const Snapshot& snapshot) {
  if (impl_->shared.options.read_only) return impl_->refuse_write("save a snapshot in");
  if (snapshot.stream_id.empty()) return Error{errc::invalid_argument, "snapshot without a stream id"};
  return impl_->read<void>("save a snapshot in", [&](PgConnection& c) -> Result<void> {
    PgParams p;
    p.text(snapshot.stream_id);
    auto v = c.prepared("SELECT version FROM streams WHERE name = $1", p, "save a snapshot in");
    if (!v) return v.error();
    const std::uint64_t current = v->rows() == 0 ? 0 : static_cast<std::uint64_t>(v->int64(0, 0));
    if (snapshot.version > current)
      return Error{errc::invalid_argument, "snapshot of stream " + snapshot.stream_id + " at version " +
                                               std::to_string(snapshot.version) + ", but the stream is at version " +
                                               std::to_string(current)};
    p.clear();
    p.text(snapshot.stream_id)
        .int64(to_db(snapshot.version))
        .text(snapshot.state_type)
        .int64(static_cast<std::int64_t>(snapshot.fingerprint))
        .int64(static_cast<std::int64_t>(snapshot.encoding))
        .bytes(snapshot.payload)
        .int64(now_us())
        .int64(snapshot.snapshot_version);
    auto r = c.prepared(
        "INSERT INTO snapshots (stream, version, state_type, fingerprint, encoding, payload, recorded_at,"
        " snapshot_version) VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT (stream) DO UPDATE SET"
        " version = excluded.version, state_type = excluded.state_type, fingerprint = excluded.fingerprint,"
        " encoding = excluded.encoding, payload = excluded.payload, recorded_at = excluded.recorded_at,"
        " snapshot_version = excluded.snapshot_version WHERE snapshots.version <= excluded.version",
        p, "save a snapshot in");
    if (!r) return r.error();
    return {};
  });
}

Result<std::optional<Snapshot>> PgEventStore::load_snapshot(std::string_view stream_id, std::uint64_t max_version) {
  using Out = std::optional<Snapshot>;
  return impl_->read<Out>("load a snapshot from", [&](PgConnection& c) -> Result<Out> {
    PgParams p;
    p.text(stream_id).int64(to_db(max_version));
    auto r = c.prepared(
        "SELECT version, state_type, fingerprint, encoding, payload, recorded_at, snapshot_version FROM snapshots"
        " WHERE stream = $1 AND version <= $2",
        p, "load a snapshot from");
    if (!r) return r.error();
    if (r->rows() == 0) return Out{};
    Snapshot s;
    s.stream_id = std::string(stream_id);
    s.version = static_cast<std::uint64_t>(r->int64(0, 0));
    s.state_type = std::string(r->text(0, 1));
    s.fingerprint = static_cast<std::uint64_t>(r->int64(0, 2));
    s.encoding = static_cast<Encoding>(r->int64(0, 3));
    s.payload = std::string(r->bytes(0, 4));
    s.recorded_at = from_us(r->int64(0, 5));
    s.snapshot_version = static_cast<std::uint32_t>(r->int64(0, 6));
    return Out{std::move(s)};
  });
}

Result<std::vector<RecordedSchema>> PgEventStore::recorded_schemas() {
  using Out = std::vector<RecordedSchema>;
  return impl_->read<Out>("read the schema records of", [&](PgConnection& c) -> Result<Out> {
    auto r = c.prepared("SELECT type, schema_version, fingerprint, members, recorded_at FROM event_schemas"
                        " ORDER BY type, schema_version",
                        {}, "read the schema records of");
    if (!r) return r.error();
    Out out;
    for (int row = 0; row < r->rows(); ++row)
      out.push_back({std::string(r->text(row, 0)), static_cast<std::uint32_t>(r->int64(row, 1)),
                     static_cast<std::uint64_t>(r->int64(row, 2)), std::string(r->text(row, 3)),
                     from_us(r->int64(row, 4))});
    return out;
  });
}

Result<std::vector<PgFenceHolder>> PgEventStore::fence_holders(std::chrono::milliseconds min_age) {
  using Out = std::vector<PgFenceHolder>;
  return impl_->read<Out>("list the open transactions of", [&](PgConnection& c) -> Result<Out> {
    PgParams p;
    p.int64(min_age.count());
    auto r = c.prepared(
        "SELECT pid, name, state, age_ms FROM ("
        " SELECT pid, coalesce(application_name, '') AS name, coalesce(state, '') AS state,"
        " (extract(epoch FROM clock_timestamp() - xact_start) * 1000)::bigint AS age_ms FROM pg_stat_activity"
        " WHERE backend_xid IS NOT NULL AND pid <> pg_backend_pid()"
        " UNION ALL SELECT 0, gid, 'prepared', (extract(epoch FROM clock_timestamp() - prepared) * 1000)::bigint"
        " FROM pg_prepared_xacts) a WHERE age_ms >= $1 ORDER BY age_ms DESC",
        p, "list the open transactions of");
    if (!r) return r.error();
    Out out;
    for (int row = 0; row < r->rows(); ++row)
      out.push_back({static_cast<int>(r->int64(row, 0)), std::string(r->text(row, 1)), std::string(r->text(row, 2)),
                     std::chrono::milliseconds(r->int64(row, 3))});
    return out;
  });
}

}  // namespace evs
