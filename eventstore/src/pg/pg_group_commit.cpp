#include "pg_group_commit.hpp"

#include "../append_checks.hpp"
#include "pg_array.hpp"
#include "pg_fast_group.hpp"
#include "pg_group_sql.hpp"
#include "pg_schema.hpp"
#include "pg_transaction.hpp"

#include <algorithm>
#include <map>
#include <unordered_map>

namespace evs::pg {
namespace {

constexpr std::string_view action = "append to";

// A position inside the group: known (an event stored earlier), or the index of an event this transaction
// stores, resolved once the transaction id is known.
struct Pos {
  bool in_group = false;
  std::uint64_t value = 0;
  std::uint64_t resolve(std::uint64_t base) const { return in_group ? base + value : value; }
};

struct StoredId {
  std::string stream;
  std::uint64_t version = 0;
  Pos position;
};

struct Decision {
  enum class Kind { error, empty, replay, accepted } kind = Kind::error;
  Error error;
  std::uint64_t stream_version = 0;
  Pos first, last;
};

// One event this transaction stores.
struct Row {
  const PendingEvent* event;
  const std::string* stream;
  std::uint64_t version;
  std::uint64_t index;  // in the transaction
};

using SchemaKey = std::pair<std::string, std::uint32_t>;

class Group {
 public:
  Group(StoreShared& shared, PgConnection& c, std::span<const PendingAppend> appends)
      : shared_(shared), c_(c), appends_(appends) {}

  // Two round trips for a group of known types and schemas: BEGIN + locks + load, then the write + COMMIT.
  // Types or schemas new to this process take one more each (interned, recorded) before the write.
  GroupOutcome run() {
    GroupOutcome out;
    auto tx = begin_and_load();
    if (!tx) return failed(tx.error());
    decide(out.warnings);
    if (rows_.empty()) {
      if (auto r = tx->commit(action); !r) return failed(r.error());
      return finish(std::move(out), 0);
    }
    if (Error e = intern_types(); e.code) return failed(std::move(e));
    if (needs_schema_records()) {
      auto raced = insert_schemas();
      if (!raced) return failed(raced.error());
      if (*raced) {
        out.kind = GroupOutcome::Kind::retry;
        return out;
      }
    }
    auto base = write_and_commit(*tx);
    if (!base) return failed(base.error());
    remember_committed();
    out.stored = true;
    out.notified = notified_;
    return finish(std::move(out), *base);
  }

 private:
  GroupOutcome failed(Error e) { return group_failure(std::move(e)); }

  GroupOutcome finish(GroupOutcome out, std::uint64_t base) {
    out.kind = GroupOutcome::Kind::committed;
    out.results.reserve(decisions_.size());
    for (Decision& d : decisions_) {
      switch (d.kind) {
        case Decision::Kind::error: out.results.emplace_back(std::move(d.error)); break;
        case Decision::Kind::empty: out.results.emplace_back(AppendResult{d.stream_version, 0, 0, false}); break;
        case Decision::Kind::replay:
        case Decision::Kind::accepted:
          out.results.emplace_back(AppendResult{d.stream_version, d.first.resolve(base), d.last.resolve(base),
                                                d.kind == Decision::Kind::replay});
          break;
      }
    }
    return out;
  }

