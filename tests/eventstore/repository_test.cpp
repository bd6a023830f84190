// Aggregates, the repository (snapshots, time travel) and the command handler, against every backend.
#include "../support/backends.hpp"
#include "../support/bank.hpp"

#include <evs/eventstore/command_handler.hpp>
#include <evs/eventstore/repository.hpp>

#include <doctest/doctest.h>

#include <atomic>
#include <thread>

using namespace evs;
using testdomain::Account;
using testdomain::AccountState;

TEST_CASE("an aggregate applies raised events at once and keeps them pending until saved") {
  Account a("1");
  CHECK(a.stream_id() == "acc-1");
  a.deposit(100);
  REQUIRE(a.withdraw(30));
  CHECK(a.withdraw(1000).error().message == "insufficient funds");
  CHECK(a.state().balance == 70);
  CHECK(a.version() == 2);
  CHECK(a.persisted_version() == 0);
  CHECK(a.pending_events().size() == 2);
  CHECK(std::holds_alternative<testdomain::Withdrawn>(a.pending_events()[1]));
}

TEST_CASE_TEMPLATE("a saved aggregate loads back with the same state and version", B, EVS_ALL_BACKENDS) {
  B backend;
  auto store = backend.open();
  Repository<Account> repo(*store);
  Account a("1");
  a.deposit(100);
  a.deposit(50);
  auto saved = repo.save(a, EventMetadata{"corr", "cause", {{"user", "bob"}}});
  REQUIRE(saved);
  CHECK(saved->stream_version == 2);
  CHECK(a.pending_events().empty());
  CHECK(a.persisted_version() == 2);

  auto loaded = repo.load("1");
  REQUIRE(loaded);
  CHECK(loaded->state().balance == 150);
  CHECK(loaded->version() == 2);
  CHECK(store->read_stream("acc-1").value()[0].metadata.user.at("user") == "bob");

  CHECK(repo.load("missing").error().is(errc::stream_not_found));
  auto fresh = repo.load_or_create("missing");
  REQUIRE(fresh);
  CHECK(fresh->version() == 0);
}

TEST_CASE_TEMPLATE("saving a stale aggregate is a conflict", B, EVS_ALL_BACKENDS) {
  B backend;
  auto store = backend.open();
  Repository<Account> repo(*store);
  Account a("1");
  a.deposit(10);
  REQUIRE(repo.save(a));
  Account x = repo.load("1").value();
  Account y = repo.load("1").value();
  x.deposit(1);
  y.deposit(2);
  REQUIRE(repo.save(x));
  CHECK(repo.save(y).error().is(errc::wrong_expected_version));
}

TEST_CASE_TEMPLATE("an event the aggregate does not handle, or a corrupt one, fails the load clearly", B,
                   EVS_ALL_BACKENDS) {
  B backend;
  auto store = backend.open();
  Repository<Account> repo(*store);
  REQUIRE(store->append("acc-1", ExpectedVersion::any(), std::vector{testdomain::of_type("test.unknown")}));
  auto r = repo.load("1");
  REQUIRE_FALSE(r);
  CHECK(r.error().is(errc::unknown_event_type));
  CHECK(r.error().message.find("test.unknown") != std::string::npos);

  auto corrupt = testdomain::deposit(5);
  corrupt.payload += "garbage";
  REQUIRE(store->append("acc-2", ExpectedVersion::any(), std::vector{corrupt}));
  CHECK(repo.load("2").error().is(errc::corrupt_payload));

  auto newer = testdomain::deposit(5);
  newer.schema_version = 9;
  REQUIRE(store->append("acc-3", ExpectedVersion::any(), std::vector{newer}));
  CHECK(repo.load("3").error().is(errc::unsupported_schema_version));
}

TEST_CASE_TEMPLATE("snapshots every N events: loading uses the snapshot and only the events after it", B,
                   EVS_ALL_BACKENDS) {
  B backend;
  auto store = backend.open();
  Repository<Account> repo(*store, {Encoding::binary, 10});
  Account a("1");
  for (int i = 0; i < 25; ++i) {
    a.deposit(1);
    REQUIRE(repo.save(a));
  }
  auto snap = store->load_snapshot("acc-1").value();
  REQUIRE(snap);
  CHECK(snap->version == 20);
  CHECK(snap->fingerprint == fingerprint_v<AccountState>);

  // Prove the snapshot is used: rewrite it with a recognisable balance; the load must start from it.
  Snapshot doctored = *snap;
  doctored.version = 20;
  doctored.payload = encode(AccountState{1000, 20}, Encoding::binary);
  REQUIRE(store->save_snapshot(doctored));
  CHECK(repo.load("1").value().state().balance == 1005);

  SUBCASE("a snapshot whose fingerprint does not match the state type is ignored") {
    doctored.fingerprint ^= 1;
    doctored.version = 21;
    REQUIRE(store->save_snapshot(doctored));
    auto loaded = repo.load("1").value();
    CHECK(loaded.state().balance == 25);
    CHECK(loaded.version() == 25);
  }
  SUBCASE("a snapshot that does not decode is ignored") {
    doctored.payload = "\xff";
    doctored.version = 21;
    REQUIRE(store->save_snapshot(doctored));
    CHECK(repo.load("1").value().state().balance == 25);
  }
}

