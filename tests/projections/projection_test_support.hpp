// Helpers for the projection tests: raw SQLite access to read-model files (outside the engine), filling a
// store fast, a compact copy of the log, and the check "the read model equals a clean replay of the log up
// to the stored checkpoint".
#pragma once

#include "../support/result_printing.hpp"
#include "../support/shop_events.hpp"
#include "shop_read_model.hpp"

#include <evs/eventstore/event_store.hpp>
#include <evs/eventstore/sqlite_event_store.hpp>
#include <evs/projections/engine.hpp>
#include <evs/projections/projection.hpp>

#include <doctest/doctest.h>
#include <sqlite3.h>
#ifdef EVS_TEST_POSTGRESQL
#include <libpq-fe.h>
#endif

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <filesystem>
#include <functional>
#include <initializer_list>
#include <map>
#include <mutex>
#include <set>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

namespace evs::test {

using Row = std::vector<std::string>;
using Table = std::vector<Row>;

// A raw sqlite3 connection (what an operator or another program would use), independent of the engine.
class RawDb {
 public:
  explicit RawDb(const std::filesystem::path& path) {
    if (sqlite3_open_v2(path.c_str(), &db_, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, nullptr) != SQLITE_OK)
      throw std::runtime_error("cannot open " + path.string() + ": " + sqlite3_errmsg(db_));
    sqlite3_busy_timeout(db_, 10000);
  }
  ~RawDb() { sqlite3_close_v2(db_); }
  RawDb(const RawDb&) = delete;
  RawDb& operator=(const RawDb&) = delete;

  // Until end_read(), every query reads one snapshot (a commit landing meanwhile is not half seen).
  void begin_read() { query("BEGIN"); }
  void end_read() { query("COMMIT"); }

  // Runs one statement with text parameters; returns its rows, every value as text ("NULL" for NULL).
  Table query(const std::string& sql, std::initializer_list<std::string> params = {}) {
    sqlite3_stmt* st = nullptr;
    if (sqlite3_prepare_v2(db_, sql.c_str(), -1, &st, nullptr) != SQLITE_OK)
      throw std::runtime_error("prepare failed: " + std::string(sqlite3_errmsg(db_)) + " in " + sql);
    int i = 1;
    for (const auto& p : params) sqlite3_bind_text(st, i++, p.data(), static_cast<int>(p.size()), SQLITE_TRANSIENT);
    Table rows;
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
      Row row;
      for (int c = 0; c < sqlite3_column_count(st); ++c) {
        switch (sqlite3_column_type(st, c)) {
          case SQLITE_NULL: row.emplace_back("NULL"); break;
          case SQLITE_BLOB: {
            const auto* b = static_cast<const char*>(sqlite3_column_blob(st, c));
            row.emplace_back("blob:" + std::string(b, static_cast<std::size_t>(sqlite3_column_bytes(st, c))));
            break;
          }
          default:
            row.emplace_back(reinterpret_cast<const char*>(sqlite3_column_text(st, c)),
                             static_cast<std::size_t>(sqlite3_column_bytes(st, c)));
        }
      }
      rows.push_back(std::move(row));
    }
    const std::string err = sqlite3_errmsg(db_);
    sqlite3_finalize(st);
    if (rc != SQLITE_DONE) throw std::runtime_error("step failed: " + err + " in " + sql);
    return rows;
  }
  void exec(const std::string& sql, std::initializer_list<std::string> params = {}) { query(sql, params); }
  std::int64_t scalar(const std::string& sql, std::initializer_list<std::string> params = {}) {
    auto rows = query(sql, params);
    if (rows.empty() || rows[0].empty()) throw std::runtime_error("no row from " + sql);
    return std::stoll(rows[0][0]);
  }
  bool has_table(const std::string& name) {
    return scalar("SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = ?1", {name}) > 0;
  }

 private:
  sqlite3* db_ = nullptr;
};

