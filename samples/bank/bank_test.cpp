// The bank's rules (AggregateScenario), the transfer saga's three endings, and time travel.
#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include "bank.hpp"

#include <evs/eventstore/sqlite_event_store.hpp>
#include <evs/projections/engine.hpp>
#include <evs/testing/aggregate_scenario.hpp>
#include <evs/testing/saga_scenario.hpp>

#include <doctest/doctest.h>

#include <atomic>
#include <filesystem>
#include <random>
#include <thread>

using namespace std::chrono_literals;
using bank::Account;
using evs::testing::AggregateScenario;

namespace {

struct TempDir {
  std::filesystem::path path;
  TempDir() {
    path = std::filesystem::temp_directory_path() / ("bank-test-" + std::to_string(std::random_device{}()));
    std::filesystem::create_directories(path);
  }
  ~TempDir() { std::filesystem::remove_all(path); }
};

// Results are checked through ok(), which shows the error's message when there is one.
template <class T>
bool ok(const evs::Result<T>& r) {
  if (!r) MESSAGE(r.error().what());
  return bool(r);
}

template <class F>
bool poll_until(F&& done, std::chrono::milliseconds limit = 20s) {
  const auto until = std::chrono::steady_clock::now() + limit;
  while (!done()) {
    if (std::chrono::steady_clock::now() >= until) return done();
    std::this_thread::sleep_for(2ms);
  }
  return true;
}

// A bank with the saga and the read model running, on the files of one directory.
struct World {
  explicit World(std::chrono::milliseconds step_timeout = 10s)
      : store({.path = dir.path / "events.db", .durability = evs::Durability::normal}),
        bank(store, {.snapshot_every = 3}),
        saga(store, step_timeout),
        engine(store) {
    const auto handlers = bank.commands();  // debit, credit, refund
    // Credits to the account in `silent` get no answer (a link that is down).
    saga.attach(engine, {.database = dir.path / "read.db", .retry = {.initial_backoff = 5ms}}, std::get<0>(handlers),
                std::get<2>(handlers), [this](const bank::CreditTarget& c, const evs::CommandMetadata& m) {
                  if (c.account != silent) bank.credit(c, m);
                });
    engine.add(balances, {.database = dir.path / "read.db"});
    engine.start();
    const bank::Actor teller{"teller:test", "setup"};
    for (const char* id : {"alice", "bob", "carol"}) REQUIRE(ok(bank.open(id, id, teller)));
    REQUIRE(ok(bank.deposit("alice", 100'00, teller)));
  }

  std::int64_t balance(const std::string& id) { return bank.account(id).value().state().balance; }
  evs::SagaInstanceState finished(const std::string& transfer_id) {
    REQUIRE(poll_until([&] {
      auto s = saga.instance(transfer_id);
      return s && (s->status == evs::SagaStatus::completed || s->status == evs::SagaStatus::compensated);
    }));
    return saga.instance(transfer_id).value();
  }

  TempDir dir;
  evs::SqliteEventStore store;
  bank::Bank bank;
  std::string silent;
  bank::TransferSaga saga;
  bank::AccountBalances balances;
  evs::ProjectionEngine engine;
};

}  // namespace

// ---- The account's rules --------------------------------------------------------------------------------

TEST_CASE("an open account takes deposits and withdrawals") {
  AggregateScenario<Account>("alice")
      .given(bank::AccountOpened{"Alice"}, bank::MoneyDeposited{50'00, ""})
      .when([](Account& a) { return a.withdraw(20'00); })
      .then(bank::MoneyWithdrawn{20'00, ""});
}

TEST_CASE("a withdrawal beyond the balance is rejected") {
  AggregateScenario<Account>("alice")
      .given(bank::AccountOpened{"Alice"}, bank::MoneyDeposited{50'00, ""})
      .when([](Account& a) { return a.withdraw(50'01); })
      .then_error("insufficient funds: alice has 50.00, asked for 50.01");
}

TEST_CASE("an account cannot be opened twice, and a missing one takes no deposit") {
  AggregateScenario<Account>("alice").given(bank::AccountOpened{"Alice"}).when([](Account& a) { return a.open("Eve"); }).then_error("already open");
  AggregateScenario<Account>("ghost").when([](Account& a) { return a.deposit(1'00); }).then_error("does not exist");
}

TEST_CASE("only an empty account closes, and a closed account takes no money") {
  AggregateScenario<Account>("bob")
      .given(bank::AccountOpened{"Bob"}, bank::MoneyDeposited{1'00, ""})
      .when([](Account& a) { return a.close("moving"); })
      .then_error("still holds 1.00");
  AggregateScenario<Account>("bob")
      .given(bank::AccountOpened{"Bob"}, bank::AccountClosed{"moving"})
      .when([](Account& a) { return a.deposit(1'00, "t-1"); })
      .then_error("is closed");
}

TEST_CASE("a re-issued transfer leg applies once, and gets its first answer again") {
  TempDir dir;
  evs::SqliteEventStore store({.path = dir.path / "events.db", .durability = evs::Durability::normal});
  bank::Bank bank(store, {.snapshot_every = 0});
  const bank::Actor teller{"teller:test", ""};
  REQUIRE(ok(bank.open("alice", "Alice", teller)));
  REQUIRE(ok(bank.deposit("alice", 50'00, teller)));
  evs::CommandMetadata debit{evs::Uuid::generate(), "t-1", "cause"};
  bank.debit({"t-1", "alice", 30'00}, debit);
  bank.debit({"t-1", "alice", 30'00}, debit);  // re-issued (same command id): on 20.00 it would be refused
  CHECK(bank.account("alice").value().state().balance == 20'00);
  CHECK_FALSE(store.read_stream("transfer-t-1").has_value());  // and no refusal was recorded
  evs::CommandMetadata refund{evs::Uuid::generate(), "t-1", "cause"};
  bank.refund({"t-1", "alice", 30'00}, refund);
  bank.refund({"t-1", "alice", 30'00}, refund);
  CHECK(bank.account("alice").value().state().balance == 50'00);
  CHECK(store.read_stream("account-alice").value().size() == 4);  // opened, deposited, withdrawn, refunded
}

// ---- The transfer saga, given/when/then: the exact commands it sends, no bank behind it -------------------

using TransferScenario = evs::testing::SagaScenario<bank::TransferSaga>;
using Leg = bank::TransferSaga::Step;

TEST_CASE("transfer saga: a request debits the source, the debit credits the target, the credit completes it") {
  TransferScenario s(10s);
  s.when(bank::TransferRequested{"t-1", "alice", "bob", 30'00})
      .then_commands(bank::DebitSource{"t-1", "alice", 30'00})
      .then_pending("t-1", Leg::debit);
  s.when(bank::MoneyWithdrawn{30'00, "t-1"}).then_commands(bank::CreditTarget{"t-1", "bob", 30'00}).then_pending("t-1", Leg::credit);
  s.when(bank::MoneyDeposited{30'00, "t-1"}).then_no_commands().then_status("t-1", evs::SagaStatus::completed);
  s.when(bank::MoneyDeposited{5'00, ""}).then_no_commands();  // cash at the counter belongs to no transfer
}

TEST_CASE("transfer saga: a refused debit ends it with nothing to undo, a refused credit refunds the source") {
  TransferScenario s(10s);
  s.given(bank::TransferRequested{"t-2", "bob", "alice", 5'00})
      .when(bank::TransferLegRejected{"t-2", "debit", "insufficient funds"})
      .then_no_commands()
      .then_status("t-2", evs::SagaStatus::compensated);
  s.given(bank::TransferRequested{"t-3", "alice", "carol", 40'00}, bank::MoneyWithdrawn{40'00, "t-3"})
      .when(bank::TransferLegRejected{"t-3", "credit", "carol is closed"})
      .then_commands(bank::RefundSource{"t-3", "alice", 40'00})
      .then_compensated("t-3", {Leg::debit});
}

TEST_CASE("transfer saga: a leg with no answer in time is compensated, and a debit landing after that is refunded") {
  TransferScenario s(10s);
  s.given(bank::TransferRequested{"t-4", "alice", "bob", 25'00}, bank::MoneyWithdrawn{25'00, "t-4"})
      .when_deadline_passes("t-4", Leg::credit)
      .then_commands(bank::RefundSource{"t-4", "alice", 25'00})
      .then_status("t-4", evs::SagaStatus::compensated);
  s.given(bank::TransferRequested{"t-6", "alice", "bob", 7'00})
      .when_deadline_passes("t-6", Leg::debit)
      .then_no_commands();
  s.when(bank::MoneyWithdrawn{7'00, "t-6"}).then_commands(bank::RefundSource{"t-6", "alice", 7'00});
}

// ---- The transfer saga with the bank and the engine running ---------------------------------------------

TEST_CASE("transfer saga, happy path: the source is debited, the target credited, the saga completes") {
  World w;
  REQUIRE(ok(w.bank.transfer("t-1", "alice", "bob", 30'00, {"web:alice", ""})));
  const auto s = w.finished("t-1");
  CHECK(s.status == evs::SagaStatus::completed);
  CHECK(s.completed == std::vector<std::string>{"debit", "credit"});
  CHECK(w.balance("alice") == 70'00);
  CHECK(w.balance("bob") == 30'00);
  // The legs carry the transfer as correlation id and name the saga as the actor.
  const auto bob = w.store.read_stream("account-bob").value();
  CHECK(bob.back().metadata.correlation_id == "t-1");
  CHECK(bob.back().metadata.user.at("who") == "transfer_saga");
}

TEST_CASE("transfer saga, refused debit: nothing moves, the saga ends compensated with the bank's reason") {
  World w;
  REQUIRE(ok(w.bank.transfer("t-2", "bob", "alice", 5'00, {"web:bob", ""})));
  const auto s = w.finished("t-2");
  CHECK(s.status == evs::SagaStatus::compensated);
  CHECK(s.failed_step == "debit");
  CHECK(s.reason.find("insufficient funds") != std::string::npos);
  CHECK(s.compensated.empty());
  CHECK(w.balance("alice") == 100'00);
  CHECK(w.balance("bob") == 0);
}

TEST_CASE("transfer saga, compensated: a refused credit (closed account) refunds the source") {
  World w;
  REQUIRE(ok(w.bank.close("carol", "moving", {"teller:test", ""})));
  REQUIRE(ok(w.bank.transfer("t-3", "alice", "carol", 40'00, {"web:alice", ""})));
  const auto s = w.finished("t-3");
  CHECK(s.status == evs::SagaStatus::compensated);
  CHECK(s.failed_step == "credit");
  CHECK(s.compensated == std::vector<std::string>{"debit"});
  REQUIRE(poll_until([&] { return w.balance("alice") == 100'00; }));
  const auto trail = w.store.read_stream("account-alice").value();
  CHECK(trail.back().type == "bank.transfer_refunded");
  CHECK(w.balance("carol") == 0);
}

TEST_CASE("transfer saga, timed out: a credit with no answer is compensated after the deadline") {
  World w(200ms);
  w.silent = "bob";
  REQUIRE(ok(w.bank.transfer("t-4", "alice", "bob", 25'00, {"web:alice", ""})));
  const auto s = w.finished("t-4");
  CHECK(s.status == evs::SagaStatus::compensated);
  CHECK(s.failed_step == "credit");
  CHECK(s.reason.find("timed out") != std::string::npos);
  REQUIRE(poll_until([&] { return w.balance("alice") == 100'00; }));
  CHECK(w.balance("bob") == 0);
  const auto trail = w.store.read_stream(bank::TransferSaga::stream_id_for("t-4")).value();
  CHECK(std::any_of(trail.begin(), trail.end(), [](const auto& e) { return e.type == "evs.saga.deadline_reached"; }));
}

TEST_CASE("the read model agrees with the aggregates after transfers") {
  World w;
  REQUIRE(ok(w.bank.transfer("t-5", "alice", "bob", 10'00, {"web:alice", ""})));
  w.finished("t-5");
  const auto head = w.store.last_position().value();
  REQUIRE(ok(w.engine.wait_for("account_balances", head, 10s)));
  CHECK(w.balance("alice") + w.balance("bob") == 100'00);
}

// ---- Time travel and snapshots --------------------------------------------------------------------------

TEST_CASE("time travel: the balance as of any recorded time equals a replay up to that time, snapshots or not") {
  TempDir dir;
  evs::SqliteEventStore store({.path = dir.path / "events.db", .durability = evs::Durability::normal});
  bank::Bank b(store, {.snapshot_every = 3});  // snapshots at versions 3, 6, 9: newer than most asked times
  const bank::Actor teller{"teller:test", ""};
  REQUIRE(ok(b.open("alice", "Alice", teller)));
  std::vector<std::pair<evs::Timestamp, std::int64_t>> answers;  // after each change: (time, balance)
  std::int64_t balance = 0;
  for (int i = 1; i <= 10; ++i) {
    std::this_thread::sleep_for(2ms);
    if (i % 4 == 0) {
      REQUIRE(ok(b.withdraw("alice", 3'00, teller)));
      balance -= 3'00;
    } else {
      REQUIRE(ok(b.deposit("alice", i * 1'00, teller)));
      balance += i * 1'00;
    }
    answers.emplace_back(store.read_stream("account-alice").value().back().recorded_at, balance);
  }
  REQUIRE(store.load_snapshot("account-alice").value()->version == 9);
  for (std::size_t i = 0; i < answers.size(); ++i) {
    const auto t = answers[i].first + 500us;  // after this change, before the next (2 ms later)
    CAPTURE(i);
    auto then = b.account_as_of("alice", t);
    REQUIRE(ok(then));
    CHECK(then->state().balance == answers[i].second);
    CHECK(then->version() == i + 2);  // opened + i+1 changes
  }
  auto before = b.account_as_of("alice", answers.front().first - 1h);
  CHECK((!before && before.error().is(evs::errc::stream_not_found)));
}

TEST_CASE("a rejected command stores nothing, and every stored change names who made it") {
  TempDir dir;
  evs::SqliteEventStore store({.path = dir.path / "events.db", .durability = evs::Durability::normal});
  bank::Bank b(store);
  REQUIRE(ok(b.open("bob", "Bob", {"teller:ann", "visit-1"})));
  const auto before = store.last_position().value();
  auto r = b.withdraw("bob", 1'00, {"atm:7", "atm-session"});
  REQUIRE_FALSE(r.has_value());
  CHECK(r.error().is(evs::errc::rejected));
  CHECK(store.last_position().value() == before);
  const auto e = store.read_stream("account-bob").value().at(0);
  CHECK(e.metadata.user.at("who") == "teller:ann");
  CHECK(e.metadata.correlation_id == "visit-1");
}