TEST_CASE_TEMPLATE("time travel loads the state as of a global position or a time", B, EVS_ALL_BACKENDS) {
  B backend;
  auto store = backend.open();
  Repository<Account> repo(*store, {Encoding::json, 2});
  Account a("1");
  a.deposit(100);
  REQUIRE(repo.save(a));                                           // position 1
  REQUIRE(store->append("other-1", ExpectedVersion::any(), std::vector{testdomain::deposit(1)}));  // 2
  std::this_thread::sleep_for(std::chrono::milliseconds(5));
  const auto between = std::chrono::time_point_cast<std::chrono::microseconds>(Clock::now());
  std::this_thread::sleep_for(std::chrono::milliseconds(5));
  REQUIRE(a.withdraw(40));
  a.deposit(5);
  REQUIRE(repo.save(a));  // positions 3, 4; a snapshot at version 3 exists now

  // The log's 1st, 3rd and 4th events (positions 1, 3, 4 where positions are gap-free).
  const auto log = store->read_all(1, 10).value().events;
  REQUIRE(log.size() == 4);
  CHECK(repo.load_as_of("1", log[0].position).value().state().balance == 100);
  CHECK(repo.load_as_of("1", log[2].position).value().state().balance == 60);
  CHECK(repo.load_as_of("1", log[3].position).value().state().balance == 65);
  CHECK(repo.load_as_of("1", between).value().state().balance == 100);
  CHECK(repo.load_as_of("1", between).value().version() == 1);
  CHECK(repo.load_as_of("1", between - std::chrono::hours(1)).error().is(errc::stream_not_found));
}

TEST_CASE_TEMPLATE("a command retries on conflicts and reports what happened", B, EVS_ALL_BACKENDS) {
  B backend;
  auto store = backend.open();
  Repository<Account> repo(*store);

  SUBCASE("a rejected command appends nothing") {
    auto r = upsert(repo, "1", &Account::withdraw, 10);
    REQUIRE_FALSE(r);
    CHECK(r.error().message == "insufficient funds");
    CHECK(store->last_position().value() == 0);
  }
  SUBCASE("a conflicting writer makes it reload and decide again") {
    int calls = 0;
    auto r = upsert(repo, "1", [&](Account& a) {
      if (++calls == 1) {  // someone else writes between our load and our append
        Account other = repo.load_or_create("1").value();
        other.deposit(7);
        REQUIRE(repo.save(other));
      }
      a.deposit(1);
    });
    REQUIRE(r);
    CHECK(r->attempts == 2);
    CHECK(r->version == 2);
    CHECK(repo.load("1").value().state().balance == 8);
  }
  SUBCASE("persistent conflicts exhaust the bounded retries") {
    auto r = upsert(repo, "1", {.max_attempts = 3}, [&](Account& a) {
      Account other = repo.load_or_create("1").value();
      other.deposit(1);
      REQUIRE(repo.save(other));
      a.deposit(1);
    });
    REQUIRE_FALSE(r);
    CHECK(r.error().is(errc::retries_exhausted));
  }
  SUBCASE("max_attempts below one is refused before anything is decided") {
    for (int attempts : {0, -1}) {
      int calls = 0;
      auto r = upsert(repo, "1", {.max_attempts = attempts}, [&](Account& a) {
        ++calls;
        a.deposit(1);
      });
      REQUIRE_FALSE(r);
      CHECK(r.error().is(errc::invalid_argument));
      CHECK(calls == 0);
    }
    CHECK(store->last_position().value() == 0);
  }
  SUBCASE("update refuses a missing aggregate") {
    CHECK(update(repo, "1", &Account::deposit, 1).error().is(errc::stream_not_found));
  }
  SUBCASE("concurrent commands on one account all land exactly once") {
    std::vector<std::thread> pool;
    std::atomic<int> failures{0};
    for (int t = 0; t < 4; ++t)
      pool.emplace_back([&] {
        for (int i = 0; i < 25; ++i)
          if (!upsert(repo, "1", {.max_attempts = 100}, &Account::deposit, 1)) ++failures;
      });
    for (auto& th : pool) th.join();
    CHECK(failures == 0);
    CHECK(repo.load("1").value().state().balance == 100);
  }
}

TEST_CASE("command event ids are name-based uuids of the command id and the event's index") {
  // RFC 9562 version 5 (the DNS namespace example from Python's uuid module).
  const Uuid dns = *Uuid::parse("6ba7b810-9dad-11d1-80b4-00c04fd430c8");
  CHECK(Uuid::name_based(dns, "python.org").to_string() == "886313e1-3b8a-5372-9b90-0c9aee199e5d");
  const Uuid command = *Uuid::parse("0190f3a1-7c2b-7d4e-8f00-123456789abc");
  CHECK(command_event_id(command, 0) == command_event_id(command, 0));
  CHECK(command_event_id(command, 0) != command_event_id(command, 1));
  CHECK(command_event_id(command, 0) != command_event_id(Uuid::generate(), 0));
  CHECK(command_event_id(command, 0) == Uuid::name_based(command, "evs.command-event/0"));  // on-disk format
}