#ifdef EVS_TEST_POSTGRESQL
// The same for a read model in a PostgreSQL schema: a plain libpq connection, values in text form, booleans
// as 0/1, and SQL written with ?N parameters as for RawDb.
class PgRawDb {
 public:
  PgRawDb(const std::string& url, const std::string& schema) : schema_(schema) {
    db_ = PQconnectdb(url.c_str());
    if (PQstatus(db_) != CONNECTION_OK) throw std::runtime_error(std::string("cannot connect: ") + PQerrorMessage(db_));
    PQsetNoticeProcessor(db_, [](void*, const char*) {}, nullptr);
    query("SELECT set_config('search_path', ?1, false)", {"\"" + schema + "\""});
  }
  ~PgRawDb() { PQfinish(db_); }
  PgRawDb(const PgRawDb&) = delete;
  PgRawDb& operator=(const PgRawDb&) = delete;

  // Until end_read(), every query reads one snapshot: a killed process's last COMMIT may still land while
  // the read model is being checked, and must not be seen by half of the queries.
  void begin_read() { query("BEGIN ISOLATION LEVEL REPEATABLE READ"); }
  void end_read() { query("COMMIT"); }

  Table query(const std::string& sql, std::initializer_list<std::string> params = {}) {
    std::string text;
    for (std::size_t i = 0; i < sql.size(); ++i) text += sql[i] == '?' ? '$' : sql[i];
    std::vector<const char*> values;
    for (const auto& p : params) values.push_back(p.c_str());
    PGresult* r = PQexecParams(db_, text.c_str(), static_cast<int>(values.size()), nullptr, values.data(), nullptr,
                               nullptr, 0);
    if (PQresultStatus(r) != PGRES_TUPLES_OK && PQresultStatus(r) != PGRES_COMMAND_OK) {
      const std::string err = PQerrorMessage(db_);
      PQclear(r);
      throw std::runtime_error("query failed: " + err + " in " + sql);
    }
    Table rows;
    for (int row = 0; row < PQntuples(r); ++row) {
      Row out;
      for (int c = 0; c < PQnfields(r); ++c) {
        if (PQgetisnull(r, row, c)) out.emplace_back("NULL");
        else if (PQftype(r, c) == 16) out.emplace_back(PQgetvalue(r, row, c)[0] == 't' ? "1" : "0");
        else out.emplace_back(PQgetvalue(r, row, c), static_cast<std::size_t>(PQgetlength(r, row, c)));
      }
      rows.push_back(std::move(out));
    }
    PQclear(r);
    return rows;
  }
  std::int64_t scalar(const std::string& sql, std::initializer_list<std::string> params = {}) {
    auto rows = query(sql, params);
    if (rows.empty() || rows[0].empty()) throw std::runtime_error("no row from " + sql);
    return std::stoll(rows[0][0]);
  }
  bool has_table(const std::string& name) {
    return scalar("SELECT count(*) FROM pg_tables WHERE schemaname = ?1 AND tablename = ?2", {schema_, name}) > 0;
  }

 private:
  PGconn* db_ = nullptr;
  std::string schema_;
};
#endif

// Appends everything `gen` produces until `events` events were appended, using append_async so the SQLite
// writer groups them into few transactions. Returns the last position.
inline std::uint64_t fill(EventStore& store, shop::Generator& gen, std::size_t events) {
  std::mutex mu;
  std::condition_variable cv;
  std::size_t outstanding = 0, failures = 0;
  std::string first_error;
  std::size_t appended = 0;
  while (appended < events) {
    shop::Append a = gen.next();
    appended += a.events.size();
    {
      std::unique_lock lock(mu);
      cv.wait(lock, [&] { return outstanding < 4000; });
      ++outstanding;
    }
    store.append_async(a.stream, ExpectedVersion::any(), a.events, [&](Result<AppendResult> r) {
      std::lock_guard lock(mu);
      if (!r) {
        if (failures++ == 0) first_error = r.error().what();
      }
      --outstanding;
      cv.notify_all();
    });
  }
  std::unique_lock lock(mu);
  cv.wait(lock, [&] { return outstanding == 0; });
  REQUIRE_MESSAGE(failures == 0, "append failed: " << first_error);
  return store.last_position().value();
}

