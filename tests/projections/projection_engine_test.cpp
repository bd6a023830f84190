// ProjectionEngine behaviour in one process: catch-up to live hand-over, partitions, retries and dead
// letters, side-effect deduplication, read-your-writes, health, and stop/restart.
#include "projection_test_support.hpp"

#include "../support/backends.hpp"
#include "../support/temp_dir.hpp"

#include <evs/eventstore/memory_event_store.hpp>
#include <evs/eventstore/sqlite_event_store.hpp>
#include <evs/projections/engine.hpp>

#include <doctest/doctest.h>

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <future>
#include <map>
#include <numeric>
#include <set>
#include <thread>
#include <unordered_set>

namespace {

using namespace std::chrono_literals;
using evs::test::LogEvent;
using evs::test::RawDb;
using evs::test::Recorder;
using evs::test::check_exactly_once_in_order;
using evs::test::eventually;

std::unique_ptr<evs::SqliteEventStore> open_sqlite(const std::filesystem::path& path) {
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


}  // namespace

// ---------------------------------------------------------------------------------------------------------
// Catch-up and live

TEST_CASE_TEMPLATE("catch-up hands over to live without a gap or a duplicate while writers keep appending", Backend,
                   EVS_ALL_BACKENDS) {
  Backend backend;
  auto store = backend.open();
  shop::Generator history(1, 40, 20);
  evs::test::fill(*store, history, 3000);

  Recorder<"handover"> recorder;
  evs::ProjectionEngine engine(*store);
  evs::ProjectionOptions po;
  po.batch_size = 100;  // several catch-up batches while the writers run
  engine.add(recorder, po);
  {
    Writers writers(*store, 4, 300);
    engine.start();
    writers.join();
    REQUIRE(writers.failures() == 0);
  }
  const std::uint64_t last = store->last_position().value();
  REQUIRE(engine.wait_for("handover", last, 30s));
  const auto log = evs::test::load_log(*store);
  check_exactly_once_in_order(recorder.seen(), log);
  CHECK(engine.health("handover")->position >= last);
  engine.stop();
}

// ---------------------------------------------------------------------------------------------------------
// Partitions

namespace {

// Checks, inside the handler, that one stream is never handled concurrently and that each stream's versions
// arrive as 1, 2, 3, ... (order streams hold only handled types, so their versions are contiguous).
class PartitionProbe : public evs::MemoryProjection<PartitionProbe, shop::OrderPlaced, shop::ItemAdded,
                                                    shop::OrderCancelled> {
 public:
  static constexpr std::string_view name = "partition_probe";
  void handle(const shop::OrderPlaced&, const evs::RecordedEvent& m) { probe(m); }
  void handle(const shop::ItemAdded&, const evs::RecordedEvent& m) { probe(m); }
  void handle(const shop::OrderCancelled&, const evs::RecordedEvent& m) { probe(m); }

  bool handled(std::uint64_t position) const {
    std::lock_guard lock(mu_);
    return handled_.count(position) > 0;
  }
  std::size_t handled_count() const {
    std::lock_guard lock(mu_);
    return handled_.size();
  }
  std::string first_violation() const {
    std::lock_guard lock(mu_);
    return first_violation_;
  }
  int violations() const {
    std::lock_guard lock(mu_);
    return violations_;
  }
  int max_concurrency() const { return max_concurrency_; }

 private:
  void violation(const std::string& what) {
    if (violations_++ == 0) first_violation_ = what;
  }
  void probe(const evs::RecordedEvent& m) {
    {
      std::lock_guard lock(mu_);
      if (!in_flight_.insert(m.stream_id).second) violation("stream " + m.stream_id + " handled concurrently");
      std::uint64_t& last = last_version_[m.stream_id];
      if (m.version != last + 1)
        violation("stream " + m.stream_id + ": version " + std::to_string(m.version) + " after " +
                  std::to_string(last));
      last = m.version;
      const int now = ++running_;
      max_concurrency_ = std::max(max_concurrency_.load(), now);
    }
    // Stay busy a little, so handlers of different partitions get a chance to overlap.
    const auto until = std::chrono::steady_clock::now() + std::chrono::microseconds(20);
    while (std::chrono::steady_clock::now() < until) std::this_thread::yield();
    std::lock_guard lock(mu_);
    --running_;
    in_flight_.erase(m.stream_id);
    if (!handled_.insert(m.position).second) violation("position " + std::to_string(m.position) + " handled twice");
  }

  mutable std::mutex mu_;
  std::set<std::string> in_flight_;
  std::map<std::string, std::uint64_t> last_version_;
  std::unordered_set<std::uint64_t> handled_;
  int running_ = 0;
  std::atomic<int> max_concurrency_{0};
  int violations_ = 0;
  std::string first_violation_;
};

}  // namespace

TEST_CASE("a partitioned projection keeps per-stream order and never reports a position past an unhandled event") {
  evs::test::TempDir dir;
  auto store = open_sqlite(dir / "events.db");
  shop::Generator history(2, 64, 20);
  evs::test::fill(*store, history, 4000);

  PartitionProbe probe;
  evs::EngineOptions eo;
  eo.threads = 4;
  evs::ProjectionEngine engine(*store, eo);
  evs::ProjectionOptions po;
  po.partitions = 4;
  po.batch_size = 64;
  engine.add(probe, po);

  // Compares the reported position with what the handler has really finished, at random moments.
  std::atomic<bool> done{false};
  std::uint64_t checked_up_to = 0;  // every handled event <= this was found handled
  int position_violations = 0, samples = 0;
  std::string first_position_violation;
  std::thread checker([&] {
    std::mt19937 rng(3);
    const evs::ReadAllFilter filter{{"shop.order_placed", "shop.item_added", "shop.order_cancelled"}, {}};
    while (!done) {
      const auto h = engine.health("partition_probe");
      if (h && h->position > checked_up_to) {
        ++samples;
        const std::uint64_t reported = h->position;
        for (std::uint64_t from = checked_up_to + 1; from <= reported;) {
          auto batch = store->read_all(from, 1000, filter);
          if (!batch || batch->events.empty()) break;
          for (const auto& e : batch->events) {
            if (e.position > reported) break;
            if (!probe.handled(e.position) && position_violations++ == 0)
              first_position_violation = "health position " + std::to_string(reported) + " but event " +
                                         std::to_string(e.position) + " (" + e.stream_id + ") is not handled";
          }
          from = batch->next_position;
        }
        checked_up_to = reported;
      }
      std::this_thread::sleep_for(std::chrono::microseconds(200 + rng() % 3000));
    }
  });

  {
    Writers writers(*store, 4, 300, 16);
    engine.start();
    writers.join();
    CHECK(writers.failures() == 0);
  }
  const std::uint64_t last = store->last_position().value();
  const auto r = engine.wait_for("partition_probe", last, 30s);
  done = true;
  checker.join();
  REQUIRE(r);

  CHECK_MESSAGE(probe.violations() == 0, probe.first_violation());
  CHECK_MESSAGE(position_violations == 0, first_position_violation);
  const auto log = evs::test::load_log(*store);
  CHECK(probe.handled_count() == evs::test::handled_positions(log).size());
  MESSAGE("partitions: " << samples << " position samples, max " << probe.max_concurrency()
                         << " handlers running at once");
  engine.stop();
}

namespace {

// Each handler waits (up to 5 s, once) until a handler of another stream runs at the same time.
class Rendezvous : public evs::MemoryProjection<Rendezvous, shop::OrderPlaced> {
 public:
  static constexpr std::string_view name = "rendezvous";
  void handle(const shop::OrderPlaced&, const evs::RecordedEvent&) {
    std::unique_lock lock(mu_);
    if (++running_ >= 2) met_ = true;
    cv_.notify_all();
    if (!gave_up_ && !cv_.wait_for(lock, 5s, [&] { return met_; })) gave_up_ = true;
    --running_;
  }
  bool met() const {
    std::lock_guard lock(mu_);
    return met_;
  }

