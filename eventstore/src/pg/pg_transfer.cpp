// The PostgreSQL store's StoreTransfer: counts, snapshot pages and the import, on a connection of its own.
// An import writes each batch with a few array statements (unnest), like the group commit, and its last step
// raises the transaction-id offset (align_tx_offset) so the positions of later appends sort after the
// imported ones, whatever store they came from.
#include "pg_transfer.hpp"

#include <algorithm>
#include <set>
#include <string>
#include <unordered_map>

#include "../import_checks.hpp"
#include "pg_array.hpp"
#include "pg_connection.hpp"
#include "pg_schema.hpp"
#include "pg_store_impl.hpp"
#include "pg_transaction.hpp"

namespace evs::pg {
namespace {

class PgTransfer final : public StoreTransfer {
 public:
  PgTransfer(PgConnection connection, PgOptions options)
      : c_(std::move(connection)), options_(std::move(options)) {}

  Result<StoreContents> contents() override {
    auto r = c_.query("SELECT (SELECT count(*) FROM events), (SELECT count(*) FROM streams),"
                      " (SELECT count(*) FROM snapshots), (SELECT count(*) FROM event_schemas)",
                      {}, "count the contents of");
    if (!r) return r.error();
    return StoreContents{static_cast<std::uint64_t>(r->int64(0, 0)), static_cast<std::uint64_t>(r->int64(0, 1)),
                         static_cast<std::uint64_t>(r->int64(0, 2)), static_cast<std::uint64_t>(r->int64(0, 3))};
  }

  Result<std::vector<Snapshot>> read_snapshots(std::string_view after_stream, std::size_t max_count) override {
    PgParams p;
    p.text(after_stream).int64(to_db(max_count));
    auto r = c_.prepared(
        "SELECT stream, version, state_type, fingerprint, encoding, payload, recorded_at, snapshot_version"
        " FROM snapshots WHERE stream > $1 ORDER BY stream LIMIT $2",
        p, "read the snapshots of");
    if (!r) return r.error();
    std::vector<Snapshot> out;
    for (int row = 0; row < r->rows(); ++row) {
      Snapshot& s = out.emplace_back();
      s.stream_id = std::string(r->text(row, 0));
      s.version = static_cast<std::uint64_t>(r->int64(row, 1));
      s.state_type = std::string(r->text(row, 2));
      s.fingerprint = static_cast<std::uint64_t>(r->int64(row, 3));
      s.encoding = static_cast<Encoding>(r->int64(row, 4));
      s.payload = std::string(r->bytes(row, 5));
      s.recorded_at = from_us(r->int64(row, 6));
      s.snapshot_version = static_cast<std::uint32_t>(r->int64(row, 7));
    }
    return out;
  }