  // Round trip 1, in one pipeline: BEGIN; the advisory locks on the group's streams, in key order
  // (deadlock-free; they take no transaction id); then what the decisions need: the streams' versions and
  // the ids already stored. The load is a statement of its own after the locks, so its snapshot is taken
  // once they are held and sees every append that held them before.
  Result<PgTransaction> begin_and_load() {
    PgArray key_array = lock_keys(shared_.options.schema, appends_);
    std::vector<std::string_view> streams;
    for (const PendingAppend& a : appends_) streams.push_back(a.stream);
    std::sort(streams.begin(), streams.end());
    streams.erase(std::unique(streams.begin(), streams.end()), streams.end());
    PgArray names(text_oid), ids(uuid_oid);
    for (const std::string_view s : streams) names.raw(s);
    for (const PendingAppend& a : appends_)
      for (const PendingEvent& e : a.events) ids.raw(e.id.bytes_view());
    PgParams lock, load;
    lock.binary(key_array.bytes(), key_array.array_type());
    load.binary(names.bytes(), names.array_type()).binary(ids.bytes(), ids.array_type());
    const PgConnection::Statement statements[] = {
        {begin_group_sql, nullptr, false},
        {lock_streams_sql, &lock},
        {"SELECT NULL::uuid, name, version, 0::bigint FROM streams WHERE name = ANY($1::text[])"
         " UNION ALL SELECT e.event_id, s.name, e.version, e.position FROM events e JOIN streams s ON s.id = e.stream"
         " WHERE e.event_id = ANY($2::uuid[])",
         &load}};
    auto r = c_.pipeline(statements, action);
    if (!r) {
      if (!c_.broken()) (void)c_.exec("ROLLBACK", action);  // BEGIN ran, a later statement failed
      return r.error();
    }
    PgTransaction tx = PgTransaction::begun(c_);
    const PgResult& loaded = (*r)[2];
    for (int row = 0; row < loaded.rows(); ++row) {
      if (loaded.is_null(row, 0)) {
        versions_[std::string(loaded.text(row, 1))] = static_cast<std::uint64_t>(loaded.int64(row, 2));
        continue;
      }
      auto id = Uuid::from_bytes(loaded.bytes(row, 0));
      if (!id) continue;
      ids_[*id] = StoredId{std::string(loaded.text(row, 1)), static_cast<std::uint64_t>(loaded.int64(row, 2)),
                           Pos{false, static_cast<std::uint64_t>(loaded.int64(row, 3))}};
    }
    if (Error e = load_schemas(); e.code) return e;
    return tx;
  }

  // The recorded schemas of the group's (type, version) pairs that this process has not seen yet.
  Error load_schemas() {
    if (shared_.options.schema_check == SchemaCheck::off) return {};
    PgArray types(text_oid), versions(int4_oid);
    {
      std::lock_guard lock(shared_.cache_mutex);
      std::set<SchemaKey> asked;
      for (const PendingAppend& a : appends_)
        for (const PendingEvent& e : a.events) {
          SchemaKey key{e.type, e.schema_version};
          if (e.fingerprint == 0 || shared_.schemas.contains(key) || !asked.insert(key).second) continue;
          types.raw(e.type);
          versions.int32(static_cast<std::int32_t>(e.schema_version));
        }
    }
    if (types.size() == 0) return {};
    PgParams p;
    p.binary(types.bytes(), types.array_type()).binary(versions.bytes(), versions.array_type());
    auto r = c_.prepared(
        "SELECT type, schema_version, fingerprint, members, recorded_at FROM event_schemas"
        " WHERE (type, schema_version) IN (SELECT * FROM unnest($1::text[], $2::integer[]))",
        p, action);
    if (!r) return r.error();
    std::lock_guard lock(shared_.cache_mutex);
    for (int row = 0; row < r->rows(); ++row) {
      RecordedSchema s{std::string(r->text(row, 0)), static_cast<std::uint32_t>(r->int64(row, 1)),
                       static_cast<std::uint64_t>(r->int64(row, 2)), std::string(r->text(row, 3)),
                       from_us(r->int64(row, 4))};
      shared_.schemas.emplace(SchemaKey{s.type, s.schema_version}, std::move(s));
    }
    return {};
  }