 private:
  mutable std::mutex mu_;
  std::condition_variable cv_;
  int running_ = 0;
  bool met_ = false, gave_up_ = false;
};

}  // namespace

TEST_CASE("the partitions of a batch run in parallel on the engine's threads") {
  evs::MemoryEventStore store;
  for (int i = 0; i < 32; ++i) {
    const std::string stream = "order-" + std::to_string(i);
    const auto e = shop::make(shop::OrderPlaced{stream, "c", 1});
    REQUIRE(store.append(stream, evs::ExpectedVersion::no_stream(), {&e, 1}));
  }
  Rendezvous rendezvous;
  evs::EngineOptions eo;
  eo.threads = 4;
  evs::ProjectionEngine engine(store, eo);
  evs::ProjectionOptions po;
  po.partitions = 4;
  engine.add(rendezvous, po);
  engine.start();
  REQUIRE(engine.wait_for("rendezvous", 32, 30s));
  CHECK_MESSAGE(rendezvous.met(), "no two partitions ever ran a handler at the same time");
  engine.stop();
}

TEST_CASE("a SQL projection with 4 partitions builds the same read model as with 1") {
  evs::test::TempDir dir;
  auto store = open_sqlite(dir / "events.db");
  shop::Generator history(4, 64, 20);
  evs::test::fill(*store, history, 5000);

  shop::ShopStats one, four;
  evs::ProjectionEngine engine1(*store);
  evs::EngineOptions eo;
  eo.threads = 4;
  evs::ProjectionEngine engine4(*store, eo);
  evs::ProjectionOptions po;
  po.database = dir / "one.db";
  po.batch_size = 200;
  engine1.add(one, po);
  po.database = dir / "four.db";
  po.partitions = 4;
  engine4.add(four, po);
  {
    Writers writers(*store, 4, 200, 16);
    engine1.start();
    engine4.start();
    writers.join();
    CHECK(writers.failures() == 0);
  }
  const std::uint64_t last = store->last_position().value();
  REQUIRE(engine1.wait_for("shop_stats", last, 30s));
  REQUIRE(engine4.wait_for("shop_stats", last, 30s));
  engine1.stop();
  engine4.stop();

  const auto log = evs::test::load_log(*store);
  evs::test::check_read_model(dir / "one.db", log);
  evs::test::check_read_model(dir / "four.db", log);
  RawDb a(dir / "one.db"), b(dir / "four.db");
  const std::string stats = "SELECT * FROM stream_stats ORDER BY stream";
  const std::string processed = "SELECT position, stream, version, type FROM processed ORDER BY position";
  evs::test::check_tables_equal(b.query(stats), a.query(stats), "stream_stats (4 partitions vs 1)");
  evs::test::check_tables_equal(b.query(processed), a.query(processed), "processed (4 partitions vs 1)");
  CHECK(a.query(stats).size() > 60);
}

// ---------------------------------------------------------------------------------------------------------
// Failures: retry, park, stop

namespace {

struct Attempts {
  std::mutex mu;
  std::vector<std::chrono::steady_clock::time_point> at;
  void add() {
    std::lock_guard lock(mu);
    at.push_back(std::chrono::steady_clock::now());
  }
  std::size_t count() {
    std::lock_guard lock(mu);
    return at.size();
  }
  std::chrono::milliseconds span() {
    std::lock_guard lock(mu);
    return at.size() < 2 ? 0ms : std::chrono::duration_cast<std::chrono::milliseconds>(at.back() - at.front());
  }
};

// 10 item events in 5 streams; returns the position of the one named "poison" (the 6th).
std::uint64_t append_with_poison(evs::EventStore& store, int after = 4) {
  std::uint64_t poison = 0;
  for (int i = 0; i < 6 + after; ++i) {
    const std::string stream = "order-" + std::to_string(i % 5);
    const auto e = shop::make(shop::ItemAdded{stream, i == 5 ? "poison" : "sku", 1, 100});
    auto r = store.append(stream, evs::ExpectedVersion::any(), {&e, 1});
    REQUIRE(r);
    if (i == 5) poison = r->last_position;
  }
  return poison;
}

}  // namespace

TEST_CASE("an event whose handler always throws is retried with backoff, then parked, and later events go on") {
  evs::test::TempDir dir;
  auto store = open_sqlite(dir / "events.db");
  const std::uint64_t poison = append_with_poison(*store);
  const std::uint64_t last = store->last_position().value();

  Recorder<"recorder"> recorder;
  Attempts attempts;
  recorder.before = [&](const evs::RecordedEvent& e) {
    if (e.position != poison) return;
    attempts.add();
    throw std::runtime_error("poison pill in " + e.stream_id);
  };
  evs::ProjectionEngine engine(*store);
  evs::ProjectionOptions po;
  po.database = dir / "projections.db";
  po.retry.max_attempts = 4;
  po.retry.initial_backoff = 30ms;
  po.retry.multiplier = 2;
  po.retry.jitter = 0.2;
  po.retry.on_exhausted = evs::OnFailure::park;
  engine.add(recorder, po);
  engine.start();
  REQUIRE(engine.wait_for("recorder", last, 20s));

  CHECK(attempts.count() == 4);
  // Waits of 30, 60 and 120 ms, each at least 80% of that with 20% jitter.
  CHECK_MESSAGE(attempts.span() >= 168ms, "attempts spanned only " << attempts.span().count() << " ms");
  std::vector<std::uint64_t> expected;
  for (std::uint64_t p = 1; p <= last; ++p)
    if (p != poison) expected.push_back(p);
  CHECK(evs::test::positions_of(recorder.seen()) == expected);

  const auto h = engine.health("recorder");
  REQUIRE(h);
  CHECK(h->dead_letters == 1);
  CHECK(h->last_error.find("poison pill") != std::string::npos);
  CHECK((h->processed == last - 1 || h->processed == last));  // whether a parked event counts is unspecified
  engine.stop();

  RawDb db(dir / "projections.db");
  const auto rows = db.query("SELECT projection, position, event_id, stream, type, error, attempts FROM evs_dead_letters");
  REQUIRE(rows.size() == 1);
  const auto poisoned = store->read_all(poison, 1).value().events.at(0);
  CHECK(rows[0][0] == "recorder");
  CHECK(rows[0][1] == std::to_string(poison));
  CHECK((rows[0][2] == poisoned.event_id.to_string() || rows[0][2] == "blob:" + std::string(poisoned.event_id.bytes_view())));
  CHECK(rows[0][3] == poisoned.stream_id);
  CHECK(rows[0][4] == "shop.item_added");
  CHECK(rows[0][5].find("poison pill in " + poisoned.stream_id) != std::string::npos);
  CHECK(rows[0][6] == "4");
}

TEST_CASE("a dead letter marked for retry is re-delivered: settled as retried on success, parked again on failure") {
  evs::test::TempDir dir;
  auto store = open_sqlite(dir / "events.db");
  const std::uint64_t poison = append_with_poison(*store);
  const std::uint64_t last = store->last_position().value();
  std::atomic<bool> broken{true};
  std::atomic<int> poison_handled{0};
  Recorder<"recorder"> recorder;
  recorder.before = [&](const evs::RecordedEvent& e) {
    if (e.position != poison) return;
    if (broken) throw std::runtime_error("still broken");
    ++poison_handled;
  };
  evs::ProjectionEngine engine(*store);
  evs::ProjectionOptions po;
  po.database = dir / "projections.db";
  po.retry.max_attempts = 2;
  po.retry.initial_backoff = 1ms;
  engine.add(recorder, po);
  engine.start();
  REQUIRE(engine.wait_for("recorder", last, 20s));
  REQUIRE(engine.health("recorder")->dead_letters == 1);

  RawDb db(dir / "projections.db");
  const auto status = [&] { return db.query("SELECT status, attempts FROM evs_dead_letters").at(0); };
  // Still broken: the retry fails and the event is parked again, with one more attempt.
  db.exec("UPDATE evs_dead_letters SET status = 'retry'");
  auto e = shop::make(shop::ItemAdded{"order-9", "sku", 1, 1});
  REQUIRE(store->append("order-9", evs::ExpectedVersion::any(), {&e, 1}));  // wakes the engine
  REQUIRE(evs::test::eventually([&] { return status()[0] == "parked" && status()[1] == "3"; }));
  CHECK(poison_handled == 0);
  // Fixed: the retry succeeds exactly once and the dead letter is settled.
  broken = false;
  db.exec("UPDATE evs_dead_letters SET status = 'retry'");
  auto again = shop::make(shop::ItemAdded{"order-9", "sku", 1, 1});
  REQUIRE(store->append("order-9", evs::ExpectedVersion::any(), {&again, 1}));
  REQUIRE(evs::test::eventually([&] { return status()[0] == "retried"; }));
  CHECK(poison_handled == 1);
  CHECK(engine.health("recorder")->dead_letters == 0);
  engine.stop();
}

namespace {

// Writes a row, then throws for the "poison" sku: the write must be rolled back with the failed attempt.
class HalfWriter : public evs::SqlProjection<HalfWriter, shop::ItemAdded> {
 public:
  static constexpr std::string_view name = "half_writer";
  void setup(evs::SqlSession& db) { db.exec("CREATE TABLE IF NOT EXISTS seen(position INTEGER NOT NULL)"); }
  void handle(const shop::ItemAdded& e, const evs::RecordedEvent& m, evs::SqlSession& db) {
    db.exec("INSERT INTO seen(position) VALUES(?1)", {static_cast<std::int64_t>(m.position)});
    if (e.sku == "poison") {
      ++poison_calls;
      throw std::runtime_error("poison pill after a write");
    }
  }
  std::atomic<int> poison_calls{0};
};

}  // namespace

TEST_CASE("a failing SQL handler's partial writes are rolled back on every attempt and when it is parked") {
  evs::test::TempDir dir;
  auto store = open_sqlite(dir / "events.db");
  const std::uint64_t poison = append_with_poison(*store);
  const std::uint64_t last = store->last_position().value();
  HalfWriter writer;
  evs::ProjectionEngine engine(*store);
  evs::ProjectionOptions po;
  po.database = dir / "read-model.db";
  SUBCASE("one batch") {}
  SUBCASE("full batches: the next one is read ahead while the failing one retries") { po.batch_size = 3; }
  po.retry.max_attempts = 3;
  po.retry.initial_backoff = 5ms;
  engine.add(writer, po);
  engine.start();
  REQUIRE(engine.wait_for("half_writer", last, 20s));
  engine.stop();
  RawDb db(dir / "read-model.db");
  std::vector<std::string> expected;
  for (std::uint64_t p = 1; p <= last; ++p)
    if (p != poison) expected.push_back(std::to_string(p));
  std::vector<std::string> got;
  for (const auto& r : db.query("SELECT position FROM seen ORDER BY rowid")) got.push_back(r[0]);
  CHECK(got == expected);
  CHECK(db.query("SELECT position, attempts FROM evs_dead_letters WHERE projection = 'half_writer'") ==
        evs::test::Table{{std::to_string(poison), "3"}});
  // The batch runs without savepoints until the first failure, which counts as the first of the 3 attempts.
  CHECK(writer.poison_calls == 3);
  CHECK(db.scalar("SELECT position FROM evs_checkpoints WHERE projection = 'half_writer'") ==
        static_cast<std::int64_t>(last));
}

namespace {

// Records each position in `seen`. At `rollback_at` (once) it makes SQLite roll back the whole batch
// transaction (INSERT OR ROLLBACK on a duplicate key) and swallows the error, as a careless handler might.
class RollbackSwallower : public evs::SqlProjection<RollbackSwallower, shop::ItemAdded> {
 public:
  static constexpr std::string_view name = "swallower";
  std::uint64_t rollback_at = 0;
  std::atomic<bool> rolled_back{false};
  void setup(evs::SqlSession& db) {
    db.exec("CREATE TABLE IF NOT EXISTS seen(position INTEGER NOT NULL)");
    db.exec("CREATE TABLE IF NOT EXISTS keys(k INTEGER PRIMARY KEY)");
  }
  void handle(const shop::ItemAdded&, const evs::RecordedEvent& m, evs::SqlSession& db) {
    db.exec("INSERT INTO seen(position) VALUES(?1)", {static_cast<std::int64_t>(m.position)});
    if (m.position != rollback_at || rolled_back.exchange(true)) return;
    try {
      db.exec("INSERT OR ROLLBACK INTO keys(k) VALUES(1)");
      db.exec("INSERT OR ROLLBACK INTO keys(k) VALUES(1)");  // ends the whole transaction
    } catch (const std::exception&) {
    }
  }
};

}  // namespace

TEST_CASE("a SQL handler that makes SQLite roll back the batch loses nothing: the batch is retried") {
  evs::test::TempDir dir;
  auto store = open_sqlite(dir / "events.db");
  for (int i = 0; i < 10; ++i) {
    const auto e = shop::make(shop::ItemAdded{"order-1", "sku", 1, 1});
    REQUIRE(store->append("order-1", evs::ExpectedVersion::any(), {&e, 1}));
  }
  RollbackSwallower projection;
  projection.rollback_at = 5;
  evs::EngineOptions eo;
  eo.poll_max = 10ms;  // the retry after a storage failure waits 10 x poll_max
  evs::ProjectionEngine engine(*store, eo);
  evs::ProjectionOptions po;
  po.database = dir / "read-model.db";
  engine.add(projection, po);
  engine.start();
  REQUIRE(engine.wait_for("swallower", 10, 20s));
  engine.stop();
  CHECK(projection.rolled_back);
  RawDb db(dir / "read-model.db");
  std::vector<std::string> got;
  for (const auto& r : db.query("SELECT position FROM seen ORDER BY rowid")) got.push_back(r[0]);
  CHECK(got == std::vector<std::string>{"1", "2", "3", "4", "5", "6", "7", "8", "9", "10"});
  CHECK(db.scalar("SELECT position FROM evs_checkpoints WHERE projection = 'swallower'") == 10);
}

TEST_CASE("a batch whose checkpoint fails to commit is read again, although the next one was read ahead") {
  evs::test::TempDir dir;
  auto store = open_sqlite(dir / "events.db");
  HalfWriter writer;  // records every position; no event of this log is poison
  evs::EngineOptions eo;
  eo.poll_max = 10ms;
  evs::ProjectionOptions po;
  po.database = dir / "read-model.db";
  po.batch_size = 5;
  {
    evs::ProjectionEngine first(*store, eo);  // creates the read model's and the engine's tables
    first.add(writer, po);
    first.start();
    first.stop();
  }
  {
    RawDb db(dir / "read-model.db");
    db.exec("CREATE TABLE armed(x INTEGER)");
    db.exec("INSERT INTO armed VALUES(1)");
    db.exec("CREATE TRIGGER fail_checkpoint BEFORE UPDATE ON evs_checkpoints "
            "WHEN NEW.position >= 15 AND EXISTS (SELECT 1 FROM armed) "
            "BEGIN SELECT RAISE(ABORT, 'injected checkpoint failure'); END");
  }
  for (int i = 0; i < 30; ++i) {
    const auto e = shop::make(shop::ItemAdded{"order-" + std::to_string(i % 3), "sku", 1, 1});
    REQUIRE(store->append("order-" + std::to_string(i % 3), evs::ExpectedVersion::any(), {&e, 1}));
  }
  evs::ProjectionEngine engine(*store, eo);
  engine.add(writer, po);
  engine.start();
  REQUIRE(eventually([&] { return engine.health("half_writer")->last_error.find("injected") != std::string::npos; }));
  {
    RawDb db(dir / "read-model.db");
    db.exec("DELETE FROM armed");
  }
  REQUIRE(engine.wait_for("half_writer", 30, 20s));
  engine.stop();
  RawDb db(dir / "read-model.db");
  std::vector<std::string> got, expected;
  for (const auto& r : db.query("SELECT position FROM seen ORDER BY rowid")) got.push_back(r[0]);
  for (int p = 1; p <= 30; ++p) expected.push_back(std::to_string(p));
  CHECK(got == expected);
}

TEST_CASE("OnFailure::stop fails the projection at the poison event and processes nothing after it") {
  evs::test::TempDir dir;
  auto store = open_sqlite(dir / "events.db");
  const std::uint64_t poison = append_with_poison(*store);
  const std::uint64_t last = store->last_position().value();

  Recorder<"recorder"> recorder;
  Attempts attempts;
  recorder.before = [&](const evs::RecordedEvent& e) {
    if (e.position != poison) return;
    attempts.add();
    throw std::runtime_error("poison pill");
  };
  evs::ProjectionEngine engine(*store);
  evs::ProjectionOptions po;
  po.database = dir / "projections.db";
  po.retry.max_attempts = 2;
  po.retry.initial_backoff = 10ms;
  po.retry.on_exhausted = evs::OnFailure::stop;
  engine.add(recorder, po);
  engine.start();

  REQUIRE(eventually([&] { return engine.health("recorder")->state == evs::ProjectionState::failed; }));
  const auto h = engine.health("recorder");
  CHECK(h->position == poison - 1);
  CHECK(h->last_error.find("poison pill") != std::string::npos);
  CHECK(attempts.count() == 2);
  for (const auto& s : recorder.seen()) CHECK_MESSAGE(s.position < poison, "event " << s.position << " was processed");
  CHECK(recorder.count() == poison - 1);

  // A waiter gets the projection's error, not a time-out.
  const auto r = engine.wait_for("recorder", last, 5s);
  REQUIRE_FALSE(r);
  CHECK_MESSAGE(r.error().is(evs::errc::handler_failed), r.error().what());
  CHECK(recorder.count() == poison - 1);
  CHECK(attempts.count() == 2);
  engine.stop();
  RawDb db(dir / "projections.db");
  CHECK((!db.has_table("evs_dead_letters") || db.scalar("SELECT count(*) FROM evs_dead_letters") == 0));
}

TEST_CASE("a handler that fails twice and then succeeds is not parked") {
  evs::test::TempDir dir;
  auto store = open_sqlite(dir / "events.db");
  const std::uint64_t flaky = append_with_poison(*store);
  const std::uint64_t last = store->last_position().value();

  Recorder<"recorder"> recorder;
  Attempts attempts;
  recorder.before = [&](const evs::RecordedEvent& e) {
    if (e.position != flaky) return;
    attempts.add();
    if (attempts.count() <= 2) throw std::runtime_error("transient failure");
  };
  evs::ProjectionEngine engine(*store);
  evs::ProjectionOptions po;
  po.database = dir / "projections.db";
  po.retry.max_attempts = 5;
  po.retry.initial_backoff = 5ms;
  engine.add(recorder, po);
  engine.start();
  REQUIRE(engine.wait_for("recorder", last, 20s));
  CHECK(attempts.count() == 3);
  std::vector<std::uint64_t> all;
  for (std::uint64_t p = 1; p <= last; ++p) all.push_back(p);
  CHECK(evs::test::positions_of(recorder.seen()) == all);
  CHECK(engine.health("recorder")->dead_letters == 0);
  engine.stop();
  RawDb db(dir / "projections.db");
  CHECK((!db.has_table("evs_dead_letters") || db.scalar("SELECT count(*) FROM evs_dead_letters") == 0));
}

TEST_CASE("stop() during a retry backoff returns promptly, and a restart retries the event") {
  evs::test::TempDir dir;
  auto store = open_sqlite(dir / "events.db");
  const std::uint64_t poison = append_with_poison(*store);
  const std::uint64_t last = store->last_position().value();

  Recorder<"recorder"> recorder;
  Attempts attempts;
  std::atomic<bool> healed{false};
  recorder.before = [&](const evs::RecordedEvent& e) {
    if (e.position != poison) return;
    attempts.add();
    if (!healed) throw std::runtime_error("downstream unavailable");
  };
  evs::ProjectionEngine engine(*store);
  evs::ProjectionOptions po;
  po.retry.max_attempts = 10;
  po.retry.initial_backoff = 1h;  // stop() must not wait it out: a stop that did would hang this test
  po.retry.max_backoff = 1h;
  engine.add(recorder, po);
  engine.start();
  REQUIRE(eventually([&] { return attempts.count() == 1; }));
  engine.stop();
  CHECK(attempts.count() == 1);
  const auto h = engine.health("recorder");
  CHECK(h->state == evs::ProjectionState::stopped);
  CHECK(h->position < poison);
  CHECK(h->dead_letters == 0);

  healed = true;
  Recorder<"recorder"> again;
  again.before = recorder.before;
  evs::ProjectionEngine engine2(*store);
  engine2.add(again, po);
  engine2.start();
  REQUIRE(engine2.wait_for("recorder", last, 10s));
  CHECK(again.has(poison));
  CHECK(attempts.count() == 2);
  engine2.stop();
}

TEST_CASE("a SQL projection checkpointed with one partition count refuses to start with another") {
  evs::test::TempDir dir;
  auto store = open_sqlite(dir / "events.db");
  shop::Generator gen(11, 10);
  evs::test::append_all(*store, gen, 20);
  evs::ProjectionOptions po;
  po.database = dir / "read-model.db";
  {
    shop::ShopStats stats;
    evs::ProjectionEngine engine(*store);
    engine.add(stats, po);
    engine.start();
    REQUIRE(engine.wait_for("shop_stats", store->last_position().value(), 10s));
    engine.stop();
  }
  shop::ShopStats stats;
  evs::ProjectionEngine engine(*store);
  po.partitions = 4;
  engine.add(stats, po);
  try {
    engine.start();
    FAIL("start() accepted a changed partition count");
  } catch (const evs::Exception& x) {
    CHECK(x.error().is(evs::errc::invalid_argument));
    CHECK(std::string(x.what()).find("partition") != std::string::npos);
  }
  engine.stop();
}

TEST_CASE("start() throws when a projection's database cannot be opened") {
  evs::test::TempDir dir;
  auto store = open_sqlite(dir / "events.db");
  shop::ShopStats stats;
  evs::ProjectionEngine engine(*store);
  evs::ProjectionOptions po;
  po.database = dir / "no-such-dir" / "read-model.db";
  engine.add(stats, po);
  CHECK_THROWS_AS(engine.start(), evs::Exception);
  engine.stop();
}

// ---------------------------------------------------------------------------------------------------------
// Side effects

namespace {

// Sends "emails": counts each effect per event id in an external SQLite file, committed outside the
// engine's transaction (as a real gateway call would be).
class Mailer : public evs::EffectHandler<Mailer, shop::OrderPlaced, shop::ItemAdded, shop::OrderCancelled> {
 public:
  static constexpr std::string_view name = "mailer";
  explicit Mailer(const std::filesystem::path& effects) : db_(effects) {
    db_.exec("PRAGMA journal_mode = WAL");
    db_.exec("PRAGMA synchronous = NORMAL");
    db_.exec("CREATE TABLE IF NOT EXISTS effects(event_id TEXT PRIMARY KEY, n INTEGER NOT NULL)");
  }
  void handle(const shop::OrderPlaced&, const evs::RecordedEvent& m) { send(m); }
  void handle(const shop::ItemAdded&, const evs::RecordedEvent& m) { send(m); }
  void handle(const shop::OrderCancelled&, const evs::RecordedEvent& m) { send(m); }
  int calls() const { return calls_; }

