// Hand-written SQLite C API code for the raw-SQLite baselines (no evs): statements, a connection, the
// benchmark events' binary and JSON encodings by hand, and an appender writing evs's schema.
#pragma once

#include "domain.hpp"

#include <sqlite3.h>

#include <charconv>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <stdexcept>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

namespace fs = std::filesystem;

namespace raw {

// Throws std::runtime_error with `what` and SQLite's last error message on `db`.
[[noreturn]] void fail(sqlite3* db, const std::string& what);

class Stmt {
 public:
  Stmt() = default;
  Stmt(sqlite3* db, const char* sql) : db_(db) {
    if (sqlite3_prepare_v3(db, sql, -1, SQLITE_PREPARE_PERSISTENT, &s_, nullptr) != SQLITE_OK)
      fail(db, std::string("prepare ") + sql);
  }
  ~Stmt() { sqlite3_finalize(s_); }
  Stmt(Stmt&& o) noexcept : db_(o.db_), s_(std::exchange(o.s_, nullptr)) {}
  Stmt& operator=(Stmt&& o) noexcept {
    std::swap(db_, o.db_);
    std::swap(s_, o.s_);
    return *this;
  }
  sqlite3_stmt* operator*() const { return s_; }
  void bind(int i, std::int64_t v) { sqlite3_bind_int64(s_, i, v); }
  void bind_text(int i, std::string_view t) { sqlite3_bind_text(s_, i, t.data(), int(t.size()), SQLITE_STATIC); }
  void bind_blob(int i, std::string_view b) { sqlite3_bind_blob(s_, i, b.data(), int(b.size()), SQLITE_STATIC); }
  void bind_null(int i) { sqlite3_bind_null(s_, i); }
  bool step() {
    const int rc = sqlite3_step(s_);
    if (rc == SQLITE_ROW) return true;
    if (rc != SQLITE_DONE) fail(db_, "step");
    return false;
  }
  void run() {
    while (step()) {
    }
    sqlite3_reset(s_);
  }
  void reset() { sqlite3_reset(s_); }
  std::int64_t i64(int c) const { return sqlite3_column_int64(s_, c); }
  std::string_view text(int c) const {
    const auto* p = reinterpret_cast<const char*>(sqlite3_column_text(s_, c));
    return p ? std::string_view(p, std::size_t(sqlite3_column_bytes(s_, c))) : std::string_view();
  }
  std::string_view blob(int c) const {
    const auto* p = static_cast<const char*>(sqlite3_column_blob(s_, c));
    return p ? std::string_view(p, std::size_t(sqlite3_column_bytes(s_, c))) : std::string_view();
  }

 private:
  sqlite3* db_ = nullptr;
  sqlite3_stmt* s_ = nullptr;
};

class Db {
 public:
  explicit Db(const fs::path& path, bool read_only = false) {
    const int flags = read_only ? SQLITE_OPEN_READONLY : (SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE);
    if (sqlite3_open_v2(path.c_str(), &db_, flags | SQLITE_OPEN_NOMUTEX, nullptr) != SQLITE_OK)
      fail(db_, "open " + path.string());
    sqlite3_busy_timeout(db_, 10000);
  }
  ~Db() { sqlite3_close_v2(db_); }
  Db(const Db&) = delete;
  Db& operator=(const Db&) = delete;
  void exec(const char* sql) {
    if (sqlite3_exec(db_, sql, nullptr, nullptr, nullptr) != SQLITE_OK) fail(db_, sql);
  }
  Stmt prepare(const char* sql) { return Stmt(db_, sql); }
  sqlite3* handle() const { return db_; }

