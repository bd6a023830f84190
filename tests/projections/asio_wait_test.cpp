// The Asio completion-token form of read-your-writes.
#include "../support/temp_dir.hpp"
#include "../support/test_events.hpp"

#include <evs/eventstore/sqlite_event_store.hpp>
#include <evs/projections/asio.hpp>

#include <boost/asio/bind_executor.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/use_future.hpp>

#include <doctest/doctest.h>

#include <atomic>
#include <condition_variable>
#include <future>
#include <mutex>
#include <thread>

namespace {

struct Counter : evs::MemoryProjection<Counter, testdomain::Deposited> {
  static constexpr std::string_view name = "counter";
  std::atomic<int> seen{0};
  void handle(const testdomain::Deposited&, const evs::RecordedEvent&) { ++seen; }
};

}  // namespace

TEST_CASE("async_wait_for completes through a coroutine and a future once the projection passes the position") {
  evs::test::TempDir dir;
  evs::SqliteEventStore store({dir / "events.db", evs::Durability::normal});
  Counter counter;
  evs::ProjectionEngine engine(store);
  engine.add(counter);
  engine.start();
  auto appended = store.append("acc-1", evs::ExpectedVersion::any(), std::vector{testdomain::deposit(5)}).value();

  auto via_coroutine = boost::asio::co_spawn(
      engine.io_context(),
      [&]() -> boost::asio::awaitable<evs::Result<void>> {
        co_return co_await evs::async_wait_for(engine, "counter", appended.last_position, std::chrono::seconds(5),
                                               boost::asio::use_awaitable);
      },
      boost::asio::use_future);
  CHECK(via_coroutine.get());
  CHECK(counter.seen == 1);

  auto too_far = evs::async_wait_for(engine, "counter", appended.last_position + 10, std::chrono::milliseconds(30),
                                     boost::asio::use_future);
  auto r = too_far.get();
  REQUIRE_FALSE(r);
  CHECK(r.error().is(evs::errc::timed_out));
  engine.stop();
}

namespace {

// Holds its first event until released (or 30 s pass), so its batch is busy for as long as the test wants.
struct Slow : evs::MemoryProjection<Slow, testdomain::Deposited> {
  static constexpr std::string_view name = "slow";
  std::mutex mu;
  std::condition_variable cv;
  bool released = false;
  std::atomic<int> handled{0};
  void handle(const testdomain::Deposited&, const evs::RecordedEvent&) {
    std::unique_lock lock(mu);
    cv.wait_for(lock, std::chrono::seconds(30), [&] { return released; });
    ++handled;
  }
  void release() {
    std::lock_guard lock(mu);
    released = true;
    cv.notify_all();
  }
};

}  // namespace

TEST_CASE("a wait times out on time even while the projection is busy with a long batch") {
  evs::test::TempDir dir;
  evs::SqliteEventStore store({dir / "events.db", evs::Durability::normal});
  std::vector<evs::EventData> batch;
  for (int i = 0; i < 300; ++i) batch.push_back(testdomain::deposit(1));
  REQUIRE(store.append("acc-1", evs::ExpectedVersion::any(), batch));  // one batch, held at its first event
  Slow slow;
  evs::ProjectionEngine engine(store);
  engine.add(slow);
  engine.start();
  auto r = engine.wait_for("slow", 300, std::chrono::milliseconds(100));
  // The wait ended while the batch was still held at its first event, not after the batch.
  CHECK_MESSAGE(slow.handled == 0, "the 100 ms wait returned only after " << slow.handled << " events were handled");
  slow.release();
  REQUIRE_FALSE(r);
  CHECK(r.error().is(evs::errc::timed_out));
  engine.stop();
}

TEST_CASE("async_wait_for posts an immediate result to the handler's executor and holds work there while pending") {
  evs::test::TempDir dir;
  evs::SqliteEventStore store({dir / "events.db", evs::Durability::normal});
  Counter counter;
  evs::ProjectionEngine engine(store);
  engine.add(counter);
  engine.start();
  boost::asio::io_context handlers;  // the handlers' own executor, run by the test

  SUBCASE("an immediate completion never runs inside the initiating call, even on the handler's own thread") {
    bool ran = false;
    bool ran_inside = false;
    boost::asio::post(handlers, [&] {
      evs::async_wait_for(engine, "counter", 0, std::chrono::seconds(5),
                          boost::asio::bind_executor(handlers, [&](evs::Result<void> r) {
                            CHECK(r);
                            ran = true;
                          }));
      ran_inside = ran;
    });
    handlers.run();
    CHECK_FALSE(ran_inside);
    CHECK(ran);
  }
  SUBCASE("a pending wait keeps the handler's io_context from running out of work") {
    std::atomic<bool> ran{false};
    evs::async_wait_for(engine, "counter", 1, std::chrono::seconds(30),
                        boost::asio::bind_executor(handlers, [&](evs::Result<void> r) {
                          CHECK(r);
                          ran = true;
                        }));
    auto returned = std::async(std::launch::async, [&] {
      handlers.run();  // must not return before the handler has run
      return ran.load();
    });
    CHECK(returned.wait_for(std::chrono::milliseconds(50)) == std::future_status::timeout);
    REQUIRE(store.append("acc-1", evs::ExpectedVersion::any(), std::vector{testdomain::deposit(5)}));
    REQUIRE(returned.wait_for(std::chrono::seconds(30)) == std::future_status::ready);
    CHECK(returned.get());
  }
  engine.stop();
}