 private:
  void send(const evs::RecordedEvent& m) {
    ++calls_;
    db_.exec("INSERT INTO effects(event_id, n) VALUES(?1, 1) ON CONFLICT(event_id) DO UPDATE SET n = n + 1",
             {m.event_id.to_string()});
  }
  RawDb db_;
  std::atomic<int> calls_{0};
};

// event id -> effect count
std::map<std::string, std::int64_t> effects(const std::filesystem::path& path) {
  RawDb db(path);
  std::map<std::string, std::int64_t> out;
  for (const auto& r : db.query("SELECT event_id, n FROM effects")) out[r[0]] = std::stoll(r[1]);
  return out;
}

std::map<std::string, std::int64_t> each_once(const std::vector<LogEvent>& log, std::int64_t n = 1) {
  std::map<std::string, std::int64_t> out;
  for (const auto& e : log)
    if (e.handled) out[e.event_id.to_string()] = n;
  return out;
}

}  // namespace

TEST_CASE("a side effect is not repeated when events are redelivered after a lost checkpoint") {
  evs::test::TempDir dir;
  auto store = open_sqlite(dir / "events.db");
  shop::Generator gen(5, 20, 5);
  evs::test::fill(*store, gen, 300);
  const auto effects_db = dir / "effects.db";
  evs::ProjectionOptions po;
  po.database = dir / "projections.db";
  po.batch_size = 50;

  {
    Mailer mailer(effects_db);
    evs::ProjectionEngine engine(*store);
    engine.add(mailer, po);
    engine.start();
    REQUIRE(engine.wait_for("mailer", store->last_position().value(), 20s));
    engine.stop();
    CHECK(effects(effects_db) == each_once(evs::test::load_log(*store)));
  }

  // The crash window "effect done, checkpoint not committed": forget the checkpoint, keep the inbox.
  {
    RawDb db(dir / "projections.db");
    REQUIRE(db.scalar("SELECT count(*) FROM evs_checkpoints WHERE projection = 'mailer'") > 0);
    CHECK(db.scalar("SELECT count(*) FROM evs_inbox WHERE projection = 'mailer'") > 0);
    db.exec("DELETE FROM evs_checkpoints WHERE projection = 'mailer'");
  }
  {
    Mailer mailer(effects_db);
    evs::ProjectionEngine engine(*store);
    engine.add(mailer, po);
    engine.start();
    REQUIRE(engine.wait_for("mailer", store->last_position().value(), 20s));
    CHECK(mailer.calls() == 0);
    CHECK(effects(effects_db) == each_once(evs::test::load_log(*store)));

    // New events still get their effect, once.
    evs::test::append_all(*store, gen, 30);
    REQUIRE(engine.wait_for("mailer", store->last_position().value(), 20s));
    engine.stop();
    CHECK(mailer.calls() > 0);
    CHECK(effects(effects_db) == each_once(evs::test::load_log(*store)));
  }

  // Control: without the inbox the same redelivery does repeat every effect, so the checks above can fail.
  {
    RawDb db(dir / "projections.db");
    db.exec("DELETE FROM evs_checkpoints WHERE projection = 'mailer'");
    db.exec("DELETE FROM evs_inbox WHERE projection = 'mailer'");
  }
  {
    Mailer mailer(effects_db);
    evs::ProjectionEngine engine(*store);
    engine.add(mailer, po);
    engine.start();
    REQUIRE(engine.wait_for("mailer", store->last_position().value(), 20s));
    engine.stop();
    CHECK(effects(effects_db) == each_once(evs::test::load_log(*store), 2));
  }
}

// ---------------------------------------------------------------------------------------------------------
// Read-your-writes

TEST_CASE("wait_for returns once the projection has passed the position, and reports time-outs and misuse") {
  evs::test::TempDir dir;
  auto store = open_sqlite(dir / "events.db");
  shop::Generator gen(6, 10);
  evs::test::append_all(*store, gen, 50);

  Recorder<"ryw"> recorder;
  evs::ProjectionEngine engine(*store);
  engine.add(recorder);
  engine.start();

  SUBCASE("read-your-writes") {
    for (int i = 0; i < 20; ++i) {
      const std::string stream = "order-ryw" + std::to_string(i % 3);
      const auto e = shop::make(shop::ItemAdded{stream, "sku", 1, 1});
      const auto appended = store->append(stream, evs::ExpectedVersion::any(), {&e, 1});
      REQUIRE(appended);
      REQUIRE(engine.wait_for("ryw", appended->last_position, 10s));
      CHECK_MESSAGE(recorder.has(appended->last_position), "wait_for returned before the event was handled");
    }
    // The asynchronous form.
    std::promise<evs::Result<void>> done;
    engine.async_wait_for("ryw", store->last_position().value(), 10s,
                          [&](evs::Result<void> r) { done.set_value(std::move(r)); });
    auto f = done.get_future();
    REQUIRE(f.wait_for(15s) == std::future_status::ready);
    CHECK(f.get());
  }
  SUBCASE("an unreachable position times out") {
    const std::uint64_t unreachable = store->last_position().value() + 1000;
    const auto r = engine.wait_for("ryw", unreachable, 200ms);
    REQUIRE_FALSE(r);
    CHECK(r.error().is(evs::errc::timed_out));
    CHECK_FALSE(r.error().message.empty());
  }
  SUBCASE("an unknown projection is invalid_argument") {
    const auto r = engine.wait_for("no_such_projection", 1, 1s);
    REQUIRE_FALSE(r);
    CHECK(r.error().is(evs::errc::invalid_argument));
    CHECK_FALSE(engine.health("no_such_projection").has_value());
  }
  SUBCASE("stop wakes waiters with shutting_down, and later waits fail the same way") {
    const std::uint64_t unreachable = store->last_position().value() + 1000;
    auto waiter = std::async(std::launch::async, [&] { return engine.wait_for("ryw", unreachable, 60s); });
    REQUIRE(engine.wait_for("ryw", store->last_position().value(), 10s));  // the waiter is most likely waiting
    engine.stop();
    REQUIRE(waiter.wait_for(10s) == std::future_status::ready);
    const auto r = waiter.get();
    REQUIRE_FALSE(r);
    CHECK(r.error().is(evs::errc::shutting_down));
    const auto after = engine.wait_for("ryw", unreachable, 1s);
    REQUIRE_FALSE(after);
    CHECK(after.error().is(evs::errc::shutting_down));
  }
  engine.stop();
}

TEST_CASE("add() rejects duplicate names, SQL and effect projections without a database, and late registration") {
  evs::MemoryEventStore store;
  evs::test::TempDir dir;
  evs::ProjectionEngine engine(store);
  Recorder<"dup"> a, b;
  engine.add(a);
  auto code_of = [](auto&& f) {
    try {
      f();
    } catch (const evs::Exception& x) {
      return x.error().code;
    }
    return std::error_code{};
  };
  CHECK(code_of([&] { engine.add(b); }) == evs::errc::invalid_argument);
  shop::ShopStats stats;
  CHECK(code_of([&] { engine.add(stats); }) == evs::errc::invalid_argument);
  Mailer mailer(dir / "effects.db");
  CHECK(code_of([&] { engine.add(mailer); }) == evs::errc::invalid_argument);
  engine.start();
  Recorder<"late"> late;
  CHECK(code_of([&] { engine.add(late); }) == evs::errc::invalid_argument);
  engine.stop();
}

// ---------------------------------------------------------------------------------------------------------
// Health

TEST_CASE("health reports live with no lag once caught up, counts, and a memory projection rebuilds on restart") {
  evs::test::TempDir dir;
  auto store = open_sqlite(dir / "events.db");
  shop::Generator gen(8, 30, 10);
  const std::uint64_t last = evs::test::fill(*store, gen, 1000);
  const auto log = evs::test::load_log(*store);
  const std::size_t handled = evs::test::handled_positions(log).size();

  {
    Recorder<"view"> view;
    // A little work per event keeps the last catch-up batch (380 events) in progress for a while.
    view.before = [](const evs::RecordedEvent&) { std::this_thread::sleep_for(std::chrono::microseconds(100)); };
    shop::ShopStats stats;
    evs::ProjectionEngine engine(*store);
    engine.add(view);
    evs::ProjectionOptions po;
    po.database = dir / "read-model.db";
    engine.add(stats, po);
    CHECK(engine.health("view")->state == evs::ProjectionState::starting);
    engine.start();
    // "live" means at the head of the log, waiting for new events: nothing is appended meanwhile, so no
    // snapshot may say live while events are still to be processed.
    int live_with_lag = 0;
    std::string example;
    REQUIRE(eventually([&] {
      bool all = true;
      for (const char* name : {"view", "shop_stats"}) {
        const auto h = engine.health(name);
        if (h->state == evs::ProjectionState::live && h->lag_events > 0 && live_with_lag++ == 0)
          example = std::string(name) + " is live at position " + std::to_string(h->position) + " with lag " +
                    std::to_string(h->lag_events) + " (head " + std::to_string(h->head) + ")";
        all = all && h->state == evs::ProjectionState::live && h->lag_events == 0;
      }
      return all;
    }));
    CHECK_MESSAGE(live_with_lag == 0, live_with_lag << " snapshots said live with a backlog, e.g. " << example);
    for (const std::string name : {"view", "shop_stats"}) {
      CAPTURE(name);
      const auto h = engine.health(name);
      REQUIRE(h);
      CHECK(h->name == name);
      CHECK(h->position == last);
      CHECK(h->head == last);
      CHECK(h->lag_events == 0);
      CHECK(h->lag_seconds == 0);
      CHECK(h->processed == handled);
      CHECK(h->dead_letters == 0);
      CHECK(h->last_error.empty());
    }
    CHECK(engine.health("view")->kind == evs::ProjectionKind::memory);
    CHECK(engine.health("shop_stats")->kind == evs::ProjectionKind::sql);
    CHECK(engine.health().size() == 2);

    // New events: the projections follow and are live again.
    const std::uint64_t more = evs::test::append_all(*store, gen, 20);
    REQUIRE(engine.wait_for("view", more, 10s));
    REQUIRE(eventually([&] {
      const auto h = engine.health("view");
      return h->state == evs::ProjectionState::live && h->lag_events == 0 && h->head >= more;
    }));
    engine.stop();
    CHECK(engine.health("view")->state == evs::ProjectionState::stopped);
    CHECK(engine.health("shop_stats")->state == evs::ProjectionState::stopped);
  }

  // A new process: the memory view starts empty and rebuilds from the whole log; the SQL one continues.
  Recorder<"view"> view;
  shop::ShopStats stats;
  evs::ProjectionEngine engine(*store);
  engine.add(view);
  evs::ProjectionOptions po;
  po.database = dir / "read-model.db";
  engine.add(stats, po);
  engine.start();
  const std::uint64_t now = store->last_position().value();
  REQUIRE(engine.wait_for("view", now, 20s));
  REQUIRE(engine.wait_for("shop_stats", now, 20s));
  const auto full_log = evs::test::load_log(*store);
  check_exactly_once_in_order(view.seen(), full_log);
  CHECK(engine.health("view")->processed == evs::test::handled_positions(full_log).size());
  CHECK(engine.health("shop_stats")->processed == 0);
  engine.stop();
  evs::test::check_read_model(dir / "read-model.db", full_log);
}

TEST_CASE("health counts dead letters and shows the last error") {
  evs::test::TempDir dir;
  auto store = open_sqlite(dir / "events.db");
  const std::uint64_t poison = append_with_poison(*store);
  Recorder<"recorder"> recorder;
  recorder.before = [&](const evs::RecordedEvent& e) {
    if (e.position == poison) throw std::runtime_error("cannot handle this one");
  };
  evs::ProjectionOptions po;
  po.database = dir / "projections.db";
  po.retry.max_attempts = 1;
  {
    evs::ProjectionEngine engine(*store);
    engine.add(recorder, po);
    engine.start();
    REQUIRE(engine.wait_for("recorder", store->last_position().value(), 10s));
    const auto h = engine.health("recorder");
    CHECK(h->dead_letters == 1);
    CHECK(h->last_error.find("cannot handle this one") != std::string::npos);
    engine.stop();
  }
  // The count is "all time, if stored": a new engine on the same database still reports it.
  Recorder<"recorder"> again;
  evs::ProjectionEngine engine(*store);
  engine.add(again, po);
  engine.start();
  REQUIRE(engine.wait_for("recorder", store->last_position().value(), 10s));
  CHECK(engine.health("recorder")->dead_letters == 1);
  engine.stop();
}

TEST_CASE("a projection with until_position processes nothing after that position and waits there") {
  evs::MemoryEventStore store;
  auto append = [&](const std::string& stream, const evs::EventData& e) {
    REQUIRE(store.append(stream, evs::ExpectedVersion::any(), {&e, 1}));
  };
  for (int i = 0; i < 20; ++i) append("order-1", shop::make(shop::ItemAdded{"order-1", "sku", 1, 1}));
  for (int i = 0; i < 20; ++i) append("audit-1", shop::make(shop::AuditNoted{"not handled"}));  // 21..40
  Recorder<"as_of"> recorder;
  evs::ProjectionEngine engine(store);
  evs::ProjectionOptions po;
  po.until_position = 30;
  SUBCASE("one batch") {}
  SUBCASE("full batches, each reading the next ahead, up to the bound") { po.batch_size = 7; }
  engine.add(recorder, po);
  engine.start();
  REQUIRE(engine.wait_for("as_of", 30, 10s));
  for (int i = 0; i < 10; ++i) append("order-1", shop::make(shop::ItemAdded{"order-1", "sku", 1, 1}));  // 41..50
  REQUIRE(eventually([&] { return engine.health("as_of")->state == evs::ProjectionState::live; }));
  const auto r = engine.wait_for("as_of", 41, 300ms);
  REQUIRE_FALSE(r);
  CHECK(r.error().is(evs::errc::timed_out));
  CHECK(recorder.count() == 20);
  CHECK_MESSAGE(engine.health("as_of")->position == 30, "a projection as of position 30 reports position "
                                                            << engine.health("as_of")->position);
  engine.stop();
}

TEST_CASE("a read-ahead batch that crosses until_position is cut at the bound") {
  evs::MemoryEventStore store;
  for (int i = 0; i < 40; ++i) {
    const auto e = shop::make(shop::ItemAdded{"order-1", "sku", 1, 1});
    REQUIRE(store.append("order-1", evs::ExpectedVersion::any(), {&e, 1}));
  }
  Recorder<"as_of"> recorder;
  evs::ProjectionEngine engine(store);
  evs::ProjectionOptions po;
  po.until_position = 30;
  po.batch_size = 7;  // batches 1-7, ..., 22-28, then 29-35 read ahead and cut to 29-30
  engine.add(recorder, po);
  engine.start();
  REQUIRE(engine.wait_for("as_of", 30, 10s));
  REQUIRE(eventually([&] { return engine.health("as_of")->state == evs::ProjectionState::live; }));
  engine.stop();
  std::vector<std::uint64_t> expected(30);
  std::iota(expected.begin(), expected.end(), 1);
  CHECK(evs::test::positions_of(recorder.seen()) == expected);
  CHECK(engine.health("as_of")->position == 30);
}

// ---------------------------------------------------------------------------------------------------------
// Stop and restart

TEST_CASE("a SQL projection stopped mid catch-up and restarted continues from its checkpoint without reprocessing") {
  evs::test::TempDir dir;
  auto store = open_sqlite(dir / "events.db");
  shop::Generator gen(9, 100, 30);
  evs::test::fill(*store, gen, 20000);
  const auto model = dir / "read-model.db";

  shop::ShopStats stats;
  evs::ProjectionEngine engine(*store);
  evs::ProjectionOptions po;
  po.database = model;
  po.batch_size = 200;
  engine.add(stats, po);
  engine.start();
  REQUIRE(eventually([&] { return engine.health("shop_stats")->position > 0; }));
  engine.stop();
  CHECK(engine.health("shop_stats")->state == evs::ProjectionState::stopped);
  const std::uint64_t stopped_at = engine.health("shop_stats")->position;
  auto check = evs::test::check_read_model(model, evs::test::load_log(*store));
  CHECK(check.max_checkpoint == stopped_at);
  MESSAGE("stopped at " << stopped_at << " of " << store->last_position().value());

  // start() again on the same engine, with new events arriving.
  evs::test::append_all(*store, gen, 50);
  engine.start();
  REQUIRE(engine.wait_for("shop_stats", store->last_position().value(), 30s));
  auto log = evs::test::load_log(*store);
  std::size_t after_stop = 0, before_stop = 0;
  for (const auto& e : log)
    if (e.handled) ++(e.position > stopped_at ? after_stop : before_stop);
  // "processed since start": since this start(), or since the engine was made; never the history again.
  const auto processed = engine.health("shop_stats")->processed;
  CHECK_MESSAGE((processed == after_stop || processed == after_stop + before_stop), "processed " << processed);
  engine.stop();
  check = evs::test::check_read_model(model, log);
  CHECK(check.max_checkpoint == log.size());

  // A new engine on the same files.
  evs::test::append_all(*store, gen, 50);
  shop::ShopStats stats2;
  evs::ProjectionEngine engine2(*store);
  engine2.add(stats2, po);
  engine2.start();
  REQUIRE(engine2.wait_for("shop_stats", store->last_position().value(), 30s));
  engine2.stop();
  log = evs::test::load_log(*store);
  check = evs::test::check_read_model(model, log);
  CHECK(check.max_checkpoint == log.size());
  CHECK(check.processed_rows == evs::test::handled_positions(log).size());
}