// Synchronous appends, as an application would do them.
inline std::uint64_t append_all(EventStore& store, shop::Generator& gen, std::size_t appends) {
  std::uint64_t last = 0;
  for (std::size_t i = 0; i < appends; ++i) {
    shop::Append a = gen.next();
    auto r = store.append(a.stream, ExpectedVersion::any(), a.events);
    REQUIRE(r);
    last = r->last_position;
  }
  return last;
}

inline bool is_shop_handled(std::string_view type) {
  return type == "shop.order_placed" || type == "shop.item_added" || type == "shop.order_cancelled";
}

// One event of the log, reduced to what the read models need.
struct LogEvent {
  std::uint64_t position = 0;
  std::string stream;
  std::uint64_t version = 0;
  std::string type;
  Uuid event_id;
  bool handled = false;  // one of the types ShopStats and the recorders handle
  std::int64_t cents = 0, items = 0, cancelled = 0;
};

// The whole log in log order (positions ascend; gap-free except on PostgreSQL).
inline std::vector<LogEvent> load_log(EventStore& store) {
  std::vector<LogEvent> log;
  for (std::uint64_t from = 1;;) {
    auto batch = store.read_all(from, 5000);
    REQUIRE(batch);
    if (batch->events.empty()) break;
    for (const auto& e : batch->events) {
      REQUIRE((log.empty() || e.position > log.back().position));
      LogEvent l{e.position, e.stream_id, e.version, e.type, e.event_id, is_shop_handled(e.type)};
      if (e.type == "shop.order_placed") {
        l.cents = decode<shop::OrderPlaced>(e.payload, e.encoding).value().total_cents;
      } else if (e.type == "shop.item_added") {
        auto v = decode<shop::ItemAdded>(e.payload, e.encoding).value();
        l.cents = v.qty * v.price_cents;
        l.items = v.qty;
      } else if (e.type == "shop.order_cancelled") {
        l.cancelled = 1;
      }
      log.push_back(std::move(l));
    }
    from = batch->next_position;
  }
  return log;
}

// The checkpoint rows of one projection: (partition, partitions, position). Empty if none stored yet.
template <class Db>
inline Table checkpoints(Db& db, const std::string& projection) {
  if (!db.has_table("evs_checkpoints")) return {};
  return db.query(
      "SELECT \"partition\", partitions, position FROM evs_checkpoints WHERE projection = ?1 ORDER BY \"partition\"",
      {projection});
}

// What ShopStats' stream_stats must contain after applying exactly `applied` (positions, ascending).
inline Table expected_stream_stats(const std::vector<LogEvent>& log, const std::vector<std::uint64_t>& applied) {
  struct S {
    std::int64_t events = 0, cents = 0, items = 0, cancelled = 0, last_version = 0, chain = 0, violations = 0;
  };
  std::map<std::string, S> stats;
  for (std::uint64_t p : applied) {
    const LogEvent& e = *std::lower_bound(log.begin(), log.end(), p,
                                          [](const LogEvent& l, std::uint64_t position) { return l.position < position; });
    REQUIRE(e.position == p);
    auto [it, fresh] = stats.try_emplace(e.stream);
    S& s = it->second;
    if (fresh) {
      s = S{1, e.cents, e.items, e.cancelled, static_cast<std::int64_t>(e.version),
            static_cast<std::int64_t>(p) % shop::ShopStats::chain_modulus, 0};
      continue;
    }
    s.events += 1;
    s.cents += e.cents;
    s.items += e.items;
    s.cancelled = std::max(s.cancelled, e.cancelled);
    s.violations += static_cast<std::int64_t>(e.version) <= s.last_version ? 1 : 0;
    s.last_version = static_cast<std::int64_t>(e.version);
    s.chain = (s.chain * shop::ShopStats::chain_factor + static_cast<std::int64_t>(p)) % shop::ShopStats::chain_modulus;
  }
  Table t;
  for (const auto& [stream, s] : stats)
    t.push_back({stream, std::to_string(s.events), std::to_string(s.cents), std::to_string(s.items),
                 std::to_string(s.cancelled), std::to_string(s.last_version), std::to_string(s.chain),
                 std::to_string(s.violations)});
  return t;
}

