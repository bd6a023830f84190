// A small aggregate used by the aggregate, repository and command tests.
#pragma once

#include "test_events.hpp"

#include <evs/core/aggregate.hpp>

namespace testdomain {

struct AccountState {
  std::int64_t balance = 0;
  std::int64_t operations = 0;
};
BOOST_DESCRIBE_STRUCT(AccountState, (), (balance, operations))

class Account : public evs::Aggregate<Account, AccountState, Deposited, Withdrawn> {
 public:
  static constexpr std::string_view category = "acc";
  using Aggregate::Aggregate;

  void deposit(std::int64_t cents) { raise(Deposited{cents, ""}); }
  evs::Result<void> withdraw(std::int64_t cents) {
    if (state().balance < cents) return evs::reject("insufficient funds");
    return emit(Withdrawn{cents});
  }
  // Two events from one decision, in order.
  evs::Result<void> deposit_twice(std::int64_t first, std::int64_t second) {
    if (first <= 0 || second <= 0) return evs::reject("deposits must be positive");
    return emit(Deposited{first, "1st"}, Deposited{second, "2nd"});
  }

 private:
  friend evs::AggregateAccess;
  void apply(const Deposited& e) {
    state_.balance += e.cents;
    ++state_.operations;
  }
  void apply(const Withdrawn& e) {
    state_.balance -= e.cents;
    ++state_.operations;
  }
};

}  // namespace testdomain
