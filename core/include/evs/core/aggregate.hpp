// Aggregate base: a consistency boundary whose state changes only by applying its own events.
//
//   struct AccountState { std::int64_t balance = 0; bool open = false; };
//   BOOST_DESCRIBE_STRUCT(AccountState, (), (balance, open))
//
//   class Account : public evs::Aggregate<Account, AccountState, Opened, Deposited> {
//    public:
//     static constexpr std::string_view category = "account";   // stream ids are "account-<id>"
//     using Aggregate::Aggregate;
//     evs::Result<void> deposit(std::int64_t cents) {                   // decide, then emit
//       if (cents <= 0) return evs::reject("a deposit must be positive");
//       return emit(Deposited{cents});
//     }
//     void apply(const Opened&) { state_.open = true; }                 // one apply per listed event
//     void apply(const Deposited& e) { state_.balance += e.cents; }
//   };
//
// Every listed event type needs an apply overload (public, or private with `friend evs::AggregateAccess;`):
// a missing one is a compile error, and so is raising a type that is not listed.
#pragma once

#include "evs/core/codec.hpp"
#include "evs/core/dispatch.hpp"
#include "evs/core/envelope.hpp"
#include "evs/core/error.hpp"
#include "evs/core/event.hpp"
#include "evs/core/fingerprint.hpp"

#include <boost/mp11/algorithm.hpp>
#include <boost/mp11/list.hpp>

#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

namespace evs {

// Grants evs access to private apply() overloads.
struct AggregateAccess {
  template <class D, class E>
  static auto apply(D& d, const E& e) -> decltype(d.apply(e)) {
    return d.apply(e);
  }
};

template <class D, class E>
concept AppliesEvent = requires(D& d, const E& e) { AggregateAccess::apply(d, e); };

template <class Derived, class State, Event... Events>
class Aggregate {
 public:
  using state_type = State;
  using event_list = boost::mp11::mp_list<Events...>;
  using event_variant = std::variant<Events...>;

  explicit Aggregate(std::string id = {}) : id_(std::move(id)) {}

  const std::string& id() const { return id_; }
  // "<category>-<id>"
  std::string stream_id() const { return stream_id_for(id_); }
  static std::string stream_id_for(std::string_view id) {
    std::string s(Derived::category);
    s += '-';
    s += id;
    return s;
  }

  // Version including pending events.
  std::uint64_t version() const { return version_ + pending_.size(); }
  // Version of the last stored event this instance knows of (the expectation for the next save).
  std::uint64_t persisted_version() const { return version_; }
  const State& state() const { return state_; }
  // Events raised since the aggregate was loaded or last saved, in order.
  const std::vector<event_variant>& pending_events() const { return pending_; }

  // --- Used by repositories ---
  // Applies one stored event. Errors: unknown_event_type (not one of Events), unsupported_schema_version
  // (stored version newer than the code's), corrupt_payload.
  [[nodiscard]] Result<void> replay(const RecordedEvent& e) {
    static const std::string owner = "aggregate " + std::string(Derived::category);  // once, not per event
    return dispatch_event<Events...>(e, owner, [&](const auto& event) {
      AggregateAccess::apply(derived(), event);
      version_ = e.version;
    });
  }
  // Restores state from a snapshot taken at `version`.
  void restore(State state, std::uint64_t version) {
    state_ = std::move(state);
    version_ = version;
  }
  // Marks the pending events as stored (the new persisted version is version()).
  void mark_committed() {
    version_ += pending_.size();
    pending_.clear();
  }

 protected:
  // Applies `e` to the state and records it as pending.
  template <class E>
  void raise(E e) {
    static_assert(boost::mp11::mp_contains<event_list, E>::value,
                  "raise(): this event type is not in the aggregate's event list");
    AggregateAccess::apply(derived(), std::as_const(e));
    pending_.emplace_back(std::move(e));
  }

  // Raises each event in order and returns success: the last line of a decision that returns Result<void>,
  // `return emit(OrderShipped{id()});`. A decision that refuses returns evs::reject("why") instead.
  template <class... E>
  Result<void> emit(E... events) {
    (raise(std::move(events)), ...);
    return {};
  }

  ~Aggregate() {
    static_assert((AppliesEvent<Derived, Events> && ...),
                  "the aggregate lacks an apply(const E&) overload for one of its listed events");
    // Snapshots store the state by its description: a member missing from it is a compile error here
    // (checked_public_members), not a snapshot that silently restores a default.
    if constexpr (detail::is_described_struct<State>) (void)fingerprint_v<State>;
  }
  Aggregate(const Aggregate&) = default;
  Aggregate(Aggregate&&) = default;
  Aggregate& operator=(const Aggregate&) = default;
  Aggregate& operator=(Aggregate&&) = default;

  State state_{};

 private:
  Derived& derived() { return static_cast<Derived&>(*this); }

  std::string id_;
  std::uint64_t version_ = 0;
  std::vector<event_variant> pending_;
};

}  // namespace evs