inline std::string show(const Row& r) {
  std::string s = "(";
  for (std::size_t i = 0; i < r.size(); ++i) s += (i ? ", " : "") + r[i];
  return s + ")";
}

// Compares two tables row by row; reports the first difference and the row counts.
inline void check_tables_equal(const Table& actual, const Table& expected, const std::string& what) {
  CHECK_MESSAGE(actual.size() == expected.size(), what << ": " << actual.size() << " rows, expected " << expected.size());
  for (std::size_t i = 0; i < std::min(actual.size(), expected.size()); ++i) {
    if (actual[i] != expected[i]) {
      FAIL_CHECK(what << ": first difference at row " << i << ": " << show(actual[i]) << " != expected "
                      << show(expected[i]));
      return;
    }
  }
}

struct ReadModelCheck {
  std::uint64_t min_checkpoint = 0;
  std::uint64_t max_checkpoint = 0;
  std::size_t processed_rows = 0;
};

// The read model in `path` (written by ShopStats) must equal a clean replay of `log`:
//  - `processed` has no duplicate position, and every row is a handled event of the log with its stream,
//    version and type;
//  - with one checkpoint C: processed holds exactly the handled positions 1..C, in ascending order;
//    with several partition checkpoints: each stream's processed events are exactly its handled events up
//    to one of the checkpoints (the stream's partition's);
//  - stream_stats equals the replay of exactly those events.
template <class Db>
inline ReadModelCheck check_read_model_in(Db& db, const std::vector<LogEvent>& log,
                                          const std::string& projection = "shop_stats") {
  ReadModelCheck result;
  db.begin_read();
  const Table cps = checkpoints(db, projection);
  std::set<std::uint64_t> cp_values;
  for (const Row& r : cps) cp_values.insert(std::stoull(r.at(2)));
  // A partition that has not committed a batch yet has no row: its checkpoint is 0.
  if (cp_values.empty() || cps.size() < std::stoull(cps.front().at(1))) cp_values.insert(0);
  result.min_checkpoint = *cp_values.begin();
  result.max_checkpoint = *cp_values.rbegin();
  CAPTURE(result.max_checkpoint);
  REQUIRE_MESSAGE(result.max_checkpoint <= (log.empty() ? 0 : log.back().position),
                  "checkpoint beyond the end of the log");
  // The log event at position p, or null.
  const auto at = [&log](std::uint64_t p) -> const LogEvent* {
    auto it = std::lower_bound(log.begin(), log.end(), p,
                               [](const LogEvent& e, std::uint64_t position) { return e.position < position; });
    return it != log.end() && it->position == p ? &*it : nullptr;
  };

  Table processed = db.has_table("processed")
                        ? db.query("SELECT position, stream, version, type FROM processed ORDER BY seq")
                        : Table{};
  result.processed_rows = processed.size();
  std::set<std::uint64_t> seen;
  std::map<std::string, std::vector<std::uint64_t>> by_stream;
  std::vector<std::uint64_t> in_order;
  std::size_t duplicates = 0, mismatches = 0;
  for (const Row& r : processed) {
    const std::uint64_t p = std::stoull(r[0]);
    if (!seen.insert(p).second) {
      if (duplicates++ == 0) FAIL_CHECK("position " << p << " was processed twice");
      continue;
    }
    in_order.push_back(p);
    const LogEvent* e = at(p);
    if (e == nullptr || !e->handled || e->stream != r[1] || std::to_string(e->version) != r[2] || e->type != r[3]) {
      if (mismatches++ == 0) FAIL_CHECK("processed row " << show(r) << " does not match a handled event of the log");
      continue;
    }
    by_stream[r[1]].push_back(p);
  }
  CHECK_MESSAGE(duplicates == 0, duplicates << " duplicate processed positions");
  CHECK(mismatches == 0);

  if (cp_values.size() == 1) {
    const std::uint64_t cp = result.max_checkpoint;
    std::vector<std::uint64_t> expected;
    for (const LogEvent& e : log)
      if (e.position <= cp && e.handled) expected.push_back(e.position);
    std::vector<std::uint64_t> sorted = in_order;
    std::sort(sorted.begin(), sorted.end());
    CHECK_MESSAGE(sorted == expected, "processed positions differ from the handled events 1.." << cp << ": "
                                          << in_order.size() << " rows, expected " << expected.size());
    // One partition applies the log in global order.
    if (cps.size() <= 1) CHECK_MESSAGE(sorted == in_order, "events were processed out of global order");
  } else {
    std::map<std::string, std::vector<std::uint64_t>> log_by_stream;
    for (const LogEvent& e : log)
      if (e.handled) log_by_stream[e.stream].push_back(e.position);
    std::size_t bad_streams = 0;
    for (const auto& [stream, all] : log_by_stream) {
      const auto it = by_stream.find(stream);
      const std::vector<std::uint64_t> got = it == by_stream.end() ? std::vector<std::uint64_t>{} : it->second;
      bool matches_some_checkpoint = false;
      for (std::uint64_t cp : cp_values) {
        std::vector<std::uint64_t> prefix;
        for (std::uint64_t p : all)
          if (p <= cp) prefix.push_back(p);
        if (got == prefix) matches_some_checkpoint = true;
      }
      if (!matches_some_checkpoint && bad_streams++ == 0)
        FAIL_CHECK("stream " << stream << ": its " << got.size()
                             << " processed events are not its handled events up to any partition checkpoint");
    }
    CHECK(bad_streams == 0);
  }

  std::vector<std::uint64_t> applied(seen.begin(), seen.end());
  Table stats = db.has_table("stream_stats")
                    ? db.query("SELECT stream, events, sum_cents, items, cancelled, last_version, chain, "
                               "order_violations FROM stream_stats")
                    : Table{};
  std::sort(stats.begin(), stats.end());  // by stream, bytewise (collations differ between databases)
  check_tables_equal(stats, expected_stream_stats(log, applied), "stream_stats");
  db.end_read();
  return result;
}

