// The SQLite store's StoreTransfer: counts, snapshot pages and the import, on a connection of its own. An
// import commits like any other writer of the file (BEGIN IMMEDIATE), so the store's writer sees the change
// through PRAGMA data_version and reloads its caches (the last position, stream versions) before it appends.
#include "sqlite_transfer.hpp"

#include <bit>
#include <string>
#include <unordered_map>

#include "import_checks.hpp"
#include "sqlite_connection.hpp"
#include "sqlite_schema.hpp"
#include "sqlite_support.hpp"

namespace evs::sqlite {
namespace {

class SqliteTransfer final : public StoreTransfer {
 public:
  SqliteTransfer(Connection connection, bool read_only)
      : c_(std::move(connection)), read_only_(read_only) {}

  Result<StoreContents> contents() override {
    return guarded([&] {
      constexpr std::string_view action = "count the contents of";
      auto tx = must(Transaction::begin(c_, Transaction::Mode::deferred, action));
      StoreContents out;
      out.events = to_u64(scalar("SELECT count(*) FROM events", action));
      out.streams = to_u64(scalar("SELECT count(*) FROM streams", action));
      out.snapshots = to_u64(scalar("SELECT count(*) FROM snapshots", action));
      if (schema_version(action) >= schema_records_since)
        out.schemas = to_u64(scalar("SELECT count(*) FROM event_schemas", action));
      return out;
    });
  }

  Result<std::vector<Snapshot>> read_snapshots(std::string_view after_stream, std::size_t max_count) override {
    return guarded([&] {
      constexpr std::string_view action = "read the snapshots of";
      // Before schema_records_since, every snapshot has snapshot version 1.
      auto st = must(c_.cached(schema_version(action) >= schema_records_since
                                   ? "SELECT stream, version, state_type, fingerprint, encoding, payload, recorded_at, "
                                     "snapshot_version FROM snapshots WHERE stream > ?1 ORDER BY stream LIMIT ?2"
                                   : "SELECT stream, version, state_type, fingerprint, encoding, payload, recorded_at, "
                                     "1 FROM snapshots WHERE stream > ?1 ORDER BY stream LIMIT ?2",
                               action));
      st->bind_text(1, after_stream);
      st->bind(2, to_db(max_count));
      std::vector<Snapshot> out;
      while (must(st->step(action))) {
        Snapshot& s = out.emplace_back();
        s.stream_id = std::string(st->column_text(0));
        s.version = to_u64(st->column_int64(1));
        s.state_type = std::string(st->column_text(2));
        s.fingerprint = std::bit_cast<std::uint64_t>(st->column_int64(3));
        s.encoding = static_cast<Encoding>(st->column_int64(4));
        s.payload = std::string(st->column_blob(5));
        s.recorded_at = from_us(st->column_int64(6));
        s.snapshot_version = static_cast<std::uint32_t>(st->column_int64(7));
      }
      return out;
    });
  }

