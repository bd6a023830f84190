// Decisions (reject / emit), the command verbs create / update / upsert, and the typed append_event,
// against every backend.
#include "../support/backends.hpp"
#include "../support/bank.hpp"

#include <evs/eventstore/command_handler.hpp>

#include <doctest/doctest.h>

#include <atomic>
#include <thread>

using namespace evs;
using testdomain::Account;
using testdomain::Deposited;
using testdomain::Withdrawn;

TEST_CASE("reject is a rejected error with the reason, and emit raises every event in order and succeeds") {
  const Error no = reject("only a placed order can ship");
  CHECK(no.is(errc::rejected));
  CHECK(no.code.value() == 17);  // part of the public API: never renumbered
  CHECK(no.message == "only a placed order can ship");
  CHECK(no.what() == "rejected: only a placed order can ship");

  Account a("1");
  REQUIRE(a.deposit_twice(5, 7));
  REQUIRE(a.pending_events().size() == 2);
  CHECK(std::get<Deposited>(a.pending_events()[0]).memo == "1st");
  CHECK(std::get<Deposited>(a.pending_events()[1]).memo == "2nd");
  CHECK(a.state().balance == 12);
  auto refused = a.deposit_twice(5, 0);
  CHECK(refused.error().is(errc::rejected));
  CHECK(a.pending_events().size() == 2);  // a refusal raises nothing
}

TEST_CASE_TEMPLATE("create appends to a new stream and refuses an existing one without deciding", B,
                   EVS_ALL_BACKENDS) {
  B backend;
  auto store = backend.open();
  Repository<Account> repo(*store);
  auto made = create(repo, "1", &Account::deposit_twice, 5, 7);  // a member function and its arguments
  REQUIRE(made);
  CHECK(made->events == 2);
  CHECK(made->version == 2);
  CHECK(made->append.stream_version == 2);

  int calls = 0;
  auto again = create(repo, "1", [&](Account& a) {
    ++calls;
    a.deposit(1);
  });
  REQUIRE_FALSE(again);
  CHECK(again.error().is(errc::wrong_expected_version));
  CHECK(again.error().message.find("acc-1 already exists") != std::string::npos);
  CHECK(calls == 0);
  CHECK(store->read_all(1, 100).value().events.size() == 2);
}

TEST_CASE_TEMPLATE("create retried with its idempotency key returns the original result", B, EVS_ALL_BACKENDS) {
  B backend;
  auto store = backend.open();
  Repository<Account> repo(*store);
  const Uuid key = Uuid::generate();
  const EventMetadata meta{"corr-1", "cause-1", {{"who", "test"}}};
  auto first = create(repo, "1", {.metadata = meta, .idempotency_key = key}, &Account::deposit_twice, 5, 7);
  REQUIRE(first);
  REQUIRE(update(repo, "1", &Account::withdraw, 3));  // another command after it
  auto retry = create(repo, "1", {.metadata = meta, .idempotency_key = key}, &Account::deposit_twice, 5, 7);
  REQUIRE(retry);
  CHECK(retry->append.idempotent_replay);
  CHECK(retry->append.first_position == first->append.first_position);
  CHECK(retry->version == 2);
  auto other = create(repo, "1", {.idempotency_key = Uuid::generate()}, &Account::deposit_twice, 5, 7);
  CHECK(other.error().is(errc::wrong_expected_version));  // another command: the stream exists
  const auto stored = store->read_stream("acc-1").value();
  REQUIRE(stored.size() == 3);
  CHECK(stored[0].event_id == command_event_id(key, 0));
  CHECK(stored[1].event_id == command_event_id(key, 1));
  CHECK(stored[0].metadata == meta);
}

TEST_CASE_TEMPLATE("two racing creates of one stream: one stores, the other is told it exists", B, EVS_ALL_BACKENDS) {
  B backend;
  auto store = backend.open();
  Repository<Account> repo(*store);
  int calls = 0;
  auto r = create(repo, "1", [&](Account& a) {
    if (++calls == 1) REQUIRE(upsert(repo, "1", &Account::deposit, 9));  // the other writer wins the race
    a.deposit(1);
  });
  REQUIRE_FALSE(r);
  CHECK(r.error().is(errc::wrong_expected_version));
  CHECK(r.error().message.find("already exists") != std::string::npos);
  CHECK(calls == 1);  // reloaded once, then refused without deciding again
  CHECK(repo.load("1").value().state().balance == 9);
}

