// Given/when/then for process managers (sagas), independent of any test framework: a failed expectation
// throws evs::testing::ScenarioFailure with what was expected and what the saga did.
//
//   evs::testing::SagaScenario<Fulfilment> scenario(10s);   // owns a MemoryEventStore; Fulfilment(store, 10s)
//   scenario.given(OrderPlaced{"o1", ...})
//       .when(ReservationRejected{"o1", "out of stock"})
//       .then_commands(RefundPayment{"o1"}, CancelOrder{"o1", "out of stock"})
//       .then_status("o1", evs::SagaStatus::compensated)
//       .then_compensated("o1", {Step::payment, Step::order});
//
//   scenario.given(OrderPlaced{"o2", ...}).when_deadline_passes("o2", Step::stock).then_commands(...);
//
// Events go through the process manager's real reaction path (load the instance, decide, store), one at
// a time on the calling thread; no engine runs, so nothing happens behind the test's back and a deadline
// passes only when the test says so. Commands are captured, not dispatched: no command handler runs, so
// the test needs neither real handlers nor fakes, and then_commands() compares the exact commands (type
// and content) that when() sent. A handler that throws is recorded; then_error() matches its message.
#pragma once

#include "evs/testing/aggregate_scenario.hpp"  // ScenarioFailure
#include "evs/eventstore/event_store.hpp"
#include "evs/eventstore/memory_event_store.hpp"
#include "evs/projections/engine.hpp"
#include "evs/projections/process_manager.hpp"

#include <boost/describe/enum_to_string.hpp>

#include <filesystem>
#include <initializer_list>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace evs::testing {

template <class PM>
class SagaScenario {
 public:
  using Step = typename PM::step_type;

  // Owns a MemoryEventStore and the process manager PM(store, args...).
  template <class... Args>
    requires std::constructible_from<PM, EventStore&, Args...>
  explicit SagaScenario(Args&&... args)
      : owned_store_(std::make_unique<MemoryEventStore>()),
        owned_pm_(std::make_unique<PM>(*owned_store_, std::forward<Args>(args)...)), pm_(*owned_pm_),
        store_(*owned_store_), engine_(store_) {
    start();
  }
  // `pm` must have been constructed over `store` and must outlive the scenario.
  SagaScenario(PM& pm, EventStore& store) : pm_(pm), store_(store), engine_(store) { start(); }

  PM& process_manager() { return pm_; }
  EventStore& store() { return store_; }

  // Optional correlation id put in the metadata of the events that follow (for entries that read it:
  // evs::from_metadata<E>).
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

  // The event under test. What the saga records and sends from here on is what the then_* calls look at.
  template <Event E>
  SagaScenario& when(const E& event) {
    return run([&] { deliver(event); });
  }

  // The deadline of `step` of instance `correlation_id` passes: delivers evs.saga.deadline_reached as
  // the timer would. Fails the scenario if the step is not pending with a deadline.
  SagaScenario& when_deadline_passes(const std::string& correlation_id, Step step) {
    const std::string name = detail::step_name(step);
    auto state = pm_.instance(correlation_id);
    if (!state) fail("when_deadline_passes: no saga instance " + correlation_id + ": " + state.error().what());
    auto it = state->pending.find(name);
    if (it == state->pending.end() || !it->second)
      fail("when_deadline_passes: step '" + name + "' of " + correlation_id + " is not pending with a deadline");
    EventData d = make(SagaDeadlineReached{name, *it->second});
    d.metadata.correlation_id = correlation_id;
    return run([&] { deliver_data(PM::stream_id_for(correlation_id), d); });
  }

  // Exactly these commands were sent by when(), in this order: same types, same content (compared as
  // JSON). The failure message shows both lists as JSON.
  template <class... Command>
  SagaScenario& then_commands(const Command&... expected) {
    require_ran("then_commands");
    std::vector<std::string> want{describe_command(expected)...};
    std::vector<std::string> got;
    for (const IssuedCommand& c : sent_) got.push_back(c.name + " " + c.json());
    if (want != got) fail("expected commands " + join(want) + ", but the saga sent " + join(got) + errors());
    return *this;
  }
  SagaScenario& then_no_commands() { return then_commands(); }

  SagaScenario& then_status(const std::string& correlation_id, SagaStatus expected) {
    require_ran("then_status");
    auto s = state_of(correlation_id);
    if (s.status != expected)
      fail("expected saga " + correlation_id + " to be " + name_of(expected) + ", it is " + name_of(s.status) + errors());
    return *this;
  }

  // The completed steps that were compensated, in the order compensation ran.
  SagaScenario& then_compensated(const std::string& correlation_id, std::initializer_list<Step> steps) {
    require_ran("then_compensated");
    std::vector<std::string> want;
    for (Step s : steps) want.push_back(detail::step_name(s));
    auto s = state_of(correlation_id);
    if (s.compensated != want) fail("expected compensated steps " + join(want) + ", got " + join(s.compensated));
    return *this;
  }

  SagaScenario& then_pending(const std::string& correlation_id, Step step) {
    require_ran("then_pending");
    const std::string name = detail::step_name(step);
    auto s = state_of(correlation_id);
    if (!s.pending.contains(name)) {
      std::vector<std::string> pending;
      for (const auto& [p, deadline] : s.pending) pending.push_back(p);
      fail("expected step '" + name + "' of " + correlation_id + " to be pending; pending: " + join(pending));
    }
    return *this;
  }

  // The reaction threw with a message containing `text`.
  SagaScenario& then_error(const std::string& text) {
    require_ran("then_error");
    if (!error_) fail("expected an error containing '" + text + "', but the reaction succeeded");
    if (error_->find(text) == std::string::npos) fail("expected an error containing '" + text + "', got: " + *error_);
    return *this;
  }

  // Everything the saga recorded during when(), for checks the helpers above do not cover.
  const std::vector<RecordedEvent>& recorded() const { return recorded_; }
  // The commands when() sent, with their metadata.
  const std::vector<IssuedCommand>& sent() const { return sent_; }

 private:
  // Attaches the process manager to an engine that never starts (its database file is never created),
  // with every command captured.
  void start() {
    pm_.capture_commands([this](const IssuedCommand& c) { sent_.push_back(c); });
    ProjectionOptions o;
    o.database = std::filesystem::temp_directory_path() / "evs-saga-scenario-never-opened.db";
    pm_.attach(engine_, o);
  }

  template <class C>
  static std::string describe_command(const C& c) {
    return std::string(detail::unqualified_type_name<C>()) + " " + encode(c, Encoding::json);
  }

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
    sent_.clear();
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

  std::unique_ptr<MemoryEventStore> owned_store_;  // when the scenario owns them
  std::unique_ptr<PM> owned_pm_;
  PM& pm_;
  EventStore& store_;
  ProjectionEngine engine_;
  std::string correlation_;
  std::vector<RecordedEvent> recorded_;
  std::vector<IssuedCommand> sent_;
  std::optional<std::string> error_;
  int streams_ = 0;
  bool ran_ = false;
};

}  // namespace evs::testing