  Result<void> import_events(std::span<const RecordedEvent> events) override {
    constexpr std::string_view action = "import events into";
    if (read_only_) return refuse_read_only(action);
    if (events.empty()) return {};
    return guarded([&] {
      auto tx = must(Transaction::begin(c_, Transaction::Mode::immediate, action));
      std::uint64_t last_position = 0;
      std::int64_t last_recorded_at = 0;
      {
        auto st = must(c_.cached("SELECT position, recorded_at FROM events ORDER BY position DESC LIMIT 1", action));
        if (must(st->step(action))) {
          last_position = to_u64(st->column_int64(0));
          last_recorded_at = st->column_int64(1);
        }
      }
      // The batch's streams: their row (id 0: none yet) and version in the file.
      struct Stream {
        std::int64_t id = 0;
        std::uint64_t stored_version = 0;
        std::uint64_t version = 0;    // after the batch
        std::int64_t updated_at = 0;  // after the batch
      };
      std::unordered_map<std::string, Stream> streams;
      const auto stream = [&](const std::string& name) -> Stream& {
        auto [it, added] = streams.try_emplace(name);
        if (added) {
          auto st = must(c_.cached("SELECT id, version FROM streams WHERE name = ?1", action));
          st->bind_text(1, name);
          if (must(st->step(action))) {
            it->second.id = st->column_int64(0);
            it->second.stored_version = to_u64(st->column_int64(1));
          }
        }
        return it->second;
      };
      if (Error e = detail::check_import(events, last_position,
                                         [&](std::string_view name) { return stream(std::string(name)).stored_version; });
          e.code)
        throw StorageFailure{std::move(e)};

      for (const RecordedEvent& e : events) {
        Stream& s = streams.at(e.stream_id);
        s.version = e.version;
        s.updated_at = e.recorded_at.time_since_epoch().count();
      }
      for (auto& [name, s] : streams) {
        if (s.id == 0) {
          auto st = must(c_.cached(
              "INSERT INTO streams (name, category, version, updated_at) VALUES (?1, ?2, ?3, ?4)", action));
          st->bind_text(1, name);
          st->bind_text(2, stream_category(name));
          st->bind(3, to_db(s.version));
          st->bind(4, s.updated_at);
          must(st->run(action));
          s.id = sqlite3_last_insert_rowid(c_.handle());
        } else {
          auto st = must(c_.cached("UPDATE streams SET version = ?1, updated_at = ?2 WHERE id = ?3", action));
          st->bind(1, to_db(s.version));
          st->bind(2, s.updated_at);
          st->bind(3, s.id);
          must(st->run(action));
        }
      }

      std::unordered_map<std::string, std::int64_t> types;
      for (const RecordedEvent& e : events) {
        auto type = types.find(e.type);
        if (type == types.end()) type = types.emplace(e.type, type_id(e.type, action)).first;
        auto st = must(c_.cached(
            "INSERT INTO events (position, stream, version, event_id, type, schema_version, encoding, recorded_at, "
            "correlation_id, causation_id, metadata, payload) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)",
            action));
        st->bind(1, to_db(e.position));
        st->bind(2, streams.at(e.stream_id).id);
        st->bind(3, to_db(e.version));
        st->bind_blob(4, e.event_id.bytes_view());
        st->bind(5, type->second);
        st->bind(6, e.schema_version);
        st->bind(7, static_cast<std::int64_t>(e.encoding));
        st->bind(8, e.recorded_at.time_since_epoch().count());
        st->bind_text_or_null(9, e.metadata.correlation_id);
        st->bind_text_or_null(10, e.metadata.causation_id);
        if (auto metadata = detail::stored_user_metadata(e.metadata))
          st->bind_blob(11, *metadata);
        else
          st->bind_null(11);
        if (e.encoding == Encoding::json)
          st->bind_text(12, e.payload);  // TEXT, as appends store JSON payloads
        else
          st->bind_blob(12, e.payload);
        must(st->run(action));
      }

      // A log with gaps or recorded times that step back (from PostgreSQL): remember how far it reaches.
      if (!detail::continues_regular_log(events, last_position, from_us(last_recorded_at))) {
        auto st = must(c_.cached(
            "INSERT INTO evs_meta (key, value) VALUES (?1, ?2) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            action));
        st->bind_text(1, imported_through_key);
        st->bind_text(2, std::to_string(events.back().position));
        must(st->run(action));
      }
      must(tx.commit(action));
    });
  }

  Result<void> import_schemas(std::span<const RecordedSchema> schemas) override {
    constexpr std::string_view action = "import schema records into";
    if (read_only_) return refuse_read_only(action);
    return guarded([&] {
      auto tx = must(Transaction::begin(c_, Transaction::Mode::immediate, action));
      for (const RecordedSchema& r : schemas) {
        auto st = must(c_.cached(
            "INSERT INTO event_schemas (type, schema_version, fingerprint, members, recorded_at) "
            "VALUES (?1, ?2, ?3, ?4, ?5) ON CONFLICT (type, schema_version) DO NOTHING",
            action));
        st->bind_text(1, r.type);
        st->bind(2, r.schema_version);
        st->bind(3, std::bit_cast<std::int64_t>(r.fingerprint));
        st->bind_text(4, r.members);
        st->bind(5, r.recorded_at.time_since_epoch().count());
        must(st->run(action));
        if (sqlite3_changes(c_.handle()) != 1)
          throw StorageFailure{{errc::invalid_argument, std::string(action) + " " + c_.path() + ": " + r.type +
                                                            " v" + std::to_string(r.schema_version) +
                                                            " has a schema record there already; nothing was stored"}};
      }
      must(tx.commit(action));
    });
  }

  Result<void> import_snapshots(std::span<const Snapshot> snapshots) override {
    constexpr std::string_view action = "import snapshots into";
    if (read_only_) return refuse_read_only(action);
    return guarded([&] {
      auto tx = must(Transaction::begin(c_, Transaction::Mode::immediate, action));
      for (const Snapshot& s : snapshots) {
        auto version = must(c_.cached("SELECT version FROM streams WHERE name = ?1", action));
        version->bind_text(1, s.stream_id);
        const std::uint64_t stream_version = must(version->step(action)) ? to_u64(version->column_int64(0)) : 0;
        if (s.version > stream_version)
          throw StorageFailure{{errc::invalid_argument,
                                std::string(action) + " " + c_.path() + ": the snapshot of stream " + s.stream_id +
                                    " is at version " + std::to_string(s.version) + ", but the stream is at version " +
                                    std::to_string(stream_version) + "; nothing was stored"}};
        auto st = must(c_.cached(
            "INSERT OR REPLACE INTO snapshots (stream, version, state_type, fingerprint, encoding, payload, "
            "recorded_at, snapshot_version) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
            action));
        st->bind_text(1, s.stream_id);
        st->bind(2, to_db(s.version));
        st->bind_text(3, s.state_type);
        st->bind(4, std::bit_cast<std::int64_t>(s.fingerprint));
        st->bind(5, static_cast<std::int64_t>(s.encoding));
        st->bind_blob(6, s.payload);
        st->bind(7, s.recorded_at.time_since_epoch().count());
        st->bind(8, s.snapshot_version);
        must(st->run(action));
      }
      must(tx.commit(action));
    });
  }

  // Appends go to the last position + 1 (the writer reads it afresh after another connection's commit):
  // nothing to move.
  Result<void> finish_import() override {
    if (read_only_) return refuse_read_only("finish an import into");
    return {};
  }

 private:
  template <class F>
  static auto guarded(F&& work) -> Result<decltype(work())> {
    try {
      if constexpr (std::is_void_v<decltype(work())>) {
        work();
        return {};
      } else {
        return work();
      }
    } catch (const StorageFailure& f) {
      return f.error;
    }
  }

  std::int64_t scalar(std::string_view sql, std::string_view action) {
    auto st = must(c_.cached(sql, action));
    return must(st->step(action)) ? st->column_int64(0) : 0;
  }

  int schema_version(std::string_view action) { return static_cast<int>(scalar("PRAGMA user_version", action)); }

  std::int64_t type_id(const std::string& name, std::string_view action) {
    auto find = must(c_.cached("SELECT id FROM event_types WHERE name = ?1", action));
    find->bind_text(1, name);
    if (must(find->step(action))) return find->column_int64(0);
    auto insert = must(c_.cached("INSERT INTO event_types (name) VALUES (?1)", action));
    insert->bind_text(1, name);
    must(insert->run(action));
    return sqlite3_last_insert_rowid(c_.handle());
  }

  Error refuse_read_only(std::string_view action) const {
    return {errc::read_only, std::string(action) + " " + c_.path() + ": the store was opened read-only"};
  }

  Connection c_;
  bool read_only_;
};

}  // namespace

Result<std::unique_ptr<StoreTransfer>> open_transfer(const SqliteOptions& options) {
  auto connection = Connection::open(options.path, options.read_only ? Access::read : Access::write,
                                     options.busy_timeout, options.read_only && options.immutable);
  if (!connection) return connection.error();
  return std::unique_ptr<StoreTransfer>(std::make_unique<SqliteTransfer>(std::move(*connection), options.read_only));
}

}  // namespace evs::sqlite