  // The original result if `a` is an exact retry of a stored (or earlier in this group) append; an error if
  // it overlaps one only partly; nullopt if it is new.
  std::optional<Decision> idempotent(const PendingAppend& a) {
    std::size_t found = 0;
    for (const PendingEvent& e : a.events) {
      auto it = ids_.find(e.id);
      if (it == ids_.end()) continue;
      ++found;
      if (it->second.stream != a.stream)
        return refusal(detail::partial_duplicate(a.stream, e.id,
                                                 "is already stored in stream " + it->second.stream));
    }
    if (found == 0) return std::nullopt;
    if (found != a.events.size())
      return refusal(detail::partial_duplicate(a.stream, a.events.front().id,
                                               "is part of a retry that overlaps an earlier append only partly"));
    const StoredId& first = ids_.at(a.events.front().id);
    for (std::size_t i = 0; i < a.events.size(); ++i)
      if (ids_.at(a.events[i].id).version != first.version + i)
        return refusal(detail::partial_duplicate(
            a.stream, a.events[i].id, "was stored at another place in the stream than this retry puts it"));
    const StoredId& last = ids_.at(a.events.back().id);
    Decision d;
    d.kind = Decision::Kind::replay;
    d.stream_version = last.version;
    d.first = first.position;
    d.last = last.position;
    return d;
  }

  static Decision refusal(Error e) {
    Decision d;
    d.error = std::move(e);
    return d;
  }

  // SchemaCheck for one append: the refusal, or an empty Error (warnings for `warn` go to `warnings`).
  Error check_schemas(const PendingAppend& a, std::map<SchemaKey, std::uint64_t>& pending,
                      std::vector<std::string>& warnings) {
    if (shared_.options.schema_check == SchemaCheck::off) return {};
    std::lock_guard lock(shared_.cache_mutex);
    for (const PendingEvent& e : a.events) {
      if (e.fingerprint == 0) continue;
      SchemaKey key{e.type, e.schema_version};
      RecordedSchema recorded;
      if (auto it = shared_.schemas.find(key); it != shared_.schemas.end()) {
        recorded = it->second;
      } else if (auto first = pending.find(key); first != pending.end()) {
        recorded = {e.type, e.schema_version, first->second,
                    registered_members(*shared_.registry, e.type, e.schema_version, first->second), {}};
      } else {
        pending.emplace(key, e.fingerprint);
        continue;
      }
      if (recorded.fingerprint == e.fingerprint) continue;
      const SchemaDrift drift = appended_schema_drift(recorded, e.fingerprint, *shared_.registry);
      if (shared_.options.schema_check == SchemaCheck::refuse)
        return {errc::schema_drift, appended_schema_drift_report(shared_.describe(), a.stream, drift, false)};
      if (shared_.warned.emplace(e.type, e.schema_version, e.fingerprint).second)
        warnings.push_back(appended_schema_drift_report(shared_.describe(), a.stream, drift, true));
    }
    return {};
  }

  // Each append's outcome, in queue order, as if they ran one after another.
  void decide(std::vector<std::string>& warnings) {
    for (const PendingAppend& a : appends_) {
      if (auto replay = idempotent(a)) {
        decisions_.push_back(std::move(*replay));
        continue;
      }
      const std::uint64_t current = versions_[a.stream];
      if (!a.expected.accepts(current)) {
        decisions_.push_back(refusal(detail::wrong_version(a.stream, current, a.expected)));
        continue;
      }
      if (a.events.empty()) {
        Decision d;
        d.kind = Decision::Kind::empty;
        d.stream_version = current;
        decisions_.push_back(d);
        continue;
      }
      std::map<SchemaKey, std::uint64_t> pending = schema_records_;
      std::vector<std::string> append_warnings;
      if (Error refused = check_schemas(a, pending, append_warnings); refused.code) {
        decisions_.push_back(refusal(std::move(refused)));
        continue;
      }
      schema_records_ = std::move(pending);
      warnings.insert(warnings.end(), append_warnings.begin(), append_warnings.end());
      Decision d;
      d.kind = Decision::Kind::accepted;
      d.first = Pos{true, rows_.size()};
      for (std::size_t i = 0; i < a.events.size(); ++i) {
        const std::uint64_t version = current + i + 1;
        const Pos at{true, rows_.size()};
        rows_.push_back(Row{&a.events[i], &a.stream, version, rows_.size()});
        ids_[a.events[i].id] = StoredId{a.stream, version, at};
      }
      d.last = Pos{true, rows_.size() - 1};
      d.stream_version = current + a.events.size();
      versions_[a.stream] = d.stream_version;
      touched_.insert(a.stream);
      decisions_.push_back(d);
    }
  }