TEST_CASE_TEMPLATE("a command retried with its idempotency key appends once and returns the original result", B,
                   EVS_ALL_BACKENDS) {
  B backend;
  auto store = backend.open();
  Repository<Account> repo(*store);
  const Uuid fund = Uuid::generate();
  const Uuid spend = Uuid::generate();
  const auto deposit = [](Account& a) { a.deposit(100); };
  const auto withdraw = [](Account& a) { return a.withdraw(60); };

  auto funded = upsert(repo, "1", {.idempotency_key = fund}, deposit);
  REQUIRE(funded);
  auto spent = upsert(repo, "1", {.idempotency_key = spend}, withdraw);
  REQUIRE(spent);
  CHECK_FALSE(spent->append.idempotent_replay);
  REQUIRE(upsert(repo, "1", &Account::deposit, 1));  // an unrelated command in between
  const std::uint64_t head = store->last_position().value();

  // Decided on today's balance (41), the withdrawal would be refused; a retry gets the original answer.
  auto again = upsert(repo, "1", {.idempotency_key = spend}, withdraw);
  REQUIRE(again);
  CHECK(again->append.idempotent_replay);
  CHECK(again->append.first_position == spent->append.first_position);
  CHECK(again->append.last_position == spent->append.last_position);
  CHECK(again->append.stream_version == spent->append.stream_version);
  CHECK(again->version == spent->version);
  CHECK(again->events == 1);
  auto refunded = upsert(repo, "1", {.idempotency_key = fund}, deposit);  // the very first one
  REQUIRE(refunded);
  CHECK(refunded->append.idempotent_replay);
  CHECK(refunded->append.first_position == funded->append.first_position);
  CHECK(refunded->version == 1);

  CHECK(store->last_position().value() == head);
  CHECK(repo.load("1").value().state().balance == 41);
  const auto stored = store->read_stream("acc-1").value();
  REQUIRE(stored.size() == 3);
  CHECK(stored[0].event_id == command_event_id(fund, 0));
  CHECK(stored[1].event_id == command_event_id(spend, 0));
}

TEST_CASE_TEMPLATE("saving a command's events twice from stale aggregates stores them once", B, EVS_ALL_BACKENDS) {
  B backend;
  auto store = backend.open();
  Repository<Account> repo(*store);
  const Uuid command = Uuid::generate();
  Account first("1"), second("1");  // two handlers of one redelivered command, both loaded at version 0
  for (Account* a : {&first, &second}) {
    a->deposit(5);
    a->deposit(6);
  }
  auto original = repo.save(first, {}, command);
  REQUIRE(original);
  auto retry = repo.save(second, {}, command);  // stale (expects version 0), yet no conflict: the same events
  REQUIRE(retry);
  CHECK(retry->idempotent_replay);
  CHECK(retry->first_position == original->first_position);
  CHECK(retry->stream_version == 2);
  CHECK(second.pending_events().empty());
  CHECK(store->read_all(1, 100).value().events.size() == 2);
}

TEST_CASE_TEMPLATE("a replayed command saves no snapshot of the state it re-decided", B, EVS_ALL_BACKENDS) {
  B backend;
  auto store = backend.open();
  Repository<Account> repo(*store, RepositoryOptions{.snapshot_every = 1});
  const Uuid command = Uuid::generate();
  Account first("1"), retry("1");
  first.deposit(5);
  REQUIRE(repo.save(first, {}, command));  // snapshot at version 1: balance 5
  retry.deposit(7);  // a retry that decided differently (say, from a clock): its event is not stored
  auto replayed = repo.save(retry, {}, command);
  REQUIRE(replayed);
  CHECK(replayed->idempotent_replay);
  CHECK(repo.load("1").value().state().balance == 5);  // the snapshot still matches the stored event
}

TEST_CASE("a command retried after a crash between its append and its acknowledgement appends once") {
  test::SqliteBackend backend;  // the store is closed and reopened from its file: nothing survives but the file
  const Uuid command = Uuid::generate();
  CommandResult original;
  {
    auto store = backend.open();
    Repository<Account> repo(*store);
    REQUIRE(upsert(repo, "1", &Account::deposit, 100));
    auto r = upsert(repo, "1", {.idempotency_key = command}, [](Account& a) { return a.withdraw(70); });
    REQUIRE(r);
    original = *r;
  }  // the process dies here: the caller never saw the answer
  auto store = backend.open();
  Repository<Account> repo(*store);
  auto retried = upsert(repo, "1", {.idempotency_key = command}, [](Account& a) { return a.withdraw(70); });
  REQUIRE(retried);
  CHECK(retried->append.idempotent_replay);
  CHECK(retried->append.first_position == original.append.first_position);
  CHECK(retried->version == original.version);
  CHECK(store->last_position().value() == 2);
  CHECK(repo.load("1").value().state().balance == 30);
}
