// ProjectionEngine on a caller's io_context: every way of stopping it ends (none may hang), and nothing of
// the engine runs after it is gone. Each scenario runs on its own thread under a generous bound: a hang
// fails the test instead of hanging the suite (the hung thread is left behind with what it owns).
#include "../support/temp_dir.hpp"
#include "../support/test_events.hpp"

#include <evs/eventstore/sqlite_event_store.hpp>
#include <evs/projections/engine.hpp>

#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>

#include <doctest/doctest.h>

#include <atomic>
#include <functional>
#include <future>
#include <memory>
#include <mutex>
#include <optional>
#include <thread>
#include <vector>

namespace {

using namespace std::chrono_literals;
namespace asio = boost::asio;

struct Counter : evs::MemoryProjection<Counter, testdomain::Deposited> {
  static constexpr std::string_view name = "counter";
  std::atomic<int> seen{0};
  void handle(const testdomain::Deposited&, const evs::RecordedEvent&) { ++seen; }
};

// Blocks in its handler until released (a batch in hand while the engine stops).
struct Gate : evs::MemoryProjection<Gate, testdomain::Deposited> {
  static constexpr std::string_view name = "gate";
  std::promise<void> entered;
  std::shared_future<void> release;
  void handle(const testdomain::Deposited&, const evs::RecordedEvent&) {
    entered.set_value();
    release.wait();
  }
};

// What a scenario observed, read on the test thread once it ended.
struct Outcome {
  std::mutex mu;
  std::vector<std::string> notes;  // failed expectations, as text
  void expect(bool ok, const std::string& what) {
    std::lock_guard lock(mu);
    if (!ok) notes.push_back(what);
  }
};

// Runs `scenario` on its own thread and fails the test if it has not ended within a generous bound (the
// hung thread is then left behind, with everything it owns), or if one of its expectations failed.
void run_bounded(std::function<void(Outcome&)> scenario) {
  auto outcome = std::make_shared<Outcome>();
  auto done = std::make_shared<std::promise<void>>();
  auto ended = done->get_future();
  std::thread([scenario = std::move(scenario), outcome, done] {
    scenario(*outcome);
    done->set_value();
  }).detach();
  REQUIRE_MESSAGE(ended.wait_for(60s) == std::future_status::ready,
                  "the scenario hung (stop or destruction never returned)");
  for (const auto& note : outcome->notes) FAIL_CHECK(note);
}

// A store with a counter projection, and the caller's io_context an engine runs on.
struct Rig {
  evs::test::TempDir dir;
  evs::SqliteEventStore store{evs::SqliteOptions{dir / "events.db", evs::Durability::normal}};
  Counter counter;
  asio::io_context io;

  // Appends one handled event; its position (0 if the append failed).
  std::uint64_t deposit() {
    auto r = store.append("acc-1", evs::ExpectedVersion::any(), std::vector{testdomain::deposit(5)});
    return r ? r->last_position : 0;
  }
};

bool is(const std::optional<evs::Result<void>>& r, evs::errc code) { return r && !*r && r->error().is(code); }

}  // namespace

TEST_CASE("an engine on a caller's io_context stops from a handler on the io_context's only thread") {
  for (const bool inside_waiter : {true, false}) {
    CAPTURE(inside_waiter);
    run_bounded([inside_waiter](Outcome& outcome) {
      Rig rig;
      evs::ProjectionEngine engine(rig.store, rig.io);
      engine.add(rig.counter);
      engine.start();
      const std::uint64_t at = rig.deposit();
      bool stopped = false;
      engine.async_wait_for("counter", at, 30s, [&](evs::Result<void> r) {
        outcome.expect(bool(r), "the wait failed");
        if (inside_waiter) {  // inside the projection's own step
          engine.stop();
          stopped = true;
        } else {
          asio::post(rig.io, [&] {
            engine.stop();
            stopped = true;
          });
        }
      });
      rig.io.run();  // returns once the engine's work is done
      outcome.expect(stopped, "stop() did not return on the io thread");
      outcome.expect(rig.counter.seen == 1, "the event was not handled once");
      outcome.expect(engine.health("counter")->state == evs::ProjectionState::stopped, "the state is not stopped");
      auto late = engine.wait_for("counter", at + 1, 30s);
      outcome.expect(!late && late.error().is(evs::errc::shutting_down), "a wait after stop is not shutting_down");
    });
  }
}