  Error intern_types() {
    std::vector<std::string_view> missing;
    {
      std::lock_guard lock(shared_.cache_mutex);
      for (const Row& row : rows_) {
        auto it = shared_.type_ids.find(row.event->type);
        if (it != shared_.type_ids.end()) {
          type_ids_[row.event->type] = it->second;
        } else if (!type_ids_.contains(row.event->type)) {
          type_ids_[row.event->type] = -1;
          missing.push_back(row.event->type);
        }
      }
    }
    if (missing.empty()) return {};
    std::sort(missing.begin(), missing.end());  // every writer inserts in name order: no deadlock between them
    PgArray names(text_oid);
    for (const std::string_view n : missing) names.raw(n);
    PgParams p;
    p.binary(names.bytes(), names.array_type());
    if (auto r = c_.prepared("INSERT INTO event_types (name) SELECT unnest($1::text[]) ON CONFLICT (name) DO NOTHING",
                             p, action);
        !r)
      return r.error();
    auto r = c_.prepared("SELECT id, name FROM event_types WHERE name = ANY($1::text[])", p, action);
    if (!r) return r.error();
    for (int row = 0; row < r->rows(); ++row) {
      const auto id = static_cast<std::int32_t>(r->int64(row, 0));
      type_ids_[std::string(r->text(row, 1))] = id;
      new_types_.emplace_back(id, std::string(r->text(row, 1)));
    }
    return {};
  }

  // The first events of new (type, version) pairs record their schema. Returns true when another process
  // recorded one of them first (its record may differ: the group must be decided again).
  Result<bool> insert_schemas() {
    PgArray types(text_oid), versions(int4_oid), fingerprints(int8_oid), members(text_oid);
    {
      std::lock_guard lock(shared_.cache_mutex);
      for (const auto& [key, fingerprint] : schema_records_) {
        if (shared_.schemas.contains(key)) continue;
        std::string m = registered_members(*shared_.registry, key.first, key.second, fingerprint);
        types.raw(key.first);
        versions.int32(static_cast<std::int32_t>(key.second));
        fingerprints.int64(static_cast<std::int64_t>(fingerprint));
        members.raw(m);
        new_schemas_.push_back(RecordedSchema{key.first, key.second, fingerprint, std::move(m), {}});
      }
    }
    if (new_schemas_.empty()) return false;
    PgParams p;
    p.binary(types.bytes(), types.array_type())
        .binary(versions.bytes(), versions.array_type())
        .binary(fingerprints.bytes(), fingerprints.array_type())
        .binary(members.bytes(), members.array_type());
    auto r = c_.prepared(
        "INSERT INTO event_schemas (type, schema_version, fingerprint, members, recorded_at)"
        " SELECT t, v, f, m, (SELECT (extract(epoch FROM clock_timestamp()) * 1000000)::bigint)"
        " FROM unnest($1::text[], $2::integer[], $3::bigint[], $4::text[]) AS u(t, v, f, m)"
        " ON CONFLICT (type, schema_version) DO NOTHING RETURNING recorded_at",
        p, action);
    if (!r) return r.error();
    if (static_cast<std::size_t>(r->rows()) == new_schemas_.size()) {
      for (RecordedSchema& recorded : new_schemas_) recorded.recorded_at = from_us(r->int64(0, 0));
      return false;
    }
    // Someone else's record won; forget what this process believed and let the retry load the real ones.
    return true;
  }

  // Whether this group records the first schema of a (type, version) pair (insert_schemas).
  bool needs_schema_records() {
    std::lock_guard lock(shared_.cache_mutex);
    for (const auto& [key, fingerprint] : schema_records_)
      if (!shared_.schemas.contains(key)) return true;
    return false;
  }