inline ReadModelCheck check_read_model(const std::filesystem::path& path, const std::vector<LogEvent>& log,
                                       const std::string& projection = "shop_stats") {
  RawDb db(path);
  return check_read_model_in(db, log, projection);
}

// A compile-time string, so one recorder template gives projections with different names.
template <std::size_t N>
struct FixedName {
  char value[N]{};
  constexpr FixedName(const char (&s)[N]) {
    for (std::size_t i = 0; i < N; ++i) value[i] = s[i];
  }
  constexpr std::string_view view() const { return {value, N - 1}; }
};

struct Seen {
  std::uint64_t position = 0;
  std::string stream;
  std::uint64_t version = 0;
};

// An in-memory view that records every event it is given. `before` (set before start) runs first and may
// throw to make the event fail; a failed attempt is not recorded.
template <FixedName Name>
class Recorder
    : public MemoryProjection<Recorder<Name>, shop::OrderPlaced, shop::ItemAdded, shop::OrderCancelled> {
 public:
  static constexpr std::string_view name = Name.view();
  std::function<void(const RecordedEvent&)> before;

  void handle(const shop::OrderPlaced&, const RecordedEvent& m) { record(m); }
  void handle(const shop::ItemAdded&, const RecordedEvent& m) { record(m); }
  void handle(const shop::OrderCancelled&, const RecordedEvent& m) { record(m); }

  std::vector<Seen> seen() const {
    std::lock_guard lock(mu_);
    return seen_;
  }
  std::size_t count() const {
    std::lock_guard lock(mu_);
    return seen_.size();
  }
  bool has(std::uint64_t position) const {
    std::lock_guard lock(mu_);
    for (const Seen& s : seen_)
      if (s.position == position) return true;
    return false;
  }

 private:
  void record(const RecordedEvent& m) {
    if (before) before(m);
    std::lock_guard lock(mu_);
    seen_.push_back({m.position, m.stream_id, m.version});
  }
  mutable std::mutex mu_;
  std::vector<Seen> seen_;
};