 private:
  sqlite3* db_ = nullptr;
};

// The evs binary encoding of bench::Deposited / Withdrawn, by hand: varint-prefixed strings, zigzag varints.
inline void put_varint(std::string& out, std::uint64_t v) {
  while (v >= 0x80) {
    out.push_back(char(v | 0x80));
    v >>= 7;
  }
  out.push_back(char(v));
}
inline void put_zigzag(std::string& out, std::int64_t v) {
  put_varint(out, (std::uint64_t(v) << 1) ^ std::uint64_t(v >> 63));
}
inline void put_string(std::string& out, std::string_view s) {
  put_varint(out, s.size());
  out.append(s);
}
inline bool get_varint(const char*& p, const char* end, std::uint64_t& v) {
  v = 0;
  for (int shift = 0; shift < 64 && p < end; shift += 7) {
    const auto b = std::uint8_t(*p++);
    v |= std::uint64_t(b & 0x7f) << shift;
    if (!(b & 0x80)) return true;
  }
  return false;
}
inline bool get_zigzag(const char*& p, const char* end, std::int64_t& v) {
  std::uint64_t u;
  if (!get_varint(p, end, u)) return false;
  v = std::int64_t((u >> 1) ^ (~(u & 1) + 1));
  return true;
}
inline bool get_string(const char*& p, const char* end, std::string_view& s) {
  std::uint64_t n;
  if (!get_varint(p, end, n) || n > std::uint64_t(end - p)) return false;
  s = {p, std::size_t(n)};
  p += n;
  return true;
}

struct MovementView {
  std::string_view account;
  std::int64_t cents = 0;
  std::int64_t seq = 0;
  std::string_view memo;
};

inline void encode_movement(std::string& out, std::string_view account, std::int64_t cents, std::int64_t seq) {
  out.clear();
  put_string(out, account);
  put_zigzag(out, cents);
  put_zigzag(out, seq);
  put_string(out, bench::memo);
}
inline void encode_movement_json(std::string& out, std::string_view account, std::int64_t cents, std::int64_t seq) {
  char num[24];
  out.clear();
  out.append("{\"account\":\"").append(account).append("\",\"cents\":");
  out.append(num, std::to_chars(num, num + sizeof num, cents).ptr);
  out.append(",\"seq\":");
  out.append(num, std::to_chars(num, num + sizeof num, seq).ptr);
  out.append(",\"memo\":\"").append(bench::memo).append("\"}");
}
inline bool decode_movement(std::string_view bytes, MovementView& m) {
  const char* p = bytes.data();
  const char* end = p + bytes.size();
  return get_string(p, end, m.account) && get_zigzag(p, end, m.cents) && get_zigzag(p, end, m.seq) &&
         get_string(p, end, m.memo) && p == end;
}

inline std::int64_t now_us() {
  return std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

// Time-ordered 16-byte event ids (48-bit milliseconds, then random bits from a fast PRNG), so the unique
// index on event_id grows at its right edge, as it does with evs's UUIDv7 ids.
struct IdGen {
  std::uint64_t state = 0x9e3779b97f4a7c15ULL ^ std::uint64_t(now_us());
  std::uint64_t next() {
    std::uint64_t z = (state += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
  }
  void fill(char* out) {
    const std::uint64_t ms = std::uint64_t(now_us() / 1000);
    for (int i = 0; i < 6; ++i) out[i] = char(ms >> (40 - 8 * i));
    const std::uint64_t a = next(), b = next();
    std::memcpy(out + 6, &a, 8);
    std::memcpy(out + 14, &b, 2);
  }
};

// Appends to a store file with evs's schema (created by evs, so the tables and indexes are identical), with
// the best plain C API code: prepared statements, in-memory stream versions and type ids, one transaction
// per append.
class Appender {
 public:
  Appender(const fs::path& path, bool full);

  // Appends `count` movements (seq first_seq...) to `stream`, encoded by hand, in one transaction.
  void append(const std::string& stream, std::int64_t first_seq, std::size_t count, bool json);
  std::int64_t position() const { return position_; }

 private:
  struct StreamRow {
    std::int64_t id = 0;
    std::int64_t version = 0;
  };
  Db db_;
  Stmt begin_, commit_, insert_stream_, update_stream_, insert_event_;
  std::unordered_map<std::string, StreamRow> streams_;
  std::int64_t deposited_id_ = 0, withdrawn_id_ = 0, position_ = 0;
  std::string payload_;
  IdGen ids_;
};

// Maps the store's type ids to "is a deposit" (loaded once, as a hand-written reader would cache it).
std::unordered_map<std::int64_t, bool> type_kinds(Db& db);

// Stream names by id (loaded once), so scans need not join.
std::vector<std::string> stream_names(Db& db);

}  // namespace raw