  Result<void> import_events(std::span<const RecordedEvent> events) override {
    constexpr std::string_view action = "import events into";
    if (options_.read_only) return refuse_read_only(action);
    if (events.empty()) return {};
    auto tx = PgTransaction::begin(c_, action);
    if (!tx) return tx.error();

    auto head = c_.prepared("SELECT coalesce(max(position), 0) FROM events", {}, action);
    if (!head) return head.error();
    const auto last_position = static_cast<std::uint64_t>(head->int64(0, 0));

    // The batch's streams and types, and the streams' versions after it.
    std::set<std::string_view> type_names;
    std::unordered_map<std::string_view, const RecordedEvent*> last_of_stream;
    for (const RecordedEvent& e : events) {
      type_names.insert(e.type);
      last_of_stream[e.stream_id] = &e;
    }
    PgArray names(text_oid);
    for (const auto& entry : last_of_stream) names.raw(entry.first);
    std::unordered_map<std::string, std::uint64_t> stored;
    {
      PgParams p;
      p.binary(names.bytes(), names.array_type());
      auto r = c_.prepared("SELECT name, version FROM streams WHERE name = ANY($1::text[])", p, action);
      if (!r) return r.error();
      for (int row = 0; row < r->rows(); ++row)
        stored.emplace(std::string(r->text(row, 0)), static_cast<std::uint64_t>(r->int64(row, 1)));
    }
    if (Error e = detail::check_import(events, last_position,
                                       [&](std::string_view name) {
                                         auto it = stored.find(std::string(name));
                                         return it == stored.end() ? 0 : it->second;
                                       });
        e.code)
      return e;

    {
      PgArray types(text_oid);
      for (const std::string_view t : type_names) types.raw(t);  // in name order, as the writers insert them
      PgParams p;
      p.binary(types.bytes(), types.array_type());
      if (auto r = c_.prepared("INSERT INTO event_types (name) SELECT unnest($1::text[]) ON CONFLICT (name) DO NOTHING",
                               p, action);
          !r)
        return r.error();
    }
    {
      PgArray categories(text_oid), versions(int8_oid), updated(int8_oid);
      for (const auto& entry : last_of_stream) {
        categories.raw(stream_category(entry.first));
        versions.int64(static_cast<std::int64_t>(entry.second->version));
        updated.int64(entry.second->recorded_at.time_since_epoch().count());
      }
      PgParams p;
      p.binary(names.bytes(), names.array_type())
          .binary(categories.bytes(), categories.array_type())
          .binary(versions.bytes(), versions.array_type())
          .binary(updated.bytes(), updated.array_type());
      if (auto r = c_.prepared(
              "INSERT INTO streams (name, category, version, updated_at)"
              " SELECT n, c, v, u FROM unnest($1::text[], $2::text[], $3::bigint[], $4::bigint[]) AS x(n, c, v, u)"
              " ON CONFLICT (name) DO UPDATE SET version = excluded.version, updated_at = excluded.updated_at",
              p, action);
          !r)
        return r.error();
    }
    {
      PgArray positions(int8_oid), streams(text_oid), versions(int8_oid), ids(uuid_oid), types(text_oid),
          schema_versions(int4_oid), encodings(int2_oid), times(int8_oid), correlations(text_oid),
          causations(text_oid), metadata(bytea_oid), payloads(bytea_oid);
      std::vector<std::string> encoded;  // the metadata bytes, alive until the statement ran
      encoded.reserve(events.size());
      for (const RecordedEvent& e : events) {
        positions.int64(static_cast<std::int64_t>(e.position));
        streams.raw(e.stream_id);
        versions.int64(static_cast<std::int64_t>(e.version));
        ids.raw(e.event_id.bytes_view());
        types.raw(e.type);
        schema_versions.int32(static_cast<std::int32_t>(e.schema_version));
        encodings.int16(static_cast<std::int16_t>(e.encoding));
        times.int64(e.recorded_at.time_since_epoch().count());
        correlations.raw(e.metadata.correlation_id);
        causations.raw(e.metadata.causation_id);
        if (auto m = detail::stored_user_metadata(e.metadata)) {
          metadata.raw(encoded.emplace_back(std::move(*m)));
        } else {
          metadata.null();
        }
        payloads.raw(e.payload);
      }
      PgParams p;
      for (PgArray* a : {&positions, &streams, &versions, &ids, &types, &schema_versions, &encodings, &times,
                         &correlations, &causations, &metadata, &payloads})
        p.binary(a->bytes(), a->array_type());
      auto r = c_.prepared(
          "INSERT INTO events (position, stream, version, event_id, type, schema_version, encoding, recorded_at,"
          " correlation_id, causation_id, metadata, payload)"
          " SELECT u.p, s.id, u.v, u.i, t.id, u.sv, u.e, u.r, u.c, u.ca, u.m, u.pl FROM unnest($1::bigint[],"
          " $2::text[], $3::bigint[], $4::uuid[], $5::text[], $6::integer[], $7::smallint[], $8::bigint[], $9::text[],"
          " $10::text[], $11::bytea[], $12::bytea[]) AS u(p, sn, v, i, tn, sv, e, r, c, ca, m, pl)"
          " JOIN streams s ON s.name = u.sn JOIN event_types t ON t.name = u.tn",
          p, action);
      if (!r) return r.error();
      if (r->affected_rows() != static_cast<std::int64_t>(events.size()))
        return Error{errc::io_error, std::string(action) + " " + describe() + ": " +
                                         std::to_string(r->affected_rows()) + " of " +
                                         std::to_string(events.size()) + " events were stored; the batch was rolled back"};
    }
    return tx->commit(action);
  }

  Result<void> import_schemas(std::span<const RecordedSchema> schemas) override {
    constexpr std::string_view action = "import schema records into";
    if (options_.read_only) return refuse_read_only(action);
    if (schemas.empty()) return {};
    PgArray types(text_oid), versions(int4_oid), fingerprints(int8_oid), members(text_oid), times(int8_oid);
    for (const RecordedSchema& s : schemas) {
      types.raw(s.type);
      versions.int32(static_cast<std::int32_t>(s.schema_version));
      fingerprints.int64(static_cast<std::int64_t>(s.fingerprint));
      members.raw(s.members);
      times.int64(s.recorded_at.time_since_epoch().count());
    }
    PgParams p;
    for (PgArray* a : {&types, &versions, &fingerprints, &members, &times}) p.binary(a->bytes(), a->array_type());
    auto tx = PgTransaction::begin(c_, action);
    if (!tx) return tx.error();
    auto r = c_.prepared(
        "INSERT INTO event_schemas (type, schema_version, fingerprint, members, recorded_at)"
        " SELECT * FROM unnest($1::text[], $2::integer[], $3::bigint[], $4::text[], $5::bigint[])"
        " ON CONFLICT (type, schema_version) DO NOTHING RETURNING type, schema_version",
        p, action);
    if (!r) return r.error();
    if (static_cast<std::size_t>(r->rows()) != schemas.size()) {
      std::set<std::pair<std::string, std::int64_t>> added;
      for (int row = 0; row < r->rows(); ++row) added.emplace(std::string(r->text(row, 0)), r->int64(row, 1));
      for (const RecordedSchema& s : schemas)
        if (!added.contains({s.type, static_cast<std::int64_t>(s.schema_version)}))
          return Error{errc::invalid_argument, std::string(action) + " " + describe() + ": " + s.type + " v" +
                                                   std::to_string(s.schema_version) +
                                                   " has a schema record there already; nothing was stored"};
    }
    return tx->commit(action);
  }

