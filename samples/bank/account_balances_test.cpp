// The balances read model, one event at a time (given/when/then through the engine's dispatch path and
// SQL session). Its handlers find the account in the stream id, so each event names its stream.
#include "bank.hpp"

#include <evs/testing/projection_scenario.hpp>

#include <doctest/doctest.h>

using namespace bank;
using evs::testing::ProjectionScenario;

namespace {
constexpr std::string_view accounts = "SELECT id, owner, balance_cents, status, events FROM bank_accounts ORDER BY id";
constexpr std::string_view transfers = "SELECT id, from_account, to_account, cents, status, reason FROM bank_transfers ORDER BY id";
}  // namespace

TEST_CASE("account balances: one row per account, moved by every deposit, withdrawal, refund and closing") {
  ProjectionScenario<AccountBalances>()
      .in_stream("account-a1")
      .given(AccountOpened{"alice"}, MoneyDeposited{10'000, ""}, MoneyWithdrawn{2'500, "t1"})
      .in_stream("account-b2")
      .given(AccountOpened{"bob"})
      .when(evs::testing::recorded(TransferRefunded{2'500, "t1"}, {.stream_id = "account-a1"}))
      .then_rows(accounts, {{"a1", "alice", 10'000, "open", 4}, {"b2", "bob", 0, "open", 1}})
      .when(AccountClosed{"moved away"})
      .then_rows(accounts, {{"a1", "alice", 10'000, "open", 4}, {"b2", "bob", 0, "closed", 2}});
}

TEST_CASE("account balances: a transfer runs until its saga ends, completed or compensated with the reason") {
  ProjectionScenario<AccountBalances>()
      .in_stream("transfer-t1")
      .given(TransferRequested{"t1", "a1", "b2", 500}, TransferRequested{"t1", "a1", "b2", 500})  // recorded twice: one row
      .in_stream("transfer-t2")
      .given(TransferRequested{"t2", "b2", "a1", 700})
      .then_rows(transfers, {{"t1", "a1", "b2", 500, "running", ""}, {"t2", "b2", "a1", 700, "running", ""}})
      .in_stream("transfer_saga-t1")
      .given(evs::SagaEnded{evs::SagaStatus::completed, ""})
      .in_stream("transfer_saga-t2")
      .given(evs::SagaEnded{evs::SagaStatus::compensated, "account b2 is closed"})
      .in_stream("other_saga-t1")  // another process manager's instance: not a transfer
      .when(evs::SagaEnded{evs::SagaStatus::compensated, "not mine"})
      .then_rows(transfers, {{"t1", "a1", "b2", 500, "completed", ""},
                             {"t2", "b2", "a1", 700, "compensated", "account b2 is closed"}});
}
