// ProjectionEngine partitions: per-stream order, partitions in parallel, the same read model with any count.
#include "projection_test_support.hpp"

#include "../support/temp_dir.hpp"

#include <evs/eventstore/memory_event_store.hpp>
#include <evs/projections/engine.hpp>

#include <doctest/doctest.h>

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <map>
#include <mutex>
#include <set>
#include <thread>
#include <unordered_set>

namespace {

using namespace std::chrono_literals;
using evs::test::open_sqlite;
using evs::test::RawDb;
using evs::test::Writers;

}  // namespace

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
