// ProjectionEngine failures: retries with backoff, dead letters, rolled-back batches and checkpoints,
// OnFailure::stop, stop() during a backoff, and projections that cannot start.
#include "projection_test_support.hpp"

#include "../support/temp_dir.hpp"

#include <evs/eventstore/sqlite_event_store.hpp>
#include <evs/projections/engine.hpp>

#include <doctest/doctest.h>

#include <atomic>
#include <mutex>

namespace {

using namespace std::chrono_literals;
using evs::test::open_sqlite;
using evs::test::RawDb;
using evs::test::Recorder;
using evs::test::eventually;

}  // namespace

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

// The rig of the retry tests: a store of 10 item events whose 6th ("poison") the test makes fail, a
// recorder, and a projection database beside the store.
struct PoisonRig {
  evs::test::TempDir dir;
  std::unique_ptr<evs::SqliteEventStore> store = open_sqlite(dir / "events.db");
  const std::uint64_t poison = append_with_poison(*store);
  const std::uint64_t last = store->last_position().value();
  Recorder<"recorder"> recorder;
  Attempts attempts;

  // Options of a SQL-backed projection in dir/projections.db (checkpoints and dead letters go there).
  evs::ProjectionOptions options() const {
    evs::ProjectionOptions po;
    po.database = dir / "projections.db";
    return po;
  }
  // Nothing was parked.
  void check_no_dead_letters() const {
    RawDb db(dir / "projections.db");
    CHECK((!db.has_table("evs_dead_letters") || db.scalar("SELECT count(*) FROM evs_dead_letters") == 0));
  }
};

}  // namespace

TEST_CASE_FIXTURE(PoisonRig, "an event whose handler always throws is retried with backoff, then parked, and later events go on") {
  recorder.before = [&](const evs::RecordedEvent& e) {
    if (e.position != poison) return;
    attempts.add();
    throw std::runtime_error("poison pill in " + e.stream_id);
  };
  evs::ProjectionEngine engine(*store);
  evs::ProjectionOptions po = options();
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

TEST_CASE_FIXTURE(PoisonRig, "a dead letter marked for retry is re-delivered: settled as retried on success, parked again on failure") {
  std::atomic<bool> broken{true};
  std::atomic<int> poison_handled{0};
  recorder.before = [&](const evs::RecordedEvent& e) {
    if (e.position != poison) return;
    if (broken) throw std::runtime_error("still broken");
    ++poison_handled;
  };
  evs::ProjectionEngine engine(*store);
  evs::ProjectionOptions po = options();
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

TEST_CASE_FIXTURE(PoisonRig, "OnFailure::stop fails the projection at the poison event and processes nothing after it") {
  recorder.before = [&](const evs::RecordedEvent& e) {
    if (e.position != poison) return;
    attempts.add();
    throw std::runtime_error("poison pill");
  };
  evs::ProjectionEngine engine(*store);
  evs::ProjectionOptions po = options();
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
  check_no_dead_letters();
}

TEST_CASE_FIXTURE(PoisonRig, "a handler that fails twice and then succeeds is not parked") {
  recorder.before = [&](const evs::RecordedEvent& e) {
    if (e.position != poison) return;
    attempts.add();
    if (attempts.count() <= 2) throw std::runtime_error("transient failure");
  };
  evs::ProjectionEngine engine(*store);
  evs::ProjectionOptions po = options();
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
  check_no_dead_letters();
}

TEST_CASE_FIXTURE(PoisonRig, "stop() during a retry backoff returns promptly, and a restart retries the event") {
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


TEST_CASE_FIXTURE(PoisonRig, "health counts dead letters and shows the last error") {
  recorder.before = [&](const evs::RecordedEvent& e) {
    if (e.position == poison) throw std::runtime_error("cannot handle this one");
  };
  evs::ProjectionOptions po = options();
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

TEST_CASE("an event stored at a version newer than the code knows is parked as unsupported, never misread") {
  // What a process still on an old build meets during a rolling deploy (docs/schema-evolution.md).
  evs::test::TempDir dir;
  auto store = open_sqlite(dir / "events.db");
  auto newer = shop::make(shop::ItemAdded{"order-1", "sku", 1, 100});
  newer.schema_version = 9;
  REQUIRE(store->append("order-1", evs::ExpectedVersion::any(), {&newer, 1}));
  auto current = shop::make(shop::ItemAdded{"order-1", "sku", 2, 100});
  const auto last = store->append("order-1", evs::ExpectedVersion::any(), {&current, 1});
  REQUIRE(last);

  Recorder<"recorder"> recorder;
  evs::ProjectionOptions po;
  po.database = dir / "projections.db";
  po.retry.max_attempts = 1;
  evs::ProjectionEngine engine(*store);
  engine.add(recorder, po);
  engine.start();
  REQUIRE(engine.wait_for("recorder", last->last_position, 10s));
  CHECK(evs::test::positions_of(recorder.seen()) == std::vector<std::uint64_t>{last->last_position});
  engine.stop();
  RawDb db(dir / "projections.db");
  const auto rows = db.query("SELECT position, error FROM evs_dead_letters");
  REQUIRE(rows.size() == 1);
  CHECK(rows[0][0] == "1");
  CHECK_MESSAGE(rows[0][1].find("version 9") != std::string::npos, rows[0][1]);
}
