// evs_bench: the evs benchmark driver. bench/README.md explains every scenario and keeps the latest figures.
//
// Scenarios, in the order they run (select with --scenario NAME, repeatable):
//   append_1           one ~150-byte event per append, one appender, durability FULL
//   append_concurrent  64 appender threads, distinct streams, one event per append, FULL (group commit)
//   append_batch       100 events per append, NORMAL; binary and JSON encodings (one line each)
//   load_aggregate     load an aggregate from 10k events; with snapshots, a 1M-event stream vs a 1k-event one
//   read_all           scan + decode the whole log (1M events); binary and JSON encodings (one line each)
//   catchup_memory     an in-memory projection catches up over 1M events
//   codec_cereal       encode + decode 1M events through the cereal archives vs the codec's own path
//                      (binary and JSON; informational: why the codec keeps its direct path)
//   rebuild_sql        a SQL read model (one upsert per event) rebuilt from 1M events, with checkpoints
//   live_latency       append -> projection applied, in process, at 5k events/s offered
//   rebuild_memory     peak RSS above idle while rebuilding the SQL read model from 1M events (child process)
//   append_multi_process  4 processes appending back to back to shared streams: events/s, write waits
//
// Usage: evs_bench [--quick] [--scenario NAME]... [--reps N] [--dir DIR] [--list]
//   --quick     every scenario at 1/100 of its size, one repetition (the test suite runs this: it checks
//               that the benchmarks run, not their speed)
//   --reps N    repetitions per scenario (default 3); the median is reported
//   --dir DIR   where the temporary databases go (default /tmp; use a real disk, not tmpfs)
//   --keep      keep the temporary directory; --reuse DIR runs on the data sets a --keep run left there
//               (for profiling)
//
// Output: one JSON object per line on stdout, nothing else (progress goes to stderr). Every line carries the
// raw-SQLite baseline measured in the same run (hand-written SQLite C API code doing the same storage work:
// the same schema and indexes, the same pragmas, prepared statements, sensible batching) and the ratio.
#include <evs/core/aggregate.hpp>
#include <evs/core/cereal.hpp>
#include <evs/core/codec.hpp>
#include <evs/core/event.hpp>
#include <evs/eventstore/repository.hpp>
#include <evs/eventstore/sqlite_event_store.hpp>
#include <evs/projections/engine.hpp>
#include <evs/projections/projection.hpp>

#include <sqlite3.h>

#include <malloc.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <charconv>
#include <chrono>
#include <cmath>
#include <condition_variable>
#include <cstdarg>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <thread>
#include <unordered_map>
#include <vector>

namespace fs = std::filesystem;
using SteadyClock = std::chrono::steady_clock;

// ---- The benchmark domain -------------------------------------------------------------------------------

namespace bench {

// Both events encode to ~150 bytes in the binary encoding (account 11, cents ~3, seq ~3, memo 131).
struct Deposited {
  std::string account;
  std::int64_t cents = 0;
  std::int64_t seq = 0;
  std::string memo;
};
BOOST_DESCRIBE_STRUCT(Deposited, (), (account, cents, seq, memo))
EVS_EVENT(Deposited, "bench.deposited", 1)

struct Withdrawn {
  std::string account;
  std::int64_t cents = 0;
  std::int64_t seq = 0;
  std::string memo;
};
BOOST_DESCRIBE_STRUCT(Withdrawn, (), (account, cents, seq, memo))
EVS_EVENT(Withdrawn, "bench.withdrawn", 1)

constexpr std::string_view deposited_type = "bench.deposited";
constexpr std::string_view withdrawn_type = "bench.withdrawn";

const std::string memo(130, 'm');

struct AccountState {
  std::int64_t balance = 0;
  std::int64_t operations = 0;
  std::int64_t last_seq = 0;
};
BOOST_DESCRIBE_STRUCT(AccountState, (), (balance, operations, last_seq))

inline void apply_to(AccountState& s, bool deposit, std::int64_t cents, std::int64_t seq) {
  s.balance += deposit ? cents : -cents;
  ++s.operations;
  s.last_seq = seq;
}

class Account : public evs::Aggregate<Account, AccountState, Deposited, Withdrawn> {
 public:
  static constexpr std::string_view category = "acc";
  using Aggregate::Aggregate;
  void apply(const Deposited& e) { apply_to(state_, true, e.cents, e.seq); }
  void apply(const Withdrawn& e) { apply_to(state_, false, e.cents, e.seq); }
};

// The event number `seq` of account `account`: three deposits, then a withdrawal.
struct Movement {
  bool deposit;
  std::int64_t cents;
  std::int64_t seq;
};
inline Movement movement(std::int64_t seq) { return {seq % 4 != 3, 100 + seq % 9000, seq}; }

inline std::string account_name(std::size_t i) {
  char buf[16];
  std::snprintf(buf, sizeof buf, "acc-%06zu", i);
  return buf;
}

inline evs::EventData event_data(const std::string& account, std::int64_t seq, evs::Encoding encoding) {
  const Movement m = movement(seq);
  evs::EventData e;
  e.encoding = encoding;
  if (m.deposit) {
    e.type = std::string(deposited_type);
    evs::encode_to(e.payload, Deposited{account, m.cents, seq, memo}, encoding);
  } else {
    e.type = std::string(withdrawn_type);
    evs::encode_to(e.payload, Withdrawn{account, m.cents, seq, memo}, encoding);
  }
  return e;
}

// In-memory view: balance per account.
class Balances : public evs::MemoryProjection<Balances, Deposited, Withdrawn> {
 public:
  static constexpr std::string_view name = "balances";
  void handle(const Deposited& e, const evs::RecordedEvent&) { balance[e.account] += e.cents; }
  void handle(const Withdrawn& e, const evs::RecordedEvent&) { balance[e.account] -= e.cents; }
  std::unordered_map<std::string, std::int64_t> balance;
};

// SQL read model: one upsert per event.
constexpr const char* balances_ddl =
    "CREATE TABLE IF NOT EXISTS balances(account TEXT PRIMARY KEY, balance INTEGER NOT NULL, "
    "events INTEGER NOT NULL)";
constexpr const char* balances_upsert =
    "INSERT INTO balances(account, balance, events) VALUES(?1, ?2, 1) "
    "ON CONFLICT(account) DO UPDATE SET balance = balance + excluded.balance, events = events + 1";

class BalanceTable : public evs::SqlProjection<BalanceTable, Deposited, Withdrawn> {
 public:
  static constexpr std::string_view name = "balance_table";
  void setup(evs::SqlSession& db) { db.exec(balances_ddl); }
  void handle(const Deposited& e, const evs::RecordedEvent&, evs::SqlSession& db) {
    db.exec(balances_upsert, {e.account, e.cents});
  }
  void handle(const Withdrawn& e, const evs::RecordedEvent&, evs::SqlSession& db) {
    db.exec(balances_upsert, {e.account, -e.cents});
  }
};

// Records when each event (by seq) was applied.
class Probe : public evs::MemoryProjection<Probe, Deposited, Withdrawn> {
 public:
  static constexpr std::string_view name = "probe";
  explicit Probe(std::size_t n) : applied(n) {}
  void handle(const Deposited& e, const evs::RecordedEvent&) { mark(e.seq); }
  void handle(const Withdrawn& e, const evs::RecordedEvent&) { mark(e.seq); }
  void mark(std::int64_t seq) {
    if (seq >= 0 && static_cast<std::size_t>(seq) < applied.size()) applied[seq] = SteadyClock::now();
  }
  std::vector<SteadyClock::time_point> applied;
};

}  // namespace bench

// ---- Hand-written code for the raw-SQLite baselines (no evs) ----------------------------------------------

