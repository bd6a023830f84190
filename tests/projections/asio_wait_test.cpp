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
