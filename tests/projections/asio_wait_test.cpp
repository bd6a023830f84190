// The Asio completion-token form of read-your-writes.
#include "../support/temp_dir.hpp"
#include "../support/test_events.hpp"

#include <evs/eventstore/sqlite_event_store.hpp>
#include <evs/projections/asio.hpp>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/use_future.hpp>

#include <doctest/doctest.h>

#include <atomic>
#include <condition_variable>
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
