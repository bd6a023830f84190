// PostgreSQL restarted mid-run (pg_ctl stop -m immediate, then start: a crash, no shutdown checkpoint), on a
// cluster of the test's own: appenders keep appending and a projection keeps following through it. The
// appends waiting on the lost server are retried by the store with their event ids once it is back, so
// none fails, nothing acknowledged is lost and nothing is stored twice; the projection ends equal to the
// log, every event once and in order.
#include "../support/pg_server.hpp"
#include "projection_test_support.hpp"

#include <evs/eventstore/pg_event_store.hpp>

#include <doctest/doctest.h>

#include <atomic>
#include <mutex>
#include <set>
#include <thread>

using namespace std::chrono_literals;

namespace {

using evs::test::LogEvent;

struct Acked {
  std::mutex mutex;
  std::vector<std::string> ids;  // event ids of acknowledged appends
  std::vector<std::string> failures;
};

void append_until(evs::EventStore& store, unsigned seed, const std::atomic<bool>& stop, Acked& acked) {
  shop::Generator gen(seed, 10, 3, "r" + std::to_string(seed) + "order");
  while (!stop) {
    shop::Append a = gen.next();
    auto r = store.append(a.stream, evs::ExpectedVersion::any(), a.events);
    std::lock_guard lock(acked.mutex);
    if (!r) {
      acked.failures.push_back(r.error().what());
      continue;
    }
    for (const auto& e : a.events) acked.ids.push_back(e.event_id.to_string());
  }
}

}  // namespace

TEST_CASE("PostgreSQL restarted mid-run: appenders and a projection reconnect and carry on, nothing acknowledged "
          "is lost or stored twice") {
  evs::test::PrivateCluster cluster;
  evs::PgOptions o;
  o.url = cluster.url();
  o.reconnect_timeout = 60s;
  evs::PgEventStore store(o);

  evs::test::Recorder<"through_restart"> recorder;
  evs::ProjectionEngine engine(store);
  engine.add(recorder);
  engine.start();

  Acked acked;
  std::atomic<bool> stop{false};
  std::vector<std::thread> writers;
  for (unsigned t = 0; t < 3; ++t) writers.emplace_back([&, t] { append_until(store, 7 + t, stop, acked); });
  const auto acked_now = [&] {
    std::lock_guard lock(acked.mutex);
    return acked.ids.size();
  };
  while (acked_now() < 300) std::this_thread::sleep_for(5ms);
  const std::size_t before = acked_now();
  cluster.restart_immediate();
  // Appending goes on after the restart.
  const auto deadline = std::chrono::steady_clock::now() + 60s;
  while (acked_now() < before + 300 && std::chrono::steady_clock::now() < deadline) std::this_thread::sleep_for(5ms);
  stop = true;
  for (auto& w : writers) w.join();
  MESSAGE(before << " events acknowledged before the restart, " << acked.ids.size() << " in all");
  CHECK(acked.ids.size() >= before + 300);
  for (const std::string& f : acked.failures) CHECK_MESSAGE(false, "an append failed: " << f);

  const auto log = evs::test::load_log(store);
  std::map<std::string, int> stored;
  for (const LogEvent& e : log) ++stored[e.event_id.to_string()];
  for (const auto& entry : stored)
    CHECK_MESSAGE(entry.second == 1, entry.first << " is stored " << entry.second << " times");
  std::size_t missing = 0;
  for (const std::string& id : acked.ids) missing += stored.count(id) == 0 ? 1 : 0;
  CHECK_MESSAGE(missing == 0, missing << " acknowledged events are not stored");

  REQUIRE(engine.wait_for("through_restart", log.back().position, 60s));
  evs::test::check_exactly_once_in_order(recorder.seen(), log);
  engine.stop();
}
