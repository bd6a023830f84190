#include "raw.hpp"

namespace raw {

void fail(sqlite3* db, const std::string& what) {
  throw std::runtime_error(what + ": " + (db ? sqlite3_errmsg(db) : "sqlite error"));
}

Appender::Appender(const fs::path& path, bool full)
    : db_(path),
      begin_(db_.prepare("BEGIN IMMEDIATE")),
      commit_(db_.prepare("COMMIT")),
      insert_stream_(db_.prepare("INSERT INTO streams (name, category, version, updated_at) VALUES (?1, ?2, ?3, ?4)")),
      update_stream_(db_.prepare("UPDATE streams SET version = ?1, updated_at = ?2 WHERE id = ?3")),
      insert_event_(db_.prepare(
          "INSERT INTO events (position, stream, version, event_id, type, schema_version, encoding, recorded_at, "
          "correlation_id, causation_id, metadata, payload) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, NULL, NULL, "
          "NULL, ?9)")) {
  db_.exec("PRAGMA journal_mode = WAL");
  db_.exec(full ? "PRAGMA synchronous = FULL" : "PRAGMA synchronous = NORMAL");
  db_.exec("INSERT OR IGNORE INTO event_types (name) VALUES ('bench.deposited'), ('bench.withdrawn')");
  auto types = db_.prepare("SELECT id, name FROM event_types");
  while (types.step()) (types.text(1) == bench::deposited_type ? deposited_id_ : withdrawn_id_) = types.i64(0);
  auto head = db_.prepare("SELECT coalesce(max(position), 0) FROM events");
  head.step();
  position_ = head.i64(0);
}

void Appender::append(const std::string& stream, std::int64_t first_seq, std::size_t count, bool json) {
  const std::int64_t at = now_us();
  begin_.run();
  auto [it, fresh] = streams_.try_emplace(stream, StreamRow{});
  StreamRow& s = it->second;
  const std::int64_t version = s.version + std::int64_t(count);
  if (fresh) {
    insert_stream_.bind_text(1, stream);
    insert_stream_.bind_text(2, std::string_view(stream).substr(0, stream.find('-')));
    insert_stream_.bind(3, version);
    insert_stream_.bind(4, at);
    insert_stream_.run();
    s.id = sqlite3_last_insert_rowid(db_.handle());
  } else {
    update_stream_.bind(1, version);
    update_stream_.bind(2, at);
    update_stream_.bind(3, s.id);
    update_stream_.run();
  }
  char id[16];
  for (std::size_t i = 0; i < count; ++i) {
    const bench::Movement m = bench::movement(first_seq + std::int64_t(i));
    if (json) encode_movement_json(payload_, stream, m.cents, m.seq);
    else encode_movement(payload_, stream, m.cents, m.seq);
    ids_.fill(id);
    insert_event_.bind(1, ++position_);
    insert_event_.bind(2, s.id);
    insert_event_.bind(3, s.version + std::int64_t(i) + 1);
    insert_event_.bind_blob(4, {id, 16});
    insert_event_.bind(5, m.deposit ? deposited_id_ : withdrawn_id_);
    insert_event_.bind(6, 1);
    insert_event_.bind(7, json ? 1 : 0);
    insert_event_.bind(8, at);
    if (json) insert_event_.bind_text(9, payload_);
    else insert_event_.bind_blob(9, payload_);
    insert_event_.run();
  }
  commit_.run();
  s.version = version;
}

std::unordered_map<std::int64_t, bool> type_kinds(Db& db) {
  std::unordered_map<std::int64_t, bool> kinds;
  auto st = db.prepare("SELECT id, name FROM event_types");
  while (st.step()) kinds[st.i64(0)] = st.text(1) == bench::deposited_type;
  return kinds;
}

std::vector<std::string> stream_names(Db& db) {
  std::vector<std::string> names;
  auto st = db.prepare("SELECT id, name FROM streams");
  while (st.step()) {
    const auto id = std::size_t(st.i64(0));
    if (names.size() <= id) names.resize(id + 1);
    names[id] = std::string(st.text(1));
  }
  return names;
}

}  // namespace raw
