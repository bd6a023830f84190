// Given/when/then for aggregates, independent of any test framework: a failed expectation throws
// evs::testing::ScenarioFailure whose message shows expected and actual events as JSON.
//
//   evs::testing::AggregateScenario<Account>("acc-1")
//       .given(Opened{"alice"}, Deposited{100})
//       .when([](Account& a) { return a.withdraw(30); })
//       .then(Withdrawn{30});
//
//   ...when([](Account& a) { return a.withdraw(500); }).then_error("insufficient funds");
//
// Past events go through the same path as a load from the store (encode, then replay), so a given event
// that the aggregate cannot handle or decode fails the scenario too. Expected and actual events are
// compared by type name and encoded bytes, so events need no operator==.
#pragma once

#include "evs/core/aggregate.hpp"
#include "evs/core/codec.hpp"
#include "evs/core/event.hpp"

#include <functional>
#include <optional>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <variant>
#include <vector>

namespace evs::testing {

struct ScenarioFailure : std::runtime_error {
  using std::runtime_error::runtime_error;
};

template <class A>
class AggregateScenario {
 public:
  explicit AggregateScenario(std::string id = "test") : aggregate_(std::move(id)) {}

  // Applies past events as if they had been loaded from the store.
  template <Event... E>
  AggregateScenario& given(const E&... events) {
    (replay(events), ...);
    return *this;
  }

  // Runs the command against the aggregate. `command(A&)` returns void or Result<void>; a thrown
  // exception is recorded like a rejection (then_error matches its message).
  template <class F>
  AggregateScenario& when(F&& command) {
    try {
      if constexpr (std::is_void_v<std::invoke_result_t<F&, A&>>) {
        command(aggregate_);
      } else {
        if (auto r = command(aggregate_); !r) error_ = r.error().what();
      }
    } catch (const std::exception& e) {
      error_ = e.what();
    }
    ran_ = true;
    return *this;
  }

  // The command succeeded and raised exactly these events, in this order.
  template <Event... E>
  AggregateScenario& then(const E&... expected) {
    require_ran("then");
    if (error_) fail("expected events, but the command failed: " + *error_);
    std::vector<std::string> want{describe(expected)...};
    const std::vector<std::string> got = raised();
    if (want != got) fail("expected events:\n" + lines(want) + "but got:\n" + lines(got));
    return *this;
  }

  // The command succeeded and raised nothing.
  AggregateScenario& then_nothing() { return then(); }

  // The command was rejected (or threw) with a message containing `text`, and raised nothing.
  AggregateScenario& then_error(const std::string& text) {
    require_ran("then_error");
    if (!error_) fail("expected an error containing '" + text + "', but the command succeeded");
    if (error_->find(text) == std::string::npos)
      fail("expected an error containing '" + text + "', got: " + *error_);
    if (const std::vector<std::string> got = raised(); !got.empty())
      fail("expected the rejected command to raise nothing, but it raised:\n" + lines(got));
    return *this;
  }

  const A& aggregate() const { return aggregate_; }

 private:
  template <class E>
  void replay(const E& e) {
    RecordedEvent r;
    r.stream_id = aggregate_.stream_id();
    r.version = aggregate_.version() + 1;
    r.position = r.version;
    r.type = std::string(event_info_v<E>.name);
    r.schema_version = event_info_v<E>.version;
    r.payload = encode(e, Encoding::binary);
    if (auto result = aggregate_.replay(r); !result) fail("given " + r.type + ": " + result.error().what());
  }

  // The events the command raised, as described by describe().
  std::vector<std::string> raised() const {
    std::vector<std::string> got;
    for (const auto& pending : aggregate_.pending_events())
      std::visit([&](const auto& e) { got.push_back(describe(e)); }, pending);
    return got;
  }

  template <class E>
  static std::string describe(const E& e) {
    return std::string(event_info_v<E>.name) + " " + encode(e, Encoding::json);
  }

  static std::string lines(const std::vector<std::string>& v) {
    std::string s;
    for (const auto& l : v) s += "  " + l + "\n";
    return v.empty() ? "  (nothing)\n" : s;
  }

  void require_ran(const char* what) const {
    if (!ran_) fail(std::string(what) + "() before when()");
  }

  [[noreturn]] static void fail(const std::string& message) { throw ScenarioFailure(message); }

  A aggregate_;
  std::optional<std::string> error_;
  bool ran_ = false;
};

}  // namespace evs::testing