// The handled positions of the log, ascending.
inline std::vector<std::uint64_t> handled_positions(const std::vector<LogEvent>& log, std::uint64_t up_to = ~0ull) {
  std::vector<std::uint64_t> out;
  for (const LogEvent& e : log)
    if (e.handled && e.position <= up_to) out.push_back(e.position);
  return out;
}

inline std::vector<std::uint64_t> positions_of(const std::vector<Seen>& seen) {
  std::vector<std::uint64_t> out;
  for (const Seen& s : seen) out.push_back(s.position);
  return out;
}

// Every handled event of the log exactly once, in global order, and so in per-stream order.
inline void check_exactly_once_in_order(const std::vector<Seen>& seen, const std::vector<LogEvent>& log) {
  const auto got = positions_of(seen);
  const auto expected = handled_positions(log);
  CHECK_MESSAGE(got.size() == expected.size(), got.size() << " events applied, " << expected.size() << " in the log");
  std::set<std::uint64_t> unique(got.begin(), got.end());
  CHECK_MESSAGE(unique.size() == got.size(), (got.size() - unique.size()) << " events applied more than once");
  CHECK_MESSAGE(std::is_sorted(got.begin(), got.end()), "events were applied out of global order");
  CHECK_MESSAGE(got == expected, "the applied positions differ from the log's handled positions");
  std::map<std::string, std::vector<std::uint64_t>> versions, expected_versions;
  for (const auto& s : seen) versions[s.stream].push_back(s.version);
  for (const auto& e : log)
    if (e.handled) expected_versions[e.stream].push_back(e.version);
  CHECK(versions == expected_versions);
}

// Polls `done` every few milliseconds until it returns true or `timeout` passes. Returns done().
template <class F>
bool eventually(F&& done, std::chrono::milliseconds timeout = std::chrono::seconds(20)) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (!done()) {
    if (std::chrono::steady_clock::now() >= deadline) return done();
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  return true;
}

// A SQLite store at `path` with Durability::normal.
inline std::unique_ptr<evs::SqliteEventStore> open_sqlite(const std::filesystem::path& path) {
  evs::SqliteOptions o;
  o.path = path;
  o.durability = evs::Durability::normal;
  return std::make_unique<evs::SqliteEventStore>(o);
}

// Runs `threads` writers, each appending `appends` times to its own order streams (and shared audit streams).
class Writers {
 public:
  Writers(evs::EventStore& store, int threads, int appends, int streams_per_writer = 25) {
    for (int t = 0; t < threads; ++t)
      threads_.emplace_back([this, &store, t, appends, streams_per_writer] {
        shop::Generator gen(1000 + static_cast<unsigned>(t), streams_per_writer, 3, "w" + std::to_string(t) + "order");
        for (int i = 0; i < appends; ++i) {
          shop::Append a = gen.next();
          if (!store.append(a.stream, evs::ExpectedVersion::any(), a.events)) ++failures_;
        }
      });
  }
  ~Writers() { join(); }
  void join() {
    for (auto& th : threads_)
      if (th.joinable()) th.join();
  }
  int failures() const { return failures_; }

 private:
  std::vector<std::thread> threads_;
  std::atomic<int> failures_{0};
};

}  // namespace evs::test
