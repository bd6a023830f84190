// ProjectionEngine behaviour in one process: catch-up to live hand-over, read-your-writes, health,
// stop/restart, and side effects not repeated on redelivery. Partitions and failures have their own files.
#include "projection_test_support.hpp"

#include "../support/backends.hpp"
#include "../support/temp_dir.hpp"

#include <evs/eventstore/memory_event_store.hpp>
#include <evs/projections/engine.hpp>

#include <doctest/doctest.h>

#include <algorithm>
#include <atomic>
#include <future>
#include <map>
#include <numeric>
#include <set>
#include <thread>

namespace {

using namespace std::chrono_literals;
using evs::test::LogEvent;
using evs::test::open_sqlite;
using evs::test::RawDb;
using evs::test::Recorder;
using evs::test::Writers;
using evs::test::check_exactly_once_in_order;
using evs::test::eventually;

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