  // Round trip 2, in one pipeline: the streams and the events in one statement (the transaction's id and
  // the time come back from it), COMMIT, and the notification. Returns the first position of the transaction.
  Result<std::uint64_t> write_and_commit(PgTransaction& tx) {
    PgArray names(text_oid), categories(text_oid), stream_versions(int8_oid);
    for (const std::string& s : touched_) {
      names.raw(s);
      categories.raw(stream_category(s));
      stream_versions.int64(static_cast<std::int64_t>(versions_[s]));
    }
    EventColumns events;
    for (const Row& row : rows_) events.add(row.index, *row.stream, row.version, *row.event, type_ids_.at(row.event->type));
    PgParams p;
    p.binary(names.bytes(), names.array_type())
        .binary(categories.bytes(), categories.array_type())
        .binary(stream_versions.bytes(), stream_versions.array_type());
    events.bind(p);
    static const std::string sql =
        "WITH " +
        group_write_sql({.stream_columns = "n, c, v",
                         .stream_rows = "FROM unnest($1::text[], $2::text[], $3::bigint[]) AS u(n, c, v)",
                         .first = 4,
                         .version = "u.v"}) +
        " SELECT tx, at FROM x";
    const PgParams channel = notify_params(shared_.channel);
    const PgConnection::Statement statements[] = {
        {sql, &p}, {"COMMIT", nullptr, false}, {notify_sql, &channel, true, ResultFormat::binary, true}};
    auto r = c_.pipeline(statements, action);
    if (!r) return r.error();  // the transaction is aborted on the server; `tx` rolls it back
    if ((*r)[1].command_tag() == "ROLLBACK")
      return Error{errc::io_error, "append to " + shared_.describe() + ": PostgreSQL rolled the group back"};
    tx.committed();
    notified_ = notified((*r)[2]);
    const PgResult& written = (*r)[0];
    if (written.rows() != 1) return Error{errc::io_error, "append to " + shared_.describe() + ": no row came back"};
    return first_position(shared_, written.int64(0, 0));
  }

  void remember_committed() {
    std::lock_guard lock(shared_.cache_mutex);
    for (auto& [id, name] : new_types_) {
      shared_.type_ids[name] = id;
      shared_.type_names[id] = name;
    }
    for (RecordedSchema& s : new_schemas_) shared_.schemas.emplace(SchemaKey{s.type, s.schema_version}, std::move(s));
  }

  StoreShared& shared_;
  PgConnection& c_;
  std::span<const PendingAppend> appends_;
  std::unordered_map<std::string, std::uint64_t> versions_;  // stream -> version, as the group goes
  std::unordered_map<Uuid, StoredId, UuidHash> ids_;          // the group's ids stored before or in it
  std::map<SchemaKey, std::uint64_t> schema_records_;         // pairs first recorded by this group
  std::vector<Decision> decisions_;
  std::vector<Row> rows_;
  std::set<std::string> touched_;  // streams this group appends to
  bool notified_ = false;          // the notification after the COMMIT went out
  std::unordered_map<std::string, std::int32_t> type_ids_;
  std::vector<std::pair<std::int32_t, std::string>> new_types_;
  std::vector<RecordedSchema> new_schemas_;
};

}  // namespace

bool transient_conflict(const Error& error) {
  return error.message.find("SQLSTATE 40P01") != std::string::npos ||
         error.message.find("SQLSTATE 40001") != std::string::npos;
}

GroupOutcome group_failure(Error error) {
  GroupOutcome out;
  out.kind = transient_conflict(error) || error.is(errc::duplicate_event) ? GroupOutcome::Kind::retry
                                                                         : GroupOutcome::Kind::failed;
  out.error = std::move(error);
  return out;
}

GroupOutcome commit_group(StoreShared& shared, PgConnection& connection, std::span<const PendingAppend> group) {
  if (auto fast = commit_group_fast(shared, connection, group)) return std::move(*fast);
  return Group(shared, connection, group).run();
}

}  // namespace evs::pg