  Result<void> import_snapshots(std::span<const Snapshot> snapshots) override {
    constexpr std::string_view action = "import snapshots into";
    if (options_.read_only) return refuse_read_only(action);
    if (snapshots.empty()) return {};
    PgArray streams(text_oid), versions(int8_oid), state_types(text_oid), fingerprints(int8_oid),
        encodings(int2_oid), payloads(bytea_oid), times(int8_oid), snapshot_versions(int4_oid);
    for (const Snapshot& s : snapshots) {
      streams.raw(s.stream_id);
      versions.int64(static_cast<std::int64_t>(s.version));
      state_types.raw(s.state_type);
      fingerprints.int64(static_cast<std::int64_t>(s.fingerprint));
      encodings.int16(static_cast<std::int16_t>(s.encoding));
      payloads.raw(s.payload);
      times.int64(s.recorded_at.time_since_epoch().count());
      snapshot_versions.int32(static_cast<std::int32_t>(s.snapshot_version));
    }
    PgParams p;
    for (PgArray* a : {&streams, &versions, &state_types, &fingerprints, &encodings, &payloads, &times,
                       &snapshot_versions})
      p.binary(a->bytes(), a->array_type());
    auto tx = PgTransaction::begin(c_, action);
    if (!tx) return tx.error();
    // A snapshot ahead of its stream (or of a stream the store does not have) refuses the whole batch.
    {
      PgParams q;
      q.binary(streams.bytes(), streams.array_type()).binary(versions.bytes(), versions.array_type());
      auto r = c_.prepared(
          "SELECT u.st, u.v, coalesce(s.version, 0) FROM unnest($1::text[], $2::bigint[]) AS u(st, v)"
          " LEFT JOIN streams s ON s.name = u.st WHERE u.v > coalesce(s.version, 0) LIMIT 1",
          q, action);
      if (!r) return r.error();
      if (r->rows() > 0)
        return Error{errc::invalid_argument, std::string(action) + " " + describe() + ": the snapshot of stream " +
                                                 std::string(r->text(0, 0)) + " is at version " +
                                                 std::to_string(r->int64(0, 1)) + ", but the stream is at version " +
                                                 std::to_string(r->int64(0, 2)) + "; nothing was stored"};
    }
    auto r = c_.prepared(
        "INSERT INTO snapshots (stream, version, state_type, fingerprint, encoding, payload, recorded_at,"
        " snapshot_version) SELECT * FROM unnest($1::text[], $2::bigint[], $3::text[], $4::bigint[], $5::smallint[],"
        " $6::bytea[], $7::bigint[], $8::integer[]) ON CONFLICT (stream) DO UPDATE SET version = excluded.version,"
        " state_type = excluded.state_type, fingerprint = excluded.fingerprint, encoding = excluded.encoding,"
        " payload = excluded.payload, recorded_at = excluded.recorded_at, snapshot_version = excluded.snapshot_version",
        p, action);
    if (!r) return r.error();
    return tx->commit(action);
  }

  Result<void> finish_import() override {
    constexpr std::string_view action = "finish an import into";
    if (options_.read_only) return refuse_read_only(action);
    auto tx = PgTransaction::begin(c_, action);
    if (!tx) return tx.error();
    // Under the lock of open_pg_schema, which raises the offset the same way.
    PgParams key;
    key.int64(advisory_key(options_.schema, "\x01migrate"));
    if (auto r = c_.query("SELECT pg_advisory_xact_lock($1)", key, action); !r) return r.error();
    if (auto r = align_tx_offset(c_); !r) return r.error();
    return tx->commit(action);
  }

 private:
  std::string describe() const { return "schema " + options_.schema + " of " + c_.target(); }

  Error refuse_read_only(std::string_view action) const {
    return {errc::read_only, std::string(action) + " " + describe() + ": the store was opened read-only"};
  }

  PgConnection c_;
  PgOptions options_;
};

}  // namespace

Result<std::unique_ptr<StoreTransfer>> open_transfer(const PgOptions& options) {
  PgConnectOptions connect;
  connect.connect_timeout = options.connect_timeout;
  connect.statement_timeout = options.statement_timeout;
  connect.search_path = options.schema;
  connect.application_name = "evs transfer";
  auto c = PgConnection::connect(options.url, connect);
  if (!c) return c.error();
  return std::unique_ptr<StoreTransfer>(std::make_unique<PgTransfer>(std::move(*c), options));
}

}  // namespace evs::pg
