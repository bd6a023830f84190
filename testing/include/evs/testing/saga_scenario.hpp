// Given/when/then for process managers (sagas), independent of any test framework: a failed expectation
// throws evs::testing::ScenarioFailure with what was expected and what the saga recorded.
//
//   evs::MemoryEventStore store;
//   Fulfilment saga(store, fake_services);                  // the process manager under test
//   evs::testing::SagaScenario scenario(saga, store);
//   scenario.given(OrderPlaced{"o1", ...})
//       .when(ReservationRejected{"o1", "out of stock"})
//       .then_commands({"RefundPayment", "CancelOrder"})
//       .then_status("o1", evs::SagaStatus::compensated)
//       .then_compensated("o1", {"payment", "order"});
//
//   scenario.given(OrderPlaced{"o2", ...}).when_deadline_passes("o2", "stock").then_commands({...});
//
// Events go through the process manager's real reaction path (load the instance, decide, store, issue),
// one at a time on the calling thread; no engine runs, so nothing happens behind the test's back and a
// deadline passes only when the test says so.
//
// What it checks and what it cannot:
//  - Commands are observed through the instance's audit trail (evs.saga.command_issued): their names and
//    order. Their arguments reach the application's command handlers, which the process manager calls
//    directly; to check those, give the process manager fakes that record them. Commands are really
//    issued, during given() too.
//  - A handler or command that throws is recorded; then_error() matches its message.
#pragma once

#include "evs/testing/aggregate_scenario.hpp"  // ScenarioFailure
#include "evs/eventstore/event_store.hpp"
#include "evs/projections/engine.hpp"
#include "evs/projections/process_manager.hpp"

#include <boost/describe/enum_to_string.hpp>

#include <filesystem>
#include <initializer_list>
#include <optional>
#include <string>
#include <vector>

namespace evs::testing {

template <class PM>
class SagaScenario {
 public:
  // `pm` must have been constructed over `store` and must outlive the scenario. The scenario attaches it
  // to an engine that it never starts (the engine's database file is therefore never created).
  SagaScenario(PM& pm, EventStore& store) : pm_(pm), store_(store), engine_(store) {
    ProjectionOptions o;
    o.database = std::filesystem::temp_directory_path() / "evs-saga-scenario-never-opened.db";
    pm_.attach(engine_, o);
  }

  // Optional correlation id put in the metadata of the events that follow (for sagas that use the
  // default key, the event's metadata.correlation_id).
  SagaScenario& correlated(std::string correlation_id) {
    correlation_ = std::move(correlation_id);
    return *this;
  }

  // Past events: delivered to the saga in order. Throws ScenarioFailure if the saga fails on one.
  template <Event... E>
  SagaScenario& given(const E&... events) {
    (deliver_given(events), ...);
    return *this;
  }

  // The event under test. What the saga records from here on is what the then_* calls look at.
  template <Event E>
  SagaScenario& when(const E& event) {
    return run([&] { deliver(event); });
  }

  // The deadline of `step` of instance `correlation_id` passes: delivers evs.saga.deadline_reached as
  // the timer would. Fails the scenario if the step is not pending with a deadline.
  SagaScenario& when_deadline_passes(const std::string& correlation_id, const std::string& step) {
    auto state = pm_.instance(correlation_id);
    if (!state) fail("when_deadline_passes: no saga instance " + correlation_id + ": " + state.error().what());
    auto it = state->pending.find(step);
    if (it == state->pending.end() || !it->second)
      fail("when_deadline_passes: step '" + step + "' of " + correlation_id + " is not pending with a deadline");
    EventData d = make(SagaDeadlineReached{step, *it->second});
    d.metadata.correlation_id = correlation_id;
    return run([&] { deliver_data(PM::stream_id_for(correlation_id), d); });
  }

  // Exactly these commands were issued by when(), in this order (names as passed to saga.send).
  SagaScenario& then_commands(std::initializer_list<std::string> expected) {
    require_ran("then_commands");
    std::vector<std::string> want(expected), got;
    for (const auto& e : recorded_)
      if (e.type == event_info_v<SagaCommandIssued>.name) got.push_back(decoded<SagaCommandIssued>(e).command);
    if (want != got) fail("expected commands " + join(want) + ", but the saga issued " + join(got) + errors());
    return *this;
  }
  SagaScenario& then_no_commands() { return then_commands({}); }

  SagaScenario& then_status(const std::string& correlation_id, SagaStatus expected) {
    require_ran("then_status");
    auto s = state_of(correlation_id);
    if (s.status != expected)
      fail("expected saga " + correlation_id + " to be " + name_of(expected) + ", it is " + name_of(s.status) + errors());
    return *this;
  }