namespace raw {

[[noreturn]] static void fail(sqlite3* db, const std::string& what) {
  throw std::runtime_error(what + ": " + (db ? sqlite3_errmsg(db) : "sqlite error"));
}

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

static std::int64_t now_us() {
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
  Appender(const fs::path& path, bool full)
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

  // Appends `count` movements (seq first_seq...) to `stream`, encoded by hand, in one transaction.
  void append(const std::string& stream, std::int64_t first_seq, std::size_t count, bool json) {
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
inline std::unordered_map<std::int64_t, bool> type_kinds(Db& db) {
  std::unordered_map<std::int64_t, bool> kinds;
  auto st = db.prepare("SELECT id, name FROM event_types");
  while (st.step()) kinds[st.i64(0)] = st.text(1) == bench::deposited_type;
  return kinds;
}

// Stream names by id (loaded once), so scans need not join.
inline std::vector<std::string> stream_names(Db& db) {
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

// ---- Measurement helpers ----------------------------------------------------------------------------------

namespace {

struct Config {
  bool quick = false;
  bool reuse = false;  // --reuse DIR: use the data sets already in DIR (kept by --keep), keep everything
  int reps = 3;
  fs::path dir;
  std::string self;  // path of this executable (for child processes)
  std::size_t scale(std::size_t full, std::size_t minimum = 1) const {
    return quick ? std::max(full / 100, minimum) : full;
  }
};

double seconds_since(SteadyClock::time_point t0) {
  return std::chrono::duration<double>(SteadyClock::now() - t0).count();
}

double median(std::vector<double> v) {
  if (v.empty()) return NAN;
  std::sort(v.begin(), v.end());
  const std::size_t n = v.size();
  return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

double percentile(std::vector<double> v, double p) {
  if (v.empty()) return NAN;
  std::sort(v.begin(), v.end());
  const double rank = p / 100.0 * double(v.size() - 1);
  const std::size_t lo = std::size_t(rank);
  const std::size_t hi = std::min(lo + 1, v.size() - 1);
  return v[lo] + (v[hi] - v[lo]) * (rank - double(lo));
}

// "VmHWM" / "VmRSS" of this process, in KiB.
std::int64_t status_kib(const char* field) {
  std::ifstream in("/proc/self/status");
  std::string line;
  const std::size_t n = std::strlen(field);
  while (std::getline(in, line))
    if (line.compare(0, n, field) == 0 && line.size() > n && line[n] == ':') return std::atoll(line.c_str() + n + 1);
  return -1;
}

// Returns freed heap memory to the system and resets VmHWM to the current RSS (Linux >= 4.0), so each
// scenario reports its own peak.
void reset_peak_rss() {
  malloc_trim(0);
  std::ofstream out("/proc/self/clear_refs");
  out << "5";
}

// One repetition's measurement.
struct Sample {
  std::uint64_t events = 0;
  double seconds = 0;
  double p50_ms = NAN;
  double p99_ms = NAN;
  double rate() const { return seconds > 0 ? double(events) / seconds : NAN; }
};

struct Summary {
  std::uint64_t events = 0;
  double seconds = NAN, rate = NAN, p50_ms = NAN, p99_ms = NAN;
};

Summary summarize(const std::vector<Sample>& samples) {
  Summary s;
  std::vector<double> secs, rates, p50, p99;
  for (const Sample& x : samples) {
    secs.push_back(x.seconds);
    rates.push_back(x.rate());
    if (!std::isnan(x.p50_ms)) p50.push_back(x.p50_ms);
    if (!std::isnan(x.p99_ms)) p99.push_back(x.p99_ms);
  }
  if (!samples.empty()) s.events = samples.front().events;
  s.seconds = median(secs);
  s.rate = median(rates);
  s.p50_ms = median(p50);
  s.p99_ms = median(p99);
  return s;
}

void with_latencies(Sample& s, std::vector<double> ms) {
  s.p50_ms = percentile(ms, 50);
  s.p99_ms = percentile(ms, 99);
}

// A JSON object written key by key, in order.
class Json {
 public:
  Json& num(std::string_view key, double v) { return raw(key, number(v)); }
  // A figure as the output writes it: 4 significant digits, whole numbers from 1000 on, null if not finite.
  static std::string number(double v) {
    char buf[64];
    if (!std::isfinite(v)) return "null";
    if (std::fabs(v) >= 1000) std::snprintf(buf, sizeof buf, "%.0f", v);
    else std::snprintf(buf, sizeof buf, "%.4g", v);
    return buf;
  }
  Json& num(std::string_view key, std::int64_t v) { return raw(key, std::to_string(v)); }
  Json& num(std::string_view key, std::uint64_t v) { return raw(key, std::to_string(v)); }
  Json& num(std::string_view key, int v) { return raw(key, std::to_string(v)); }
  Json& str(std::string_view key, std::string_view v) {
    std::string q = "\"";
    for (char c : v) {
      if (c == '"' || c == '\\') q += '\\';
      q += c;
    }
    return raw(key, q + "\"");
  }
  Json& boolean(std::string_view key, bool v) { return raw(key, v ? "true" : "false"); }
  Json& obj(std::string_view key, const Json& o) { return raw(key, o.text()); }
  Json& raw(std::string_view key, std::string_view value) {
    if (!body_.empty()) body_ += ',';
    body_.append("\"").append(key).append("\":").append(value);
    return *this;
  }
  std::string text() const { return "{" + body_ + "}"; }

 private:
  std::string body_;
};

Json summary_json(const Summary& s, bool latency) {
  Json j;
  j.num("events", s.events).num("seconds", s.seconds).num("events_per_s", s.rate);
  if (latency) j.num("p50_ms", s.p50_ms).num("p99_ms", s.p99_ms);
  return j;
}

// Prints one result line. `ratio`: evs relative to the baseline (see each scenario for its direction).
void emit(const Config& cfg, std::string_view scenario, const Json& params, const Summary& evs,
          const Summary& base, bool latency, double ratio, std::string_view target, std::optional<bool> met,
          Json extra = {}) {
  Json j;
  j.str("scenario", scenario).obj("params", params).num("reps", cfg.quick ? 1 : cfg.reps);
  j.num("events", evs.events).num("seconds", evs.seconds).num("events_per_s", evs.rate);
  if (latency) j.num("p50_ms", evs.p50_ms).num("p99_ms", evs.p99_ms);
  j.num("peak_rss_mib", double(status_kib("VmHWM")) / 1024.0);
  j.obj("baseline", summary_json(base, latency));
  j.num("ratio", ratio);
  const std::string extra_text = extra.text();
  if (extra_text.size() > 2) j.raw("detail", extra_text);
  j.str("target", target);
  if (met && !cfg.quick) j.boolean("met", *met);
  else j.raw("met", "null");
  std::printf("%s\n", j.text().c_str());
  std::fflush(stdout);
}

[[gnu::format(printf, 1, 2)]] void progress(const char* fmt, ...) {
  std::fprintf(stderr, "evs_bench: ");
  va_list args;
  va_start(args, fmt);
  std::vfprintf(stderr, fmt, args);
  va_end(args);
  std::fprintf(stderr, "\n");
}

void remove_db(const fs::path& p) {
  std::error_code ec;
  for (const char* suffix : {"", "-wal", "-shm", "-journal"}) fs::remove(p.string() + suffix, ec);
}

// A store file with evs's schema and nothing in it (what the raw baselines write into).
void create_empty_store(const fs::path& p, evs::Durability d) {
  remove_db(p);
  evs::SqliteEventStore store({p, d});
}

evs::SqliteOptions store_options(const fs::path& p, evs::Durability d) {
  evs::SqliteOptions o;
  o.path = p;
  o.durability = d;
  return o;
}

// ---- Shared data sets (built once per run, lazily) --------------------------------------------------------

struct DataSets {
  const Config& cfg;
  std::optional<fs::path> log_binary, log_json, load;
  std::size_t log_events = 0;

  std::size_t streams() const { return cfg.scale(10'000, 100); }
  std::size_t per_stream() const { return 100; }

  // The log: streams() accounts x 100 events (1M events), interleaved 10 events per append, NORMAL.
  const fs::path& log(evs::Encoding encoding) {
    auto& slot = encoding == evs::Encoding::binary ? log_binary : log_json;
    if (slot) return *slot;
    const fs::path p = cfg.dir / (encoding == evs::Encoding::binary ? "log-binary.db" : "log-json.db");
    if (cfg.reuse && fs::exists(p)) {
      log_events = streams() * per_stream();
      return slot.emplace(p);
    }
    remove_db(p);
    const auto t0 = SteadyClock::now();
    {
      evs::SqliteEventStore store(store_options(p, evs::Durability::normal));
      std::mutex m;
      std::condition_variable cv;
      std::size_t inflight = 0;
      std::optional<evs::Error> error;
      constexpr std::size_t per_append = 10;
      std::vector<std::string> names;
      for (std::size_t s = 0; s < streams(); ++s) names.push_back(bench::account_name(s));
      for (std::size_t round = 0; round < per_stream() / per_append; ++round) {
        for (std::size_t s = 0; s < streams(); ++s) {
          std::vector<evs::EventData> batch;
          for (std::size_t i = 0; i < per_append; ++i)
            batch.push_back(bench::event_data(names[s], std::int64_t(round * per_append + i), encoding));
          {
            std::unique_lock lock(m);
            cv.wait(lock, [&] { return inflight < 4096; });
            ++inflight;
          }
          store.append_async(names[s], evs::ExpectedVersion::exact(round * per_append), batch,
                             [&](evs::Result<evs::AppendResult> r) {
                               std::lock_guard lock(m);
                               if (!r && !error) error = r.error();
                               --inflight;
                               cv.notify_all();
                             });
        }
      }
      std::unique_lock lock(m);
      cv.wait(lock, [&] { return inflight == 0; });
      if (error) throw evs::Exception(*error);
    }
    log_events = streams() * per_stream();
    progress("built %s (%zu events) in %.1f s", p.filename().c_str(), log_events, seconds_since(t0));
    slot = p;
    return *slot;
  }

  std::size_t load_small() const { return cfg.scale(10'000, 100); }
  std::size_t snap_small() const { return cfg.quick ? 100 : 1'000; }
  std::size_t snap_large() const { return cfg.scale(1'000'000, 10'000); }
  static constexpr std::size_t snapshot_lag = 50;  // events after the snapshot, in both snapshot streams

  // acc-l10k (10k events), acc-s1k (1k events) and acc-s1m (1M events), the last two with a snapshot
  // `snapshot_lag` events before their end.
  const fs::path& load_db() {
    if (load) return *load;
    const fs::path p = cfg.dir / "load.db";
    if (cfg.reuse && fs::exists(p)) return load.emplace(p);
    remove_db(p);
    const auto t0 = SteadyClock::now();
    {
      evs::SqliteEventStore store(store_options(p, evs::Durability::normal));
      evs::Repository<bench::Account> repo(store);
      const auto fill = [&](const std::string& id, std::size_t n, bool snapshot) {
        const std::string stream = bench::Account::stream_id_for(id);
        bench::AccountState state;
        std::size_t done = 0;
        while (done < n) {
          const std::size_t k = std::min<std::size_t>(1000, n - done);
          std::vector<evs::EventData> batch;
          for (std::size_t i = 0; i < k; ++i) {
            const auto seq = std::int64_t(done + i);
            batch.push_back(bench::event_data(stream, seq, evs::Encoding::binary));
            const bench::Movement m = bench::movement(seq);
            if (snapshot && done + i < n - snapshot_lag) bench::apply_to(state, m.deposit, m.cents, m.seq);
          }
          store.append(stream, evs::ExpectedVersion::exact(done), batch).value();
          done += k;
        }
        if (snapshot) {
          bench::Account a(id);
          a.restore(state, n - snapshot_lag);
          repo.save_snapshot(a).value();
        }
      };
      fill("l10k", load_small(), false);
      fill("s1k", snap_small(), true);
      fill("s1m", snap_large(), true);
    }
    progress("built load.db in %.1f s", seconds_since(t0));
    load = p;
    return *load;
  }
};

// ---- append_1 ---------------------------------------------------------------------------------------------

// One appender, one event per append, synchronous=FULL, round-robin over 10 streams with exact versions.
Sample evs_append_one(const fs::path& p, std::size_t appends) {
  evs::SqliteEventStore store(store_options(p, evs::Durability::full));
  std::vector<std::string> names;
  for (int s = 0; s < 10; ++s) names.push_back(bench::account_name(std::size_t(s)));
  std::vector<double> lat;
  lat.reserve(appends);
  const auto t0 = SteadyClock::now();
  for (std::size_t i = 0; i < appends; ++i) {
    const auto a0 = SteadyClock::now();
    const std::string& stream = names[i % names.size()];
    const std::uint64_t version = i / names.size();
    evs::EventData e = bench::event_data(stream, std::int64_t(version), evs::Encoding::binary);
    store.append(stream, evs::ExpectedVersion::exact(version), std::span(&e, 1)).value();
    lat.push_back(std::chrono::duration<double, std::milli>(SteadyClock::now() - a0).count());
  }
  Sample s{appends, seconds_since(t0)};
  with_latencies(s, std::move(lat));
  return s;
}

Sample raw_append_one(const fs::path& p, std::size_t appends) {
  raw::Appender app(p, true);
  std::vector<std::string> names;
  for (int s = 0; s < 10; ++s) names.push_back(bench::account_name(std::size_t(s)));
  std::vector<double> lat;
  lat.reserve(appends);
  const auto t0 = SteadyClock::now();
  for (std::size_t i = 0; i < appends; ++i) {
    const auto a0 = SteadyClock::now();
    app.append(names[i % names.size()], std::int64_t(i / names.size()), 1, false);
    lat.push_back(std::chrono::duration<double, std::milli>(SteadyClock::now() - a0).count());
  }
  Sample s{appends, seconds_since(t0)};
  with_latencies(s, std::move(lat));
  return s;
}

void scenario_append_1(const Config& cfg, DataSets&) {
  const std::size_t appends = cfg.scale(300, 5);
  const fs::path p = cfg.dir / "append1.db";
  std::vector<Sample> evs_s, raw_s;
  for (int r = 0; r < cfg.reps; ++r) {
    remove_db(p);
    evs_s.push_back(evs_append_one(p, appends));
    create_empty_store(p, evs::Durability::full);
    raw_s.push_back(raw_append_one(p, appends));
    remove_db(p);
  }
  const Summary e = summarize(evs_s), b = summarize(raw_s);
  const double ratio = e.rate / b.rate;
  emit(cfg, "append_1",
       Json().num("events_per_append", 1).num("appenders", 1).str("durability", "full").num("payload_bytes",
                                                                                            std::int64_t(149)),
       e, b, true, ratio, ">= 0.7x raw one-row-per-transaction inserts (FULL)", ratio >= 0.7);
}

// ---- append_concurrent ------------------------------------------------------------------------------------

Sample evs_append_concurrent(const fs::path& p, std::size_t threads, std::size_t per_thread) {
  evs::SqliteEventStore store(store_options(p, evs::Durability::full));
  std::vector<std::vector<double>> lat(threads);
  std::atomic<bool> go{false};
  std::atomic<std::size_t> ready{0};
  std::vector<std::thread> pool;
  std::atomic<int> failures{0};
  for (std::size_t t = 0; t < threads; ++t) {
    pool.emplace_back([&, t] {
      const std::string stream = bench::account_name(t);
      lat[t].reserve(per_thread);
      ++ready;
      while (!go.load()) std::this_thread::yield();
      for (std::size_t i = 0; i < per_thread; ++i) {
        const auto a0 = SteadyClock::now();
        evs::EventData e = bench::event_data(stream, std::int64_t(i), evs::Encoding::binary);
        if (!store.append(stream, evs::ExpectedVersion::exact(i), std::span(&e, 1))) ++failures;
        lat[t].push_back(std::chrono::duration<double, std::milli>(SteadyClock::now() - a0).count());
      }
    });
  }
  while (ready.load() < threads) std::this_thread::yield();
  const auto t0 = SteadyClock::now();
  go = true;
  for (auto& th : pool) th.join();
  Sample s{threads * per_thread, seconds_since(t0)};
  if (failures) throw std::runtime_error("append_concurrent: appends failed");
  std::vector<double> all;
  for (auto& v : lat) all.insert(all.end(), v.begin(), v.end());
  with_latencies(s, std::move(all));
  return s;
}

// The same with 64 asynchronous appenders (coroutine style): each issues its next append from the
// completion callback of the previous one, so no thread waits per append.
Sample evs_append_concurrent_async(const fs::path& p, std::size_t appenders, std::size_t per_appender) {
  evs::SqliteEventStore store(store_options(p, evs::Durability::full));
  struct Appender {
    std::string stream;
    std::size_t next = 0;
    SteadyClock::time_point started;
  };
  std::vector<Appender> state(appenders);
  for (std::size_t t = 0; t < appenders; ++t) state[t].stream = bench::account_name(t);
  std::mutex m;
  std::condition_variable cv;
  std::size_t running = appenders;
  int failures = 0;
  std::vector<double> lat;
  std::function<void(std::size_t)> issue = [&](std::size_t t) {
    Appender& a = state[t];
    evs::EventData e = bench::event_data(a.stream, std::int64_t(a.next), evs::Encoding::binary);
    a.started = SteadyClock::now();
    store.append_async(a.stream, evs::ExpectedVersion::exact(a.next), std::span(&e, 1),
                       [&, t](evs::Result<evs::AppendResult> r) {
                         Appender& b = state[t];
                         {
                           std::lock_guard lock(m);
                           lat.push_back(std::chrono::duration<double, std::milli>(SteadyClock::now() - b.started).count());
                           if (!r) ++failures;
                         }
                         if (++b.next < per_appender) {
                           issue(t);
                         } else {
                           std::lock_guard lock(m);
                           if (--running == 0) cv.notify_all();
                         }
                       });
  };
  const auto t0 = SteadyClock::now();
  for (std::size_t t = 0; t < appenders; ++t) issue(t);
  {
    std::unique_lock lock(m);
    cv.wait(lock, [&] { return running == 0; });
  }
  Sample s{appenders * per_appender, seconds_since(t0)};
  if (failures) throw std::runtime_error("append_concurrent: appends failed");
  with_latencies(s, std::move(lat));
  return s;
}

void scenario_append_concurrent(const Config& cfg, DataSets&) {
  const std::size_t threads = 64;
  const std::size_t per_thread = cfg.quick ? 1 : 25;
  const std::size_t raw_appends = cfg.scale(300, 5);
  const fs::path p = cfg.dir / "concurrent.db";
  for (const bool threaded : {false, true}) {
    std::vector<Sample> evs_s, raw_s;
    for (int r = 0; r < cfg.reps; ++r) {
      remove_db(p);
      evs_s.push_back(threaded ? evs_append_concurrent(p, threads, per_thread)
                               : evs_append_concurrent_async(p, threads, per_thread));
      create_empty_store(p, evs::Durability::full);
      raw_s.push_back(raw_append_one(p, raw_appends));
      remove_db(p);
    }
    const Summary e = summarize(evs_s), b = summarize(raw_s);
    const double ratio = e.rate / b.rate;
    emit(cfg, "append_concurrent",
         Json().num("events_per_append", 1).num("appenders", int(threads))
             .str("appender", threaded ? "thread calling append()" : "coroutine style: append_async() chained from its callback")
             .num("appends_per_appender", std::uint64_t(per_thread)).str("durability", "full")
             .str("baseline", "raw one-row-per-transaction, one appender, FULL"),
         e, b, true, ratio, ">= 10x raw one-row-per-transaction FULL rate (group commit)", ratio >= 10);
  }
}

// ---- append_batch -----------------------------------------------------------------------------------------

Sample evs_append_batch(const fs::path& p, std::size_t appends, std::size_t per_append, evs::Encoding enc) {
  evs::SqliteEventStore store(store_options(p, evs::Durability::normal));
  constexpr std::size_t streams = 100;
  std::vector<std::string> names;
  for (std::size_t s = 0; s < streams; ++s) names.push_back(bench::account_name(s));
  std::vector<double> lat;
  const auto t0 = SteadyClock::now();
  for (std::size_t i = 0; i < appends; ++i) {
    const auto a0 = SteadyClock::now();
    const std::string& stream = names[i % streams];
    const std::uint64_t version = (i / streams) * per_append;
    std::vector<evs::EventData> batch;
    batch.reserve(per_append);
    for (std::size_t k = 0; k < per_append; ++k)
      batch.push_back(bench::event_data(stream, std::int64_t(version + k), enc));
    store.append(stream, evs::ExpectedVersion::exact(version), batch).value();
    lat.push_back(std::chrono::duration<double, std::milli>(SteadyClock::now() - a0).count());
  }
  Sample s{appends * per_append, seconds_since(t0)};
  with_latencies(s, std::move(lat));
  return s;
}

Sample raw_append_batch(const fs::path& p, std::size_t appends, std::size_t per_append, bool json) {
  raw::Appender app(p, false);
  constexpr std::size_t streams = 100;
  std::vector<std::string> names;
  for (std::size_t s = 0; s < streams; ++s) names.push_back(bench::account_name(s));
  std::vector<double> lat;
  const auto t0 = SteadyClock::now();
  for (std::size_t i = 0; i < appends; ++i) {
    const auto a0 = SteadyClock::now();
    app.append(names[i % streams], std::int64_t((i / streams) * per_append), per_append, json);
    lat.push_back(std::chrono::duration<double, std::milli>(SteadyClock::now() - a0).count());
  }
  Sample s{appends * per_append, seconds_since(t0)};
  with_latencies(s, std::move(lat));
  return s;
}

void scenario_append_batch(const Config& cfg, DataSets&) {
  const std::size_t per_append = 100;
  const std::size_t appends = cfg.scale(1'000, 10);
  const fs::path p = cfg.dir / "batch.db";
  for (const evs::Encoding enc : {evs::Encoding::binary, evs::Encoding::json}) {
    const bool json = enc == evs::Encoding::json;
    std::vector<Sample> evs_s, raw_s;
    for (int r = 0; r < cfg.reps; ++r) {
      remove_db(p);
      evs_s.push_back(evs_append_batch(p, appends, per_append, enc));
      create_empty_store(p, evs::Durability::normal);
      raw_s.push_back(raw_append_batch(p, appends, per_append, json));
      remove_db(p);
    }
    const Summary e = summarize(evs_s), b = summarize(raw_s);
    const double ratio = e.rate / b.rate;
    emit(cfg, "append_batch",
         Json().num("events_per_append", int(per_append)).str("durability", "normal").str("encoding",
                                                                                         json ? "json" : "binary"),
         e, b, true, ratio,
         json ? "informational (JSON encoding; the target applies to binary)" : ">= 0.6x raw batched inserts (NORMAL)",
         json ? std::nullopt : std::optional<bool>(ratio >= 0.6));
  }
}

// ---- load_aggregate ---------------------------------------------------------------------------------------

// Loads `id` repeatedly for at least `min_seconds` (and at least 3 times); the median load time.
template <class F>
double median_time(F&& load, double min_seconds) {
  std::vector<double> t;
  const auto start = SteadyClock::now();
  while (t.size() < 3 || seconds_since(start) < min_seconds) {
    const auto t0 = SteadyClock::now();
    load();
    t.push_back(seconds_since(t0));
  }
  return median(t);
}

// The hand-written load: optional snapshot row + the stream's events after it, decoded and applied.
bench::AccountState raw_load(raw::Db& db, raw::Stmt& find_stream, raw::Stmt& find_snapshot, raw::Stmt& events,
                             const std::unordered_map<std::int64_t, bool>& kinds, const std::string& stream,
                             bool use_snapshot) {
  bench::AccountState state;
  std::int64_t from = 1;
  if (use_snapshot) {
    find_snapshot.bind_text(1, stream);
    if (find_snapshot.step()) {
      const std::string_view bytes = find_snapshot.blob(1);
      const char* p = bytes.data();
      const char* end = p + bytes.size();
      if (raw::get_zigzag(p, end, state.balance) && raw::get_zigzag(p, end, state.operations) &&
          raw::get_zigzag(p, end, state.last_seq) && p == end)
        from = find_snapshot.i64(0) + 1;
      else
        state = {};
    }
    find_snapshot.reset();
  }
  find_stream.bind_text(1, stream);
  if (!find_stream.step()) throw std::runtime_error("raw load: no stream " + stream);
  const std::int64_t id = find_stream.i64(0);
  find_stream.reset();
  db.exec("BEGIN");
  events.bind(1, id);
  events.bind(2, from);
  raw::MovementView m;
  while (events.step()) {
    if (!raw::decode_movement(events.blob(1), m)) throw std::runtime_error("raw load: bad payload");
    bench::apply_to(state, kinds.at(events.i64(0)), m.cents, m.seq);
  }
  events.reset();
  db.exec("COMMIT");
  return state;
}

void scenario_load_aggregate(const Config& cfg, DataSets& data) {
  const fs::path p = data.load_db();
  evs::SqliteEventStore store(store_options(p, evs::Durability::normal));
  evs::Repository<bench::Account> repo(store);
  raw::Db db(p, true);
  auto find_stream = db.prepare("SELECT id FROM streams WHERE name = ?1");
  auto find_snapshot = db.prepare("SELECT version, payload FROM snapshots WHERE stream = ?1");
  auto events = db.prepare("SELECT type, payload FROM events WHERE stream = ?1 AND version >= ?2 ORDER BY version");
  const auto kinds = raw::type_kinds(db);
  const double min_seconds = cfg.quick ? 0.01 : 0.3;

  const auto evs_load = [&](const char* id, std::size_t expect_ops) {
    auto a = repo.load(id).value();
    if (std::size_t(a.state().operations) != expect_ops) throw std::runtime_error("load_aggregate: wrong state");
  };
  const auto raw_load_of = [&](const char* id, bool snap, std::size_t expect_ops) {
    auto s = raw_load(db, find_stream, find_snapshot, events, kinds, bench::Account::stream_id_for(id), snap);
    if (std::size_t(s.operations) != expect_ops) throw std::runtime_error("load_aggregate: raw wrong state");
  };

  // 1. No snapshot: 10k events.
  {
    const std::size_t n = data.load_small();
    std::vector<Sample> evs_s, raw_s;
    for (int r = 0; r < cfg.reps; ++r) {
      evs_s.push_back({n, median_time([&] { evs_load("l10k", n); }, min_seconds)});
      raw_s.push_back({n, median_time([&] { raw_load_of("l10k", false, n); }, min_seconds)});
    }
    const Summary e = summarize(evs_s), b = summarize(raw_s);
    emit(cfg, "load_aggregate", Json().num("stream_events", std::uint64_t(n)).boolean("snapshot", false), e, b,
         false, e.rate / b.rate, ">= 1,000,000 events/s", e.rate >= 1e6);
  }
  // 2. Snapshots: a 1M-event stream vs a 1k-event one, each 50 events past its snapshot.
  {
    const std::size_t small = data.snap_small(), large = data.snap_large();
    // "events" here: the events replayed after the snapshot (what a load decodes and applies).
    constexpr std::uint64_t replayed = DataSets::snapshot_lag;
    std::vector<Sample> evs_large, evs_small, raw_large;
    for (int r = 0; r < cfg.reps; ++r) {
      evs_small.push_back({replayed, median_time([&] { evs_load("s1k", small); }, min_seconds)});
      evs_large.push_back({replayed, median_time([&] { evs_load("s1m", large); }, min_seconds)});
      raw_large.push_back({replayed, median_time([&] { raw_load_of("s1m", true, large); }, min_seconds)});
    }
    const Summary e = summarize(evs_large), s = summarize(evs_small), b = summarize(raw_large);
    const double cost_ratio = e.seconds / s.seconds;
    emit(cfg, "load_aggregate",
         Json().num("stream_events", std::uint64_t(large)).boolean("snapshot", true)
             .num("events_after_snapshot", std::uint64_t(DataSets::snapshot_lag))
             .num("small_stream_events", std::uint64_t(small)),
         e, b, false, e.rate / b.rate, "load(1M-event stream) < 2x load(1k-event stream), with snapshots",
         cost_ratio < 2,
         Json().num("small_stream_seconds", s.seconds).num("large_over_small", cost_ratio));
  }
}

// ---- read_all ---------------------------------------------------------------------------------------------

// Reads the whole log in batches and decodes every payload into its typed event.
Sample evs_read_all(evs::SqliteEventStore& store, std::size_t batch_size) {
  std::int64_t checksum = 0;
  std::uint64_t n = 0, from = 1;
  const auto t0 = SteadyClock::now();
  bench::Deposited d;
  bench::Withdrawn w;
  for (;;) {
    auto batch = store.read_all(from, batch_size).value();
    if (batch.events.empty()) break;
    for (const evs::RecordedEvent& e : batch.events) {
      if (e.type == bench::deposited_type) {
        evs::decode_into(e.payload, e.encoding, d).value();
        checksum += d.cents;
      } else {
        evs::decode_into(e.payload, e.encoding, w).value();
        checksum -= w.cents;
      }
    }
    n += batch.events.size();
    from = batch.next_position;
  }
  const double s = seconds_since(t0);
  if (checksum == 42) std::fprintf(stderr, "!");
  return {n, s};
}

// The raw scan: every column of every row, copied out (stream and type names from in-memory tables).
Sample raw_read_all(const fs::path& p) {
  raw::Db db(p, true);
  const auto names = raw::stream_names(db);
  const auto kinds = raw::type_kinds(db);
  auto st = db.prepare(
      "SELECT position, stream, version, event_id, type, schema_version, encoding, recorded_at, correlation_id, "
      "causation_id, metadata, payload FROM events ORDER BY position");
  struct Row {
    std::int64_t position, version, schema_version, encoding, recorded_at;
    const std::string* stream;
    bool deposit;
    char id[16];
    std::string correlation, causation, metadata, payload;
  } row{};
  std::uint64_t n = 0;
  std::size_t bytes = 0;
  const auto t0 = SteadyClock::now();
  db.exec("BEGIN");
  while (st.step()) {
    row.position = st.i64(0);
    row.stream = &names[std::size_t(st.i64(1))];
    row.version = st.i64(2);
    const std::string_view id = st.blob(3);
    std::memcpy(row.id, id.data(), std::min<std::size_t>(16, id.size()));
    row.deposit = kinds.at(st.i64(4));
    row.schema_version = st.i64(5);
    row.encoding = st.i64(6);
    row.recorded_at = st.i64(7);
    row.correlation.assign(st.text(8));
    row.causation.assign(st.text(9));
    row.metadata.assign(st.blob(10));
    row.payload.assign(row.encoding == 1 ? st.text(11) : st.blob(11));
    bytes += row.payload.size() + row.stream->size();
    ++n;
  }
  st.reset();
  db.exec("COMMIT");
  const double s = seconds_since(t0);
  if (bytes == 42) std::fprintf(stderr, "!");
  return {n, s};
}

void scenario_read_all(const Config& cfg, DataSets& data) {
  const std::size_t batch_size = 1000;
  for (const evs::Encoding enc : {evs::Encoding::binary, evs::Encoding::json}) {
    const bool json = enc == evs::Encoding::json;
    const fs::path p = data.log(enc);
    evs::SqliteEventStore store(store_options(p, evs::Durability::normal));
    raw_read_all(p);  // warm the page cache for both
    std::vector<Sample> evs_s, raw_s;
    for (int r = 0; r < cfg.reps; ++r) {
      evs_s.push_back(evs_read_all(store, batch_size));
      raw_s.push_back(raw_read_all(p));
    }
    const Summary e = summarize(evs_s), b = summarize(raw_s);
    const double ratio = e.rate / b.rate;
    emit(cfg, "read_all",
         Json().num("log_events", std::uint64_t(e.events)).num("batch", int(batch_size)).str("encoding",
                                                                                          json ? "json" : "binary"),
         e, b, false, ratio,
         json ? "informational (JSON encoding; the target applies to binary)" : ">= 0.25x the raw SQLite scan",
         json ? std::nullopt : std::optional<bool>(ratio >= 0.25));
  }
}

// ---- catchup_memory ---------------------------------------------------------------------------------------

Sample evs_catchup(evs::SqliteEventStore& store, std::uint64_t head) {
  bench::Balances view;
  evs::ProjectionEngine engine(store);
  engine.add(view);
  const auto t0 = SteadyClock::now();
  engine.start();
  engine.wait_for(bench::Balances::name, head, std::chrono::minutes(10)).value();
  const double s = seconds_since(t0);
  engine.stop();
  if (view.balance.empty()) throw std::runtime_error("catchup_memory: nothing applied");
  return {head, s};
}

Sample raw_catchup(const fs::path& p) {
  raw::Db db(p, true);
  const auto kinds = raw::type_kinds(db);
  auto st = db.prepare("SELECT type, payload FROM events ORDER BY position");
  struct Hash {
    using is_transparent = void;
    std::size_t operator()(std::string_view s) const noexcept { return std::hash<std::string_view>{}(s); }
  };
  std::unordered_map<std::string, std::int64_t, Hash, std::equal_to<>> balance;
  std::uint64_t n = 0;
  raw::MovementView m;
  const auto t0 = SteadyClock::now();
  db.exec("BEGIN");
  while (st.step()) {
    const bool deposit = kinds.at(st.i64(0));
    if (!raw::decode_movement(st.blob(1), m)) throw std::runtime_error("raw catchup: bad payload");
    auto it = balance.find(m.account);
    if (it == balance.end()) it = balance.emplace(std::string(m.account), 0).first;
    it->second += deposit ? m.cents : -m.cents;
    ++n;
  }
  st.reset();
  db.exec("COMMIT");
  return {n, seconds_since(t0)};
}

void scenario_catchup_memory(const Config& cfg, DataSets& data) {
  const fs::path p = data.log(evs::Encoding::binary);
  evs::SqliteEventStore store(store_options(p, evs::Durability::normal));
  const std::uint64_t head = store.last_position().value();
  raw_catchup(p);  // warm
  std::vector<Sample> evs_s, raw_s;
  for (int r = 0; r < cfg.reps; ++r) {
    evs_s.push_back(evs_catchup(store, head));
    raw_s.push_back(raw_catchup(p));
  }
  const Summary e = summarize(evs_s), b = summarize(raw_s);
  emit(cfg, "catchup_memory",
       Json().num("log_events", head).num("batch", 500).str("baseline", "raw scan + hand decode + apply"), e, b,
       false, e.rate / b.rate, ">= 1,500,000 events/s", e.rate >= 1.5e6);
}

// ---- codec_cereal -----------------------------------------------------------------------------------------

// Encodes then decodes `n` events, through the codec (evs::encode_to / decode_into) or through the cereal
// archives (evs::encode_cereal / decode_cereal); both write the same bytes.
Sample codec_round_trips(std::size_t n, evs::Encoding enc, bool cereal) {
  bench::Deposited e{"account-042", 1234, 0, bench::memo}, back;
  std::string bytes;
  std::int64_t check = 0;
  const auto t0 = SteadyClock::now();
  for (std::size_t i = 0; i < n; ++i) {
    e.seq = static_cast<std::int64_t>(i);
    if (cereal) {
      bytes = evs::encode_cereal(e, enc);
      if (!evs::decode_cereal(bytes, enc, back)) throw std::runtime_error("codec_cereal: decode failed");
    } else {
      bytes.clear();
      evs::encode_to(bytes, e, enc);
      if (!evs::decode_into(bytes, enc, back)) throw std::runtime_error("codec_cereal: decode failed");
    }
    check += back.seq;
  }
  const double s = seconds_since(t0);
  if (check != static_cast<std::int64_t>(n) * static_cast<std::int64_t>(n - 1) / 2)
    throw std::runtime_error("codec_cereal: wrong values");
  return {n, s};
}

void scenario_codec_cereal(const Config& cfg, DataSets&) {
  const std::size_t n = cfg.quick ? 10'000 : 1'000'000;
  for (const evs::Encoding enc : {evs::Encoding::binary, evs::Encoding::json}) {
    std::vector<Sample> cereal_s, codec_s;
    for (int r = 0; r < cfg.reps; ++r) {
      codec_s.push_back(codec_round_trips(n, enc, false));
      cereal_s.push_back(codec_round_trips(n, enc, true));
    }
    const Summary c = summarize(cereal_s), b = summarize(codec_s);
    emit(cfg, "codec_cereal",
         Json().str("encoding", enc == evs::Encoding::binary ? "binary" : "json").str("baseline", "the codec's direct path"),
         c, b, false, c.rate / b.rate, "informational", std::nullopt);
  }
}

// ---- rebuild_sql ------------------------------------------------------------------------------------------

Sample evs_rebuild(evs::SqliteEventStore& store, const fs::path& rm, std::uint64_t head) {
  remove_db(rm);
  bench::BalanceTable table;
  evs::ProjectionEngine engine(store);
  evs::ProjectionOptions o;
  o.database = rm;
  engine.add(table, o);
  const auto t0 = SteadyClock::now();
  engine.start();
  engine.wait_for(bench::BalanceTable::name, head, std::chrono::minutes(30)).value();
  const double s = seconds_since(t0);
  engine.stop();
  return {head, s};
}

// Scan + batched upserts: the same upsert per event, 500 events per transaction, each transaction also
// storing a checkpoint row; read model file in WAL mode with synchronous=NORMAL (as evs's projection db).
Sample raw_rebuild(const fs::path& log, const fs::path& rm) {
  remove_db(rm);
  raw::Db src(log, true);
  const auto kinds = raw::type_kinds(src);
  raw::Db dst(rm);
  dst.exec("PRAGMA journal_mode = WAL");
  dst.exec("PRAGMA synchronous = NORMAL");
  dst.exec(bench::balances_ddl);
  dst.exec(
      "CREATE TABLE IF NOT EXISTS checkpoints(projection TEXT PRIMARY KEY, position INTEGER NOT NULL, "
      "updated_at INTEGER NOT NULL) WITHOUT ROWID");
  auto scan = src.prepare("SELECT position, type, payload FROM events ORDER BY position");
  auto upsert = dst.prepare(bench::balances_upsert);
  auto checkpoint = dst.prepare(
      "INSERT INTO checkpoints(projection, position, updated_at) VALUES('balance_table', ?1, ?2) "
      "ON CONFLICT(projection) DO UPDATE SET position = excluded.position, updated_at = excluded.updated_at");
  auto begin = dst.prepare("BEGIN IMMEDIATE");
  auto commit = dst.prepare("COMMIT");
  constexpr std::size_t batch = 500;
  std::uint64_t n = 0;
  std::int64_t position = 0;
  raw::MovementView m;
  const auto t0 = SteadyClock::now();
  src.exec("BEGIN");
  begin.run();
  while (scan.step()) {
    position = scan.i64(0);
    const bool deposit = kinds.at(scan.i64(1));
    if (!raw::decode_movement(scan.blob(2), m)) throw std::runtime_error("raw rebuild: bad payload");
    upsert.bind_text(1, m.account);
    upsert.bind(2, deposit ? m.cents : -m.cents);
    upsert.run();
    if (++n % batch == 0) {
      checkpoint.bind(1, position);
      checkpoint.bind(2, raw::now_us());
      checkpoint.run();
      commit.run();
      begin.run();
    }
  }
  checkpoint.bind(1, position);
  checkpoint.bind(2, raw::now_us());
  checkpoint.run();
  commit.run();
  scan.reset();
  src.exec("COMMIT");
  return {n, seconds_since(t0)};
}

void scenario_rebuild_sql(const Config& cfg, DataSets& data) {
  const fs::path p = data.log(evs::Encoding::binary);
  const fs::path rm = cfg.dir / "readmodel.db";
  evs::SqliteEventStore store(store_options(p, evs::Durability::normal));
  const std::uint64_t head = store.last_position().value();
  std::vector<Sample> evs_s, raw_s;
  for (int r = 0; r < cfg.reps; ++r) {
    evs_s.push_back(evs_rebuild(store, rm, head));
    raw_s.push_back(raw_rebuild(p, rm));
  }
  remove_db(rm);
  const Summary e = summarize(evs_s), b = summarize(raw_s);
  const double ratio = e.rate / b.rate;
  emit(cfg, "rebuild_sql",
       Json().num("log_events", head).num("batch", 500).str("read_model_durability", "normal")
           .str("baseline", "raw scan + batched upserts (500 per transaction, with a checkpoint row)"),
       e, b, false, ratio, ">= 0.5x raw scan + batched upserts", ratio >= 0.5);
}

// ---- live_latency -----------------------------------------------------------------------------------------

// Offers `n` single-event appends at `rate` per second (open loop) and measures append start -> applied.
Sample evs_live(const fs::path& p, std::size_t n, double rate) {
  remove_db(p);
  evs::SqliteEventStore store(store_options(p, evs::Durability::normal));
  bench::Probe probe(n);
  evs::ProjectionEngine engine(store);
  engine.add(probe);
  engine.start();
  std::this_thread::sleep_for(std::chrono::milliseconds(50));  // let it reach the (empty) head
  std::vector<SteadyClock::time_point> sent(n);
  const std::string stream = bench::account_name(0);
  const auto period = std::chrono::duration_cast<SteadyClock::duration>(std::chrono::duration<double>(1.0 / rate));
  const auto t0 = SteadyClock::now();
  std::uint64_t last = 0;
  for (std::size_t i = 0; i < n; ++i) {
    std::this_thread::sleep_until(t0 + period * i);
    evs::EventData e = bench::event_data(stream, std::int64_t(i), evs::Encoding::binary);
    sent[i] = SteadyClock::now();
    last = store.append(stream, evs::ExpectedVersion::any(), std::span(&e, 1)).value().last_position;
  }
  engine.wait_for(bench::Probe::name, last, std::chrono::seconds(30)).value();
  const double s = seconds_since(t0);
  engine.stop();
  std::vector<double> lat;
  for (std::size_t i = 0; i < n; ++i)
    lat.push_back(std::chrono::duration<double, std::milli>(probe.applied[i] - sent[i]).count());
  Sample out{n, s};
  with_latencies(out, std::move(lat));
  return out;
}

// The same by hand: the appender commits a row and signals a condition variable; a reader thread with its
// own connection wakes, selects the new rows, decodes them and marks them applied.
Sample raw_live(const fs::path& p, std::size_t n, double rate) {
  create_empty_store(p, evs::Durability::normal);
  std::vector<SteadyClock::time_point> sent(n), applied(n);
  std::mutex m;
  std::condition_variable cv;
  std::int64_t committed = 0;
  bool done = false;
  raw::Appender app(p, false);  // first, as a writer would be: the reader then shares its -shm
  std::thread reader([&] {
    raw::Db db(p, true);
    auto st = db.prepare("SELECT payload FROM events WHERE position > ?1 ORDER BY position");
    std::int64_t seen = 0;
    raw::MovementView mv;
    for (;;) {
      std::int64_t upto;
      {
        std::unique_lock lock(m);
        cv.wait(lock, [&] { return committed > seen || done; });
        if (committed <= seen) return;
        upto = committed;
      }
      st.bind(1, seen);
      while (st.step()) {
        if (!raw::decode_movement(st.blob(0), mv)) throw std::runtime_error("raw live: bad payload");
        if (mv.seq >= 0 && std::size_t(mv.seq) < n) applied[std::size_t(mv.seq)] = SteadyClock::now();
        ++seen;
      }
      st.reset();
      (void)upto;
    }
  });
  const std::string stream = bench::account_name(0);
  const auto period = std::chrono::duration_cast<SteadyClock::duration>(std::chrono::duration<double>(1.0 / rate));
  const auto t0 = SteadyClock::now();
  for (std::size_t i = 0; i < n; ++i) {
    std::this_thread::sleep_until(t0 + period * i);
    sent[i] = SteadyClock::now();
    app.append(stream, std::int64_t(i), 1, false);
    {
      std::lock_guard lock(m);
      committed = app.position();
    }
    cv.notify_one();
  }
  {
    std::lock_guard lock(m);
    done = true;
  }
  cv.notify_one();
  reader.join();
  const double s = seconds_since(t0);
  std::vector<double> lat;
  for (std::size_t i = 0; i < n; ++i)
    lat.push_back(std::chrono::duration<double, std::milli>(applied[i] - sent[i]).count());
  Sample out{n, s};
  with_latencies(out, std::move(lat));
  return out;
}

void scenario_live_latency(const Config& cfg, DataSets&) {
  const double rate = 5000;
  const std::size_t n = cfg.quick ? 250 : 10'000;  // 2 s at 5k/s
  const fs::path p = cfg.dir / "live.db";
  std::vector<Sample> evs_s, raw_s;
  for (int r = 0; r < cfg.reps; ++r) {
    evs_s.push_back(evs_live(p, n, rate));
    remove_db(p);
    raw_s.push_back(raw_live(p, n, rate));
    remove_db(p);
  }
  const Summary e = summarize(evs_s), b = summarize(raw_s);
  emit(cfg, "live_latency",
       Json().num("offered_events_per_s", rate).str("durability", "normal").num("events_per_append", 1),
       e, b, true, e.p99_ms / b.p99_ms, "p99 <= 2 ms (ratio: evs p99 / raw p99)", e.p99_ms <= 2.0);
}

// ---- rebuild_memory ---------------------------------------------------------------------------------------

// Runs in a child process (a fresh address space): prints {"idle_kib","peak_kib","seconds","events"}.
int child_rebuild_memory(const std::string& mode, const fs::path& log, const fs::path& rm) {
  remove_db(rm);
  std::int64_t idle = 0;
  Sample s;
  if (mode == "evs") {
    evs::SqliteEventStore store(store_options(log, evs::Durability::normal));
    const std::uint64_t head = store.last_position().value();
    bench::BalanceTable table;
    evs::ProjectionEngine engine(store);
    evs::ProjectionOptions o;
    o.database = rm;
    engine.add(table, o);
    idle = status_kib("VmRSS");
    reset_peak_rss();
    const auto t0 = SteadyClock::now();
    engine.start();
    engine.wait_for(bench::BalanceTable::name, head, std::chrono::minutes(30)).value();
    s = {head, seconds_since(t0)};
    engine.stop();
  } else {
    idle = status_kib("VmRSS");
    reset_peak_rss();
    s = raw_rebuild(log, rm);
  }
  const std::int64_t peak = status_kib("VmHWM");
  remove_db(rm);
  std::printf("%s\n", Json().num("idle_kib", idle).num("peak_kib", peak).num("seconds", s.seconds)
                          .num("events", s.events).text().c_str());
  return 0;
}

struct ChildResult {
  double idle_mib = NAN, peak_mib = NAN, seconds = NAN;
  std::uint64_t events = 0;
};

ChildResult run_child(const Config& cfg, const std::string& mode, const fs::path& log, const fs::path& rm) {
  const std::string cmd = "'" + cfg.self + "' --child-rebuild-memory " + mode + " '" + log.string() + "' '" +
                          rm.string() + "'";
  FILE* f = popen(cmd.c_str(), "r");
  if (!f) throw std::runtime_error("cannot run " + cmd);
  std::string out;
  char buf[512];
  while (std::fgets(buf, sizeof buf, f)) out += buf;
  if (pclose(f) != 0) throw std::runtime_error("child failed: " + cmd);
  const auto field = [&](const char* key) {
    const std::string k = std::string("\"") + key + "\":";
    const auto at = out.find(k);
    if (at == std::string::npos) throw std::runtime_error("child output lacks " + k + ": " + out);
    return std::atof(out.c_str() + at + k.size());
  };
  ChildResult r;
  r.idle_mib = field("idle_kib") / 1024.0;
  r.peak_mib = field("peak_kib") / 1024.0;
  r.seconds = field("seconds");
  r.events = std::uint64_t(field("events"));
  return r;
}

void scenario_rebuild_memory(const Config& cfg, DataSets& data) {
  const fs::path p = data.log(evs::Encoding::binary);
  const fs::path rm = cfg.dir / "readmodel-child.db";
  std::vector<double> evs_growth, raw_growth, evs_idle, evs_peak, raw_idle, raw_peak;
  std::vector<Sample> evs_s, raw_s;
  const int reps = cfg.reps;
  for (int r = 0; r < reps; ++r) {
    const ChildResult e = run_child(cfg, "evs", p, rm);
    const ChildResult b = run_child(cfg, "raw", p, rm);
    evs_growth.push_back(e.peak_mib - e.idle_mib);
    raw_growth.push_back(b.peak_mib - b.idle_mib);
    evs_idle.push_back(e.idle_mib);
    evs_peak.push_back(e.peak_mib);
    raw_idle.push_back(b.idle_mib);
    raw_peak.push_back(b.peak_mib);
    evs_s.push_back({e.events, e.seconds});
    raw_s.push_back({b.events, b.seconds});
  }
  const Summary e = summarize(evs_s), b = summarize(raw_s);
  const double growth = median(evs_growth), base_growth = median(raw_growth);
  Json params;
  params.num("log_events", e.events).str("rebuild", "rebuild_sql's read model, in a child process");
  Json detail;
  detail.num("idle_rss_mib", median(evs_idle)).num("child_peak_rss_mib", median(evs_peak))
      .num("rss_growth_mib", growth).num("baseline_idle_rss_mib", median(raw_idle))
      .num("baseline_peak_rss_mib", median(raw_peak)).num("baseline_rss_growth_mib", base_growth);
  emit(cfg, "rebuild_memory", params, e, b, false, growth / base_growth,
       "<= 64 MiB peak RSS above idle (ratio: evs growth / raw growth)", growth <= 64.0, detail);
}

// ---- append_multi_process ---------------------------------------------------------------------------------

// Several processes append back to back to shared streams of one file (the evs import situation). Each
// child process measures the write wait of every append: from the call until it is acknowledged (evs), or
// from BEGIN IMMEDIATE until COMMIT returns (raw, whose only way to wait for another process is SQLite's
// busy handler, with the same 5 s busy timeout as evs's default).
constexpr int multi_streams = 8;

// Prints {"appends","failures","seconds","p50_ms","p99_ms","max_ms"} for one process.
void print_waits(std::size_t appends, std::size_t failures, double seconds, const std::vector<double>& ms) {
  std::printf("%s\n", Json().num("appends", std::uint64_t(appends)).num("failures", std::uint64_t(failures))
                          .num("seconds", seconds).num("p50_ms", percentile(ms, 50)).num("p99_ms", percentile(ms, 99))
                          .num("max_ms", ms.empty() ? NAN : *std::max_element(ms.begin(), ms.end()))
                          .text().c_str());
}

// Runs in a child process: waits until `start_ns` on the (system-wide) steady clock, then appends.
int child_append_multi(const std::string& mode, const fs::path& p, std::size_t appends, std::int64_t start_ns) {
  std::vector<double> waits;
  waits.reserve(appends);
  std::size_t failures = 0;
  const auto start = SteadyClock::time_point(std::chrono::nanoseconds(start_ns));
  if (mode == "evs") {
    evs::SqliteEventStore store(store_options(p, evs::Durability::normal));
    std::this_thread::sleep_until(start);
    for (std::size_t i = 0; i < appends; ++i) {
      const std::string stream = bench::account_name(i % multi_streams);
      evs::EventData e = bench::event_data(stream, std::int64_t(i), evs::Encoding::binary);
      const auto a0 = SteadyClock::now();
      if (!store.append(stream, evs::ExpectedVersion::any(), std::span(&e, 1))) ++failures;
      waits.push_back(std::chrono::duration<double, std::milli>(SteadyClock::now() - a0).count());
    }
  } else {
    raw::Db db(p);
    sqlite3_busy_timeout(db.handle(), 5000);
    db.exec("PRAGMA synchronous = NORMAL");
    auto begin = db.prepare("BEGIN IMMEDIATE");
    auto commit = db.prepare("COMMIT");
    auto head = db.prepare("SELECT coalesce(max(position), 0), coalesce(max(recorded_at), 0) FROM events");
    auto find_stream = db.prepare("SELECT id, version FROM streams WHERE name = ?1");
    auto insert_stream = db.prepare("INSERT INTO streams (name, category, version, updated_at) VALUES (?1, ?2, 1, ?3)");
    auto update_stream = db.prepare("UPDATE streams SET version = ?1, updated_at = ?2 WHERE id = ?3");
    auto type = db.prepare("SELECT id FROM event_types WHERE name = ?1");
    auto insert_event = db.prepare(
        "INSERT INTO events (position, stream, version, event_id, type, schema_version, encoding, recorded_at, "
        "correlation_id, causation_id, metadata, payload) VALUES (?1, ?2, ?3, ?4, ?5, 1, 0, ?6, NULL, NULL, NULL, ?7)");
    raw::IdGen ids;
    ids.state ^= std::uint64_t(getpid()) * 0x9e3779b97f4a7c15ULL;
    std::string payload;
    std::this_thread::sleep_until(start);
    for (std::size_t i = 0; i < appends; ++i) {
      const std::string stream = bench::account_name(i % multi_streams);
      const bench::Movement m = bench::movement(std::int64_t(i));
      raw::encode_movement(payload, stream, m.cents, m.seq);
      const auto a0 = SteadyClock::now();
      try {
        begin.run();
        head.step();
        const std::int64_t position = head.i64(0) + 1, at = std::max(raw::now_us(), head.i64(1));
        head.reset();
        type.bind_text(1, m.deposit ? bench::deposited_type : bench::withdrawn_type);
        if (!type.step()) throw std::runtime_error("event type missing");
        const std::int64_t type_id = type.i64(0);
        type.reset();
        find_stream.bind_text(1, stream);
        std::int64_t id = 0, version = 1;
        if (find_stream.step()) {
          id = find_stream.i64(0);
          version = find_stream.i64(1) + 1;
          find_stream.reset();
          update_stream.bind(1, version);
          update_stream.bind(2, at);
          update_stream.bind(3, id);
          update_stream.run();
        } else {
          find_stream.reset();
          insert_stream.bind_text(1, stream);
          insert_stream.bind_text(2, "acc");
          insert_stream.bind(3, at);
          insert_stream.run();
          id = sqlite3_last_insert_rowid(db.handle());
        }
        char event_id[16];
        ids.fill(event_id);
        insert_event.bind(1, position);
        insert_event.bind(2, id);
        insert_event.bind(3, version);
        insert_event.bind_blob(4, {event_id, 16});
        insert_event.bind(5, type_id);
        insert_event.bind(6, at);
        insert_event.bind_blob(7, payload);
        insert_event.run();
        commit.run();
      } catch (const std::exception&) {  // SQLITE_BUSY after the busy timeout
        ++failures;
        for (raw::Stmt* st : {&begin, &commit, &head, &find_stream, &insert_stream, &update_stream, &type, &insert_event})
          st->reset();
        if (sqlite3_get_autocommit(db.handle()) == 0) db.exec("ROLLBACK");
      }
      waits.push_back(std::chrono::duration<double, std::milli>(SteadyClock::now() - a0).count());
    }
  }
  print_waits(appends, failures, seconds_since(start), waits);
  return 0;
}

struct ProcessWaits {
  double seconds = NAN, p50_ms = NAN, p99_ms = NAN, max_ms = NAN;
  std::uint64_t failures = 0;
};

// A number from a child's one-line JSON output.
double json_field(const std::string& out, const char* key) {
  const std::string k = std::string("\"") + key + "\":";
  const auto at = out.find(k);
  if (at == std::string::npos) throw std::runtime_error("child output lacks " + k + ": " + out);
  return std::atof(out.c_str() + at + k.size());
}

// Starts `processes` children appending at once and collects what each measured.
std::vector<ProcessWaits> run_multi(const Config& cfg, const std::string& mode, const fs::path& p,
                                    std::size_t processes, std::size_t appends) {
  const auto start = SteadyClock::now() + std::chrono::milliseconds(300 + 50 * processes);
  const std::string cmd = "'" + cfg.self + "' --child-append-multi " + mode + " '" + p.string() + "' " +
                          std::to_string(appends) + " " +
                          std::to_string(std::chrono::duration_cast<std::chrono::nanoseconds>(start.time_since_epoch()).count());
  std::vector<FILE*> children;
  for (std::size_t i = 0; i < processes; ++i) {
    FILE* f = popen(cmd.c_str(), "r");
    if (!f) throw std::runtime_error("cannot run " + cmd);
    children.push_back(f);
  }
  std::vector<ProcessWaits> result;
  std::string failed;
  for (FILE* f : children) {
    std::string out;
    char buf[512];
    while (std::fgets(buf, sizeof buf, f)) out += buf;
    if (pclose(f) != 0) failed = "child failed: " + cmd;
    if (!failed.empty()) continue;
    result.push_back({json_field(out, "seconds"), json_field(out, "p50_ms"), json_field(out, "p99_ms"),
                      json_field(out, "max_ms"), std::uint64_t(json_field(out, "failures"))});
  }
  if (!failed.empty()) throw std::runtime_error(failed);
  return result;
}

// "[a,b,...]" of one figure per process.
std::string per_process(const std::vector<ProcessWaits>& w, double ProcessWaits::*field) {
  std::string out = "[";
  for (std::size_t i = 0; i < w.size(); ++i) out += (i ? "," : "") + Json::number(w[i].*field);
  return out + "]";
}

void scenario_append_multi_process(const Config& cfg, DataSets&) {
  const std::size_t processes = 4;
  const std::size_t appends = cfg.scale(2'000, 20);
  const fs::path p = cfg.dir / "multi.db";
  std::vector<Sample> evs_s, raw_s;
  std::vector<ProcessWaits> evs_last, raw_last;
  double evs_max = 0, raw_max = 0;  // the longest single wait of any process in any repetition
  std::uint64_t evs_failures = 0, raw_failures = 0;
  const auto sample = [&](const std::vector<ProcessWaits>& w, double& longest, std::uint64_t& failures) {
    Sample s{processes * appends, 0};
    std::vector<double> p50, p99;
    for (const ProcessWaits& x : w) {
      s.seconds = std::max(s.seconds, x.seconds);
      p50.push_back(x.p50_ms);
      p99.push_back(x.p99_ms);
      longest = std::max(longest, x.max_ms);
      failures += x.failures;
    }
    s.p50_ms = median(p50);
    s.p99_ms = *std::max_element(p99.begin(), p99.end());
    return s;
  };
  for (int r = 0; r < cfg.reps; ++r) {
    create_empty_store(p, evs::Durability::normal);
    evs_last = run_multi(cfg, "evs", p, processes, appends);
    evs_s.push_back(sample(evs_last, evs_max, evs_failures));
    create_empty_store(p, evs::Durability::normal);
    {
      raw::Db db(p);  // the type rows evs would create on its first append
      db.exec("INSERT OR IGNORE INTO event_types (name) VALUES ('bench.deposited'), ('bench.withdrawn')");
    }
    raw_last = run_multi(cfg, "raw", p, processes, appends);
    raw_s.push_back(sample(raw_last, raw_max, raw_failures));
    remove_db(p);
    std::error_code ec;
    fs::remove(p.string() + "-lock", ec);
  }
  const Summary e = summarize(evs_s), b = summarize(raw_s);
  Json detail;
  detail.raw("p50_ms_per_process", per_process(evs_last, &ProcessWaits::p50_ms))
      .raw("p99_ms_per_process", per_process(evs_last, &ProcessWaits::p99_ms))
      .raw("max_ms_per_process", per_process(evs_last, &ProcessWaits::max_ms))
      .num("longest_wait_ms", evs_max)
      .num("failed_appends", evs_failures)
      .raw("baseline_p50_ms_per_process", per_process(raw_last, &ProcessWaits::p50_ms))
      .raw("baseline_p99_ms_per_process", per_process(raw_last, &ProcessWaits::p99_ms))
      .raw("baseline_max_ms_per_process", per_process(raw_last, &ProcessWaits::max_ms))
      .num("baseline_longest_wait_ms", raw_max)
      .num("baseline_failed_appends", raw_failures);
  // p50_ms: the median process's median wait; p99_ms: the worst process's p99 (the starved one).
  emit(cfg, "append_multi_process",
       Json().num("processes", int(processes)).num("appends_per_process", std::uint64_t(appends))
           .num("events_per_append", 1).num("streams", multi_streams).str("durability", "normal")
           .str("wait", "per append, call to acknowledgement; p99_ms is the worst process's p99"),
       e, b, true, e.p99_ms / b.p99_ms,
       "no failed append, no wait >= 1 s (ratio: evs worst process p99 / raw worst process p99)",
       evs_failures == 0 && evs_max < 1000, detail);
}

// ---- main -------------------------------------------------------------------------------------------------

struct Scenario {
  const char* name;
  void (*run)(const Config&, DataSets&);
  void (*prepare)(DataSets&);  // builds the data sets it reads (before its peak RSS is measured), or null
};

void needs_load(DataSets& d) { d.load_db(); }
void needs_log(DataSets& d) { d.log(evs::Encoding::binary); }
void needs_logs(DataSets& d) {
  d.log(evs::Encoding::binary);
  d.log(evs::Encoding::json);
}

constexpr Scenario scenarios[] = {
    {"append_1", scenario_append_1, nullptr},
    {"append_concurrent", scenario_append_concurrent, nullptr},
    {"append_batch", scenario_append_batch, nullptr},
    {"load_aggregate", scenario_load_aggregate, needs_load},
    {"read_all", scenario_read_all, needs_logs},
    {"catchup_memory", scenario_catchup_memory, needs_log},
    {"codec_cereal", scenario_codec_cereal, nullptr},
    {"rebuild_sql", scenario_rebuild_sql, needs_log},
    {"live_latency", scenario_live_latency, nullptr},
    {"rebuild_memory", scenario_rebuild_memory, needs_log},
    {"append_multi_process", scenario_append_multi_process, nullptr},
};

int usage(const char* why) {
  std::fprintf(stderr, "evs_bench: %s\nusage: evs_bench [--quick] [--scenario NAME]... [--reps N] [--dir DIR] [--list]\n",
               why);
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  Config cfg;
  cfg.dir = fs::temp_directory_path();
  std::error_code ec;
  cfg.self = fs::canonical("/proc/self/exe", ec).string();
  if (cfg.self.empty()) cfg.self = argv[0];
  std::vector<std::string> chosen;
  bool keep = false;
  for (int i = 1; i < argc; ++i) {
    const std::string_view a = argv[i];
    const auto value = [&]() -> std::string {
      if (i + 1 >= argc) throw std::invalid_argument(std::string(a) + " needs a value");
      return argv[++i];
    };
    try {
      if (a == "--quick") cfg.quick = true;
      else if (a == "--scenario") chosen.push_back(value());
      else if (a == "--reps") cfg.reps = std::max(1, std::stoi(value()));
      else if (a == "--dir") cfg.dir = value();
      else if (a == "--keep") keep = true;  // keep the temporary databases (for profiling)
      else if (a == "--reuse") {
        cfg.dir = value();
        cfg.reuse = true;
      }
      else if (a == "--list") {
        for (const Scenario& s : scenarios) std::printf("%s\n", s.name);
        return 0;
      } else if (a == "--child-rebuild-memory" && i + 3 < argc) {
        return child_rebuild_memory(argv[i + 1], argv[i + 2], argv[i + 3]);
      } else if (a == "--child-append-multi" && i + 4 < argc) {
        return child_append_multi(argv[i + 1], argv[i + 2], std::stoul(argv[i + 3]), std::stoll(argv[i + 4]));
      } else {
        return usage(("unknown argument " + std::string(a)).c_str());
      }
    } catch (const std::exception& e) {
      return usage(e.what());
    }
  }
  if (cfg.quick) cfg.reps = 1;
  for (const std::string& name : chosen)
    if (std::none_of(std::begin(scenarios), std::end(scenarios), [&](const Scenario& s) { return name == s.name; }))
      return usage(("unknown scenario " + name + " (see --list)").c_str());

  std::string tmpl = (cfg.dir / "evs-bench-XXXXXX").string();
  if (cfg.reuse) {
    tmpl = cfg.dir.string();
    keep = true;
  } else if (!mkdtemp(tmpl.data())) {
    std::fprintf(stderr, "evs_bench: cannot create a directory under %s\n", cfg.dir.c_str());
    return 1;
  }
  cfg.dir = tmpl;
  int status = 0;
  {
    DataSets data{cfg};
    for (const Scenario& s : scenarios) {
      if (!chosen.empty() && std::find(chosen.begin(), chosen.end(), s.name) == chosen.end()) continue;
      progress("%s ...", s.name);
      const auto t0 = SteadyClock::now();
      try {
        if (s.prepare) s.prepare(data);
        reset_peak_rss();
        s.run(cfg, data);
      } catch (const std::exception& e) {
        std::fprintf(stderr, "evs_bench: %s failed: %s\n", s.name, e.what());
        status = 1;
      }
      progress("%s done in %.1f s", s.name, seconds_since(t0));
    }
  }
  if (keep) progress("kept %s", cfg.dir.c_str());
  else fs::remove_all(cfg.dir, ec);
  return status;
}
