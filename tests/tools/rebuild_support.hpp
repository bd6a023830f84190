// What the rebuild tests share on both backends: the log they fill, the totals a replay must give, the live
// engine that keeps running the projection, and the appends that keep coming while a rebuild runs.
#pragma once

#include "../support/store_compare.hpp"
#include "../support/test_events.hpp"
#include "totals_projection.hpp"

#include <evs/eventstore/event_store.hpp>
#include <evs/projections/engine.hpp>

#include <doctest/doctest.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <map>
#include <string>
#include <thread>
#include <vector>

namespace rebuildtest {

// stream -> (sum of cents, number of deposits)
using TotalsTable = std::map<std::string, std::pair<std::int64_t, std::int64_t>>;

// Appends `events` deposits, 500 per append, round-robin over streams acc-0..acc-12 (shifted by `offset`);
// returns the last position once the store's readers see it.
inline std::uint64_t fill(evs::EventStore& store, int events, int offset = 0) {
  std::vector<evs::EventData> batch;
  std::uint64_t last = 0;
  for (int i = 0; i < events; ++i) {
    batch.push_back(testdomain::deposit(1 + (i + offset) % 97));
    if (batch.size() == 500 || i + 1 == events) {
      auto r = store.append("acc-" + std::to_string((i + offset) % 13), evs::ExpectedVersion::any(), batch);
      REQUIRE(r);
      last = r->last_position;
      batch.clear();
    }
  }
  evs::test::wait_for_head(store, last);
  return last;
}

// What the totals must be for the events up to `until`, straight from the log.
inline TotalsTable expected_totals(evs::EventStore& store, std::uint64_t until = UINT64_MAX) {
  TotalsTable out;
  for (const auto& e : evs::test::whole_log(store)) {
    if (e.position > until) break;
    const auto d = evs::decode<testdomain::Deposited>(e.payload, e.encoding).value();
    out[e.stream_id].first += d.cents;
    out[e.stream_id].second += 1;
  }
  return out;
}

// The live projection: Totals running into `database` on an engine of its own, started at once.
struct LiveTotals {
  Totals totals;
  evs::ProjectionEngine engine;
  LiveTotals(evs::EventStore& store, const std::string& database) : engine(store) {
    evs::ProjectionOptions options;
    options.database = database;
    engine.add(totals, options);
    engine.start();
  }
  bool wait_for(std::uint64_t position) {
    return static_cast<bool>(engine.wait_for(Totals::name, position, std::chrono::seconds(60)));
  }
};

// A thread that appends one deposit every 2 ms to streams acc-0..acc-12 until stop() (or destruction).

class BackgroundDeposits {
 public:
  explicit BackgroundDeposits(evs::EventStore& store)
      : thread_([this, &store] {
          for (int i = 0; running_; ++i) {
            (void)store.append("acc-" + std::to_string(i % 13), evs::ExpectedVersion::any(),
                               std::vector{testdomain::deposit(3)});
            std::this_thread::sleep_for(std::chrono::milliseconds(2));
          }
        }) {}
  ~BackgroundDeposits() { stop(); }
  BackgroundDeposits(const BackgroundDeposits&) = delete;
  BackgroundDeposits& operator=(const BackgroundDeposits&) = delete;

  void stop() {
    running_ = false;
    if (thread_.joinable()) thread_.join();
  }

 private:
  std::atomic<bool> running_{true};
  std::thread thread_;
};

}  // namespace rebuildtest