  // The completed steps that were compensated, in the order compensation ran.
  SagaScenario& then_compensated(const std::string& correlation_id, std::initializer_list<std::string> steps) {
    require_ran("then_compensated");
    std::vector<std::string> want(steps);
    auto s = state_of(correlation_id);
    if (s.compensated != want) fail("expected compensated steps " + join(want) + ", got " + join(s.compensated));
    return *this;
  }

  SagaScenario& then_pending(const std::string& correlation_id, const std::string& step) {
    require_ran("then_pending");
    if (!state_of(correlation_id).pending.contains(step)) fail("expected step '" + step + "' to be pending");
    return *this;
  }

  // The saga (or a command it issued) threw with a message containing `text`.
  SagaScenario& then_error(const std::string& text) {
    require_ran("then_error");
    if (!error_) fail("expected an error containing '" + text + "', but the reaction succeeded");
    if (error_->find(text) == std::string::npos) fail("expected an error containing '" + text + "', got: " + *error_);
    return *this;
  }

  // Everything the saga recorded during when(), for checks the helpers above do not cover.
  const std::vector<RecordedEvent>& recorded() const { return recorded_; }

 private:
  template <class E>
  EventData make(const E& e) const {
    EventData d;
    d.type = std::string(event_info_v<E>.name);
    d.schema_version = event_info_v<E>.version;
    d.payload = encode(e, Encoding::binary);
    d.metadata.correlation_id = correlation_;
    return d;
  }

  template <class E>
  void deliver(const E& e) {
    deliver_data("scenario-" + std::to_string(++streams_), make(e));
  }
  template <class E>
  void deliver_given(const E& e) {
    try {
      deliver(e);
    } catch (const std::exception& ex) {
      fail("given " + std::string(event_info_v<E>.name) + ": the saga threw: " + ex.what());
    }
  }

  // Appends the event to the store (so it has a position and an id, as in production) and hands it to
  // the process manager as the engine would.
  void deliver_data(const std::string& stream, const EventData& d) {
    auto appended = store_.append(stream, ExpectedVersion::any(), std::span<const EventData>(&d, 1));
    if (!appended) fail("appending the event failed: " + appended.error().what());
    ReadStreamOptions o;
    o.from_version = appended->stream_version;
    o.max_count = 1;
    Projection& as_projection = pm_;  // the engine's entry point (Derived::handle hides it)
    as_projection.handle(store_.read_stream(stream, o).value().at(0), nullptr);
  }

  template <class F>
  SagaScenario& run(F&& deliver_it) {
    const std::uint64_t from = store_.last_position().value() + 1;
    error_.reset();
    try {
      deliver_it();
    } catch (const ScenarioFailure&) {
      throw;
    } catch (const std::exception& e) {
      error_ = e.what();
    }
    recorded_.clear();
    ReadAllFilter mine;
    mine.categories = {std::string(PM::name)};
    for (std::uint64_t p = from;;) {
      auto batch = store_.read_all(p, 1000, mine).value();
      if (batch.events.empty()) break;
      recorded_.insert(recorded_.end(), batch.events.begin(), batch.events.end());
      p = batch.next_position;
    }
    ran_ = true;
    return *this;
  }

  SagaInstanceState state_of(const std::string& correlation_id) {
    auto s = pm_.instance(correlation_id);
    if (!s) fail("no saga instance " + correlation_id + ": " + s.error().what());
    return *s;
  }

  template <class E>
  static E decoded(const RecordedEvent& e) {
    return decode<E>(e.payload, e.encoding).value();
  }
  static std::string name_of(SagaStatus s) {
    const char* n = boost::describe::enum_to_string(s, "?");
    return n;
  }
  static std::string join(const std::vector<std::string>& v) {
    std::string s = "[";
    for (const auto& x : v) s += (s.size() > 1 ? ", " : "") + x;
    return s + "]";
  }
  std::string errors() const { return error_ ? " (the reaction threw: " + *error_ + ")" : ""; }
  void require_ran(const char* what) const {
    if (!ran_) fail(std::string(what) + "() before when()");
  }
  [[noreturn]] static void fail(const std::string& message) { throw ScenarioFailure(message); }

  PM& pm_;
  EventStore& store_;
  ProjectionEngine engine_;
  std::string correlation_;
  std::vector<RecordedEvent> recorded_;
  std::optional<std::string> error_;
  int streams_ = 0;
  bool ran_ = false;
};

}  // namespace evs::testing