TEST_CASE_TEMPLATE("update needs the stream, upsert takes either, and refusals store nothing", B, EVS_ALL_BACKENDS) {
  B backend;
  auto store = backend.open();
  Repository<Account> repo(*store);
  int calls = 0;
  auto missing = update(repo, "1", [&](Account& a) {
    ++calls;
    a.deposit(1);
  });
  CHECK(missing.error().is(errc::stream_not_found));
  CHECK(calls == 0);

  REQUIRE(upsert(repo, "1", &Account::deposit, 10));  // creates
  REQUIRE(upsert(repo, "1", [](Account& a, std::int64_t cents) { a.deposit(cents); }, 5));  // a lambda and arguments
  auto spent = update(repo, "1", {.metadata = {.correlation_id = "c"}}, &Account::withdraw, 12);
  REQUIRE(spent);
  CHECK(spent->version == 3);
  CHECK(store->read_stream("acc-1").value().at(2).metadata.correlation_id == "c");

  auto refused = update(repo, "1", &Account::withdraw, 100);
  CHECK(refused.error().is(errc::rejected));
  CHECK(refused.error().message == "insufficient funds");
  CHECK(store->read_all(1, 100).value().events.size() == 3);
  CHECK(repo.load("1").value().state().balance == 3);
}

TEST_CASE_TEMPLATE("the verbs retry conflicts and bound their attempts", B,
                   EVS_ALL_BACKENDS) {
  B backend;
  auto store = backend.open();
  Repository<Account> repo(*store);
  REQUIRE(create(repo, "1", &Account::deposit, 1));
  int calls = 0;
  auto conflicted = update(repo, "1", [&](Account& a) {
    if (++calls == 1) REQUIRE(update(repo, "1", &Account::deposit, 7));
    a.deposit(1);
  });
  REQUIRE(conflicted);
  CHECK(conflicted->attempts == 2);
  CHECK(repo.load("1").value().state().balance == 9);

  auto exhausted = update(repo, "1", {.max_attempts = 2}, [&](Account& a) {
    REQUIRE(update(repo, "1", &Account::deposit, 1));
    a.deposit(1);
  });
  CHECK(exhausted.error().is(errc::retries_exhausted));
  CHECK(update(repo, "1", {.max_attempts = 0}, &Account::deposit, 1).error().is(errc::invalid_argument));
}

TEST_CASE_TEMPLATE("append_event stores one typed event with its name, version, metadata and id", B,
                   EVS_ALL_BACKENDS) {
  B backend;
  auto store = backend.open();
  auto plain = store->append_event("s-1", ExpectedVersion::no_stream(), Withdrawn{4});
  REQUIRE(plain);
  CHECK(plain->stream_version == 1);

  const Uuid id = Uuid::generate();
  const AppendEventOptions options{.metadata = {.correlation_id = "c", .causation_id = "k"},
                                   .event_id = id, .encoding = Encoding::json};
  auto typed = store->append_event("s-1", ExpectedVersion::exact(1), Deposited{25, "memo"}, options);
  REQUIRE(typed);
  auto retried = store->append_event("s-1", ExpectedVersion::exact(1), Deposited{25, "memo"}, options);
  REQUIRE(retried);
  CHECK(retried->idempotent_replay);  // the same event id: stored once
  CHECK(store->append_event("s-1", ExpectedVersion::no_stream(), Withdrawn{1}).error().is(errc::wrong_expected_version));

  const auto events = store->read_stream("s-1").value();
  REQUIRE(events.size() == 2);
  CHECK(events[0].type == "test.withdrawn");
  CHECK(decode<Withdrawn>(events[0].payload, events[0].encoding)->cents == 4);
  const RecordedEvent& e = events[1];
  CHECK(e.event_id == id);
  CHECK(e.type == "test.deposited");
  CHECK(e.schema_version == 1);
  CHECK(e.encoding == Encoding::json);
  CHECK(e.payload == R"({"cents":25,"memo":"memo"})");
  CHECK(e.metadata.correlation_id == "c");
  CHECK(e.metadata.causation_id == "k");
}