TEST_CASE("an engine on a caller's io_context stops, and is destroyed, after run() returned") {
  for (const bool explicit_stop : {true, false}) {
    CAPTURE(explicit_stop);
    run_bounded([explicit_stop](Outcome& outcome) {
      Rig rig;
      auto engine = std::make_unique<evs::ProjectionEngine>(rig.store, rig.io);
      evs::ProjectionOptions po;
      po.database = rig.dir / "projections.db";  // lanes with a database: closed at stop or with the runner
      engine->add(rig.counter, po);
      engine->start();
      engine->async_wait_for("counter", rig.deposit(), 30s, [&](evs::Result<void>) { rig.io.stop(); });
      rig.io.run();
      if (explicit_stop) {
        engine->stop();
        outcome.expect(engine->health("counter")->state == evs::ProjectionState::stopped, "the state is not stopped");
      }
      engine.reset();
      // The leftovers in the io_context end without touching the destroyed engine.
      rig.io.restart();
      rig.io.run();
      outcome.expect(rig.counter.seen == 1, "the event was not handled once");
    });
  }
}

TEST_CASE("an engine on a caller's io_context that nobody runs any more stops: stop() runs what it needs") {
  run_bounded([](Outcome& outcome) {
    Rig rig;
    evs::ProjectionEngine engine(rig.store, rig.io);
    engine.add(rig.counter);
    engine.start();
    outcome.expect(rig.deposit() > 0, "append failed");
    rig.io.poll();  // runs what is ready, then returns without stopping the io_context
    engine.stop();
    outcome.expect(engine.health("counter")->state == evs::ProjectionState::stopped, "the state is not stopped");
  });
}

TEST_CASE("an engine destroyed with a pending wait deadline: the waiter gets shutting_down, the deadline finds nothing") {
  for (const bool io_stopped : {true, false}) {
    CAPTURE(io_stopped);
    run_bounded([io_stopped](Outcome& outcome) {
      Rig rig;
      std::atomic<int> calls{0};
      std::optional<evs::Result<void>> result;
      {
        evs::ProjectionEngine engine(rig.store, rig.io);
        engine.add(rig.counter);
        engine.start();
        engine.async_wait_for("counter", 1000, 200ms, [&](evs::Result<void> r) {
          ++calls;
          result = std::move(r);
        });
        rig.io.poll();  // the deadline timer is armed
        if (io_stopped) rig.io.stop();
      }
      std::this_thread::sleep_for(300ms);  // the deadline has passed: its handler runs after the engine is gone
      rig.io.restart();
      rig.io.run();
      outcome.expect(calls == 1, "the waiter was not completed exactly once");
      outcome.expect(is(result, evs::errc::shutting_down) || is(result, evs::errc::timed_out),
                     "the waiter got neither shutting_down nor (on a very slow machine) timed_out");
    });
  }
}

TEST_CASE("a wait registered while the engine stops gets shutting_down at once, and a pending one gets it at the end") {
  run_bounded([](Outcome& outcome) {
    Rig rig;
    Gate gate;
    std::promise<void> release;
    gate.release = release.get_future().share();
    evs::ProjectionEngine engine(rig.store, rig.io);
    engine.add(gate);
    engine.start();
    // Two threads: one is held by the blocked handler, the other serves the waits' deadlines.
    std::thread first([&] { rig.io.run(); });
    std::thread second([&] { rig.io.run(); });
    outcome.expect(rig.deposit() > 0, "append failed");
    gate.entered.get_future().wait();  // the batch in hand blocks in the handler
    auto pending = std::async(std::launch::async, [&] { return engine.wait_for("gate", 1000, 60s); });
    auto stopping = std::async(std::launch::async, [&] { engine.stop(); });
    // Once stop() has begun, a new wait returns at once, while the batch in hand still holds stop() up.
    for (;;) {
      auto during = engine.wait_for("gate", 1000, 1ms);
      if (!during && during.error().is(evs::errc::shutting_down)) break;
      outcome.expect(!during && during.error().is(evs::errc::timed_out), "an unexpected wait result");
      std::this_thread::sleep_for(1ms);
    }
    outcome.expect(stopping.wait_for(0s) != std::future_status::ready, "stop() did not wait for the batch in hand");
    release.set_value();
    stopping.get();
    auto r = pending.get();  // no std::future_error
    outcome.expect(!r && r.error().is(evs::errc::shutting_down), "the pending wait did not get shutting_down");
    first.join();
    second.join();
  });
}
