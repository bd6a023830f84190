// The EventStore contract, run against every backend.
#include "../support/backends.hpp"
#include "../support/test_events.hpp"

#include <doctest/doctest.h>

#include <algorithm>
#include <atomic>
#include <functional>
#include <future>
#include <mutex>
#include <thread>

using namespace evs;
using testdomain::deposit;
using testdomain::of_type;

namespace {

std::vector<EventData> deposits(int n) {
  std::vector<EventData> v;
  for (int i = 0; i < n; ++i) v.push_back(deposit(i + 1));
  return v;
}

// Every event of the log, in log order.
std::vector<RecordedEvent> whole_log(EventStore& store) {
  std::vector<RecordedEvent> out;
  for (std::uint64_t from = 1;;) {
    auto batch = store.read_all(from, 500).value();
    if (batch.events.empty()) return out;
    for (auto& e : batch.events) out.push_back(std::move(e));
    from = batch.next_position;
  }
}

// The global position of the n-th event of the log (1-based). On a backend with gap-free positions it is n;
// on PostgreSQL positions have gaps, so the tests name positions by their place in the log.
std::uint64_t nth(EventStore& store, std::size_t n) {
  auto events = store.read_all(1, n).value().events;
  REQUIRE(events.size() >= n);
  return events[n - 1].position;
}

// Commit listeners run on the committing thread of the embedded backends, and on the follower thread of
// PostgreSQL's (after its commits, shortly): wait until `heard` reaches `position`.
void wait_until_heard(std::mutex& m, const std::vector<std::uint64_t>& heard, std::uint64_t position) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  for (;;) {
    {
      std::lock_guard lock(m);
      if (!heard.empty() && heard.back() >= position) return;
    }
    REQUIRE(std::chrono::steady_clock::now() < deadline);
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
}

}  // namespace

TEST_CASE_TEMPLATE("an append to a new stream gets versions from 1 and consecutive global positions", B,
                   EVS_ALL_BACKENDS) {
  B backend;
  auto store = backend.open();
  auto r = store->append("acc-1", ExpectedVersion::no_stream(), deposits(3));
  REQUIRE(r);
  CHECK(r->stream_version == 3);
  CHECK(r->first_position >= 1);
  CHECK(r->last_position == r->first_position + 2);
  CHECK_FALSE(r->idempotent_replay);
  auto r2 = store->append("acc-2", ExpectedVersion::any(), deposits(2));
  REQUIRE(r2);
  CHECK(r2->stream_version == 2);
  CHECK(r2->first_position > r->last_position);
  CHECK(r2->last_position == r2->first_position + 1);
  CHECK(store->last_position().value() == r2->last_position);
  if constexpr (test::gap_free_positions<B>) {
    CHECK(r->first_position == 1);
    CHECK(r2->first_position == 4);
  }
  CHECK(store->stream_version("acc-1").value() == 3);
  CHECK(store->stream_version("nobody").value() == 0);
}

TEST_CASE_TEMPLATE("each expectation kind accepts and rejects the right stream states", B, EVS_ALL_BACKENDS) {
  B backend;
  auto store = backend.open();
  SUBCASE("no_stream") {
    REQUIRE(store->append("s-1", ExpectedVersion::no_stream(), deposits(1)));
    auto r = store->append("s-1", ExpectedVersion::no_stream(), deposits(1));
    REQUIRE_FALSE(r);
    CHECK(r.error().is(errc::wrong_expected_version));
    CHECK(r.error().message.find("s-1 is at version 1") != std::string::npos);
  }
  SUBCASE("stream_exists") {
    auto r = store->append("s-1", ExpectedVersion::stream_exists(), deposits(1));
    REQUIRE_FALSE(r);
    CHECK(r.error().is(errc::wrong_expected_version));
    REQUIRE(store->append("s-1", ExpectedVersion::any(), deposits(1)));
    CHECK(store->append("s-1", ExpectedVersion::stream_exists(), deposits(1)));
  }
  SUBCASE("exact") {
    REQUIRE(store->append("s-1", ExpectedVersion::exact(0), deposits(2)));
    CHECK(store->append("s-1", ExpectedVersion::exact(1), deposits(1)).error().is(errc::wrong_expected_version));
    CHECK(store->append("s-1", ExpectedVersion::exact(3), deposits(1)).error().is(errc::wrong_expected_version));
    auto ok = store->append("s-1", ExpectedVersion::exact(2), deposits(1));
    REQUIRE(ok);
    CHECK(ok->stream_version == 3);
  }
  SUBCASE("any") {
    CHECK(store->append("s-1", ExpectedVersion::any(), deposits(1)));
    CHECK(store->append("s-1", ExpectedVersion::any(), deposits(1)));
    CHECK(store->stream_version("s-1").value() == 2);
  }
  // A rejected append stores nothing.
  auto all = store->read_all(1, 1000).value();
  CHECK(all.events.size() == store->stream_version("s-1").value());
}

TEST_CASE_TEMPLATE("a multi-event append is atomic: a conflict stores none of its events", B, EVS_ALL_BACKENDS) {
  B backend;
  auto store = backend.open();
  REQUIRE(store->append("s-1", ExpectedVersion::any(), deposits(1)));
  auto r = store->append("s-1", ExpectedVersion::no_stream(), deposits(5));
  CHECK(r.error().is(errc::wrong_expected_version));
  CHECK(store->stream_version("s-1").value() == 1);
  CHECK(whole_log(*store).size() == 1);
}

TEST_CASE_TEMPLATE("re-appending the same event ids is an idempotent no-op reporting the original result", B,
                   EVS_ALL_BACKENDS) {
  B backend;
  auto store = backend.open();
  auto batch = deposits(3);
  auto first = store->append("s-1", ExpectedVersion::no_stream(), batch);
  REQUIRE(first);
  REQUIRE(store->append("s-2", ExpectedVersion::no_stream(), deposits(1)));

  // Same ids, even with an expectation that would now fail.
  auto retry = store->append("s-1", ExpectedVersion::no_stream(), batch);
  REQUIRE(retry);
  CHECK(retry->idempotent_replay);
  CHECK(retry->stream_version == first->stream_version);
  CHECK(retry->first_position == first->first_position);
  CHECK(retry->last_position == first->last_position);
  CHECK(whole_log(*store).size() == 4);

  SUBCASE("a retry that overlaps only partly is an error and stores nothing") {
    std::vector<EventData> mixed{batch[2], deposit(99)};
    auto r = store->append("s-1", ExpectedVersion::any(), mixed);
    REQUIRE_FALSE(r);
    CHECK(r.error().is(errc::duplicate_event));
    CHECK(whole_log(*store).size() == 4);
  }
  SUBCASE("an id already stored in another stream is an error") {
    std::vector<EventData> moved{batch[0]};
    auto r = store->append("s-3", ExpectedVersion::any(), moved);
    REQUIRE_FALSE(r);
    CHECK(r.error().is(errc::duplicate_event));
  }
  SUBCASE("the same ids in another order are not a retry") {
    std::vector<EventData> swapped{batch[1], batch[0]};
    CHECK(store->append("s-1", ExpectedVersion::any(), swapped).error().is(errc::duplicate_event));
  }
}

TEST_CASE_TEMPLATE("arguments that can never work are rejected with invalid_argument", B, EVS_ALL_BACKENDS) {
  B backend;
  auto store = backend.open();
  CHECK(store->append("", ExpectedVersion::any(), deposits(1)).error().is(errc::invalid_argument));
  CHECK(store->append("s-1", ExpectedVersion::any(), std::vector{of_type("")}).error().is(errc::invalid_argument));
  auto e = deposit(1);
  CHECK(store->append("s-1", ExpectedVersion::any(), std::vector{e, e}).error().is(errc::invalid_argument));
  CHECK(store->last_position().value() == 0);
}

TEST_CASE_TEMPLATE("an empty append checks the expectation and returns the current version", B, EVS_ALL_BACKENDS) {
  B backend;
  auto store = backend.open();
  REQUIRE(store->append("s-1", ExpectedVersion::any(), deposits(2)));
  auto ok = store->append("s-1", ExpectedVersion::exact(2), {});
  REQUIRE(ok);
  CHECK(ok->stream_version == 2);
  CHECK(store->append("s-1", ExpectedVersion::exact(1), {}).error().is(errc::wrong_expected_version));
}

TEST_CASE_TEMPLATE("events read back carry their full envelope", B, EVS_ALL_BACKENDS) {
  B backend;
  auto store = backend.open();
  EventData e = deposit(42, "memo");
  e.encoding = Encoding::binary;
  e.schema_version = 3;
  e.metadata.correlation_id = "corr-1";
  e.metadata.causation_id = "cause-1";
  e.metadata.user = {{"user", "alice"}, {"ip", "10.0.0.1"}};
  const auto before = std::chrono::time_point_cast<std::chrono::microseconds>(Clock::now());
  REQUIRE(store->append("acc-7", ExpectedVersion::any(), std::vector{e}));
  auto events = store->read_stream("acc-7").value();
  REQUIRE(events.size() == 1);
  const RecordedEvent& r = events[0];
  CHECK(r.position == store->last_position().value());
  CHECK(r.stream_id == "acc-7");
  CHECK(r.version == 1);
  CHECK(r.event_id == e.event_id);
  CHECK(r.type == "test.deposited");
  CHECK(r.schema_version == 3);
  CHECK(r.encoding == Encoding::binary);
  CHECK(r.payload == e.payload);
  CHECK(r.metadata == e.metadata);
  CHECK(r.recorded_at >= before);
  CHECK(r.recorded_at <= Clock::now() + std::chrono::seconds(1));
}

TEST_CASE_TEMPLATE("a read without the envelope still carries what replaying an aggregate needs", B, EVS_ALL_BACKENDS) {
  B backend;
  auto store = backend.open();
  for (int i = 0; i < 4; ++i) {
    EventData e = deposit(i + 1, "memo " + std::to_string(i));
    e.schema_version = 2;
    e.metadata.correlation_id = "corr";
    REQUIRE(store->append("other-1", ExpectedVersion::any(), std::vector{deposit(100)}));
    REQUIRE(store->append("acc-7", ExpectedVersion::any(), std::vector{e}));
  }
  for (const Direction direction : {Direction::forward, Direction::backward}) {
    ReadStreamOptions full{direction, direction == Direction::forward ? 2 : end_of_stream, 10};
    ReadStreamOptions lean = full;
    lean.envelope = false;
    lean.until_position = nth(*store, 6);  // bounds apply as usual
    full.until_position = nth(*store, 6);
    const auto expected = store->read_stream("acc-7", full).value();
    const auto got = store->read_stream("acc-7", lean).value();
    REQUIRE(got.size() == expected.size());
    REQUIRE(got.size() == (direction == Direction::forward ? 2u : 3u));
    for (std::size_t i = 0; i < got.size(); ++i) {
      CAPTURE(i);
      CHECK(got[i].position == expected[i].position);
      CHECK(got[i].stream_id == "acc-7");
      CHECK(got[i].version == expected[i].version);
      CHECK(got[i].type == expected[i].type);
      CHECK(got[i].schema_version == 2);
      CHECK(got[i].encoding == expected[i].encoding);
      CHECK(got[i].payload == expected[i].payload);
    }
  }
}

TEST_CASE_TEMPLATE("reads into a reused buffer replace every field of the events they return", B, EVS_ALL_BACKENDS) {
  B backend;
  auto store = backend.open();
  EventData rich = deposit(1, std::string(300, 'x'));
  rich.metadata.correlation_id = "corr";
  rich.metadata.causation_id = "cause";
  rich.metadata.user = {{"user", "alice"}};
  REQUIRE(store->append("rich-1", ExpectedVersion::any(), std::vector{rich, deposit(2, "more"), deposit(3)}));
  REQUIRE(store->append("plain-1", ExpectedVersion::any(), std::vector{deposit(4, "p")}));
  const auto fresh_stream = store->read_stream("plain-1").value();
  const auto fresh_all = store->read_all(nth(*store, 4), 10).value();

  std::vector<RecordedEvent> buffer;
  REQUIRE(store->read_stream_into(buffer, "rich-1"));
  REQUIRE(buffer.size() == 3);
  CHECK(buffer[0].metadata == rich.metadata);
  REQUIRE(store->read_stream_into(buffer, "plain-1"));  // fewer events, no metadata
  REQUIRE(buffer.size() == 1);
  CHECK(buffer[0].position == fresh_stream[0].position);
  CHECK(buffer[0].event_id == fresh_stream[0].event_id);
  CHECK(buffer[0].payload == fresh_stream[0].payload);
  CHECK(buffer[0].metadata == EventMetadata{});
  CHECK(buffer[0].recorded_at == fresh_stream[0].recorded_at);

  ReadAllBatch batch;
  REQUIRE(store->read_all_into(batch, 1, 10));
  REQUIRE(batch.events.size() == 4);
  CHECK(batch.next_position == batch.events.back().position + 1);
  REQUIRE(store->read_all_into(batch, nth(*store, 4), 10));
  REQUIRE(batch.events.size() == 1);
  CHECK(batch.next_position == fresh_all.next_position);
  CHECK(batch.events[0].stream_id == "plain-1");
  CHECK(batch.events[0].event_id == fresh_all.events[0].event_id);
  CHECK(batch.events[0].payload == fresh_all.events[0].payload);
  CHECK(batch.events[0].metadata == EventMetadata{});
  REQUIRE(store->read_stream_into(buffer, "rich-1"));  // the buffer holds metadata again
  ReadStreamOptions lean;
  lean.envelope = false;
  REQUIRE(store->read_stream_into(buffer, "plain-1", lean));
  REQUIRE(buffer.size() == 1);
  CHECK(buffer[0].payload == fresh_stream[0].payload);
  CHECK(buffer[0].metadata == EventMetadata{});  // a lean read leaves what it skips empty, never stale
  CHECK((buffer[0].event_id == fresh_stream[0].event_id || buffer[0].event_id == Uuid{}));

  const std::uint64_t beyond = store->last_position().value() + 99;
  REQUIRE(store->read_all_into(batch, beyond, 10));  // past the end: empty, next_position unchanged
  CHECK(batch.events.empty());
  CHECK(batch.next_position == beyond);
  CHECK(store->read_stream_into(buffer, "nope-1").error().is(errc::stream_not_found));
}

TEST_CASE_TEMPLATE("a stream reads forward, backward, paged and bounded by position", B, EVS_ALL_BACKENDS) {
  B backend;
  auto store = backend.open();
  for (int i = 0; i < 5; ++i) {
    REQUIRE(store->append("s-1", ExpectedVersion::any(), std::vector{deposit(i + 1)}));
    REQUIRE(store->append("other-1", ExpectedVersion::any(), std::vector{deposit(100)}));
  }
  auto versions = [](const std::vector<RecordedEvent>& v) {
    std::vector<std::uint64_t> out;
    for (const auto& e : v) out.push_back(e.version);
    return out;
  };
  CHECK(versions(store->read_stream("s-1").value()) == std::vector<std::uint64_t>{1, 2, 3, 4, 5});
  CHECK(versions(store->read_stream("s-1", {Direction::forward, 2, 2}).value()) == std::vector<std::uint64_t>{2, 3});
  CHECK(versions(store->read_stream("s-1", ReadStreamOptions::backward_from_end(2)).value()) ==
        std::vector<std::uint64_t>{5, 4});
  CHECK(versions(store->read_stream("s-1", {Direction::backward, 3, 10}).value()) ==
        std::vector<std::uint64_t>{3, 2, 1});
  CHECK(store->read_stream("s-1", {Direction::forward, 6, 10}).value().empty());
  // s-1's events are the log's 1st, 3rd, 5th, 7th and 9th: bounded at the 6th we see versions 1..3.
  ReadStreamOptions bounded;
  bounded.until_position = nth(*store, 6);
  CHECK(versions(store->read_stream("s-1", bounded).value()) == std::vector<std::uint64_t>{1, 2, 3});
  auto missing = store->read_stream("nope-1");
  REQUIRE_FALSE(missing);
  CHECK(missing.error().is(errc::stream_not_found));
}

TEST_CASE_TEMPLATE("read_all pages through the log and filters by type and category", B, EVS_ALL_BACKENDS) {
  B backend;
  auto store = backend.open();
  for (int i = 0; i < 10; ++i) {
    REQUIRE(store->append("order-" + std::to_string(i), ExpectedVersion::any(), std::vector{of_type("placed")}));
    REQUIRE(store->append("user-" + std::to_string(i), ExpectedVersion::any(), std::vector{of_type("registered")}));
  }
  REQUIRE(store->append("order-0", ExpectedVersion::any(), std::vector{of_type("shipped")}));

  // Paging without a filter visits every position exactly once.
  std::vector<std::uint64_t> seen;
  std::uint64_t from = 1;
  for (;;) {
    auto b = store->read_all(from, 3).value();
    if (b.events.empty()) break;
    for (const auto& e : b.events) seen.push_back(e.position);
    from = b.next_position;
  }
  REQUIRE(seen.size() == 21);
  CHECK(std::adjacent_find(seen.begin(), seen.end(), std::greater_equal<>()) == seen.end());
  if constexpr (test::gap_free_positions<B>)
    for (std::size_t i = 0; i < seen.size(); ++i) CHECK(seen[i] == i + 1);

  ReadAllFilter by_type;
  by_type.event_types = {"shipped"};
  auto shipped = store->read_all(1, 100, by_type).value();
  REQUIRE(shipped.events.size() == 1);
  CHECK(shipped.events[0].position == seen.back());
  CHECK(shipped.next_position == seen.back() + 1);

  ReadAllFilter by_category;
  by_category.categories = {"user"};
  auto users = store->read_all(1, 100, by_category).value();
  CHECK(users.events.size() == 10);
  for (const auto& e : users.events) CHECK(e.stream_id.rfind("user-", 0) == 0);

  ReadAllFilter both;
  both.categories = {"order"};
  both.event_types = {"placed", "shipped"};
  CHECK(store->read_all(1, 100, both).value().events.size() == 11);

  // A sparse filter still makes progress: a short page moves next_position past what it skipped.
  ReadAllFilter none;
  none.event_types = {"never-stored"};
  auto empty = store->read_all(1, 5, none).value();
  CHECK(empty.events.empty());
  CHECK(empty.next_position == seen.back() + 1);
  // Reading past the end returns nothing and keeps the position.
  auto past = store->read_all(seen.back() + 29, 5).value();
  CHECK(past.events.empty());
  CHECK(past.next_position == seen.back() + 29);
}

TEST_CASE_TEMPLATE("recorded time never decreases and position_at finds the last event at a time", B,
                   EVS_ALL_BACKENDS) {
  B backend;
  auto store = backend.open();
  const auto t0 = std::chrono::time_point_cast<std::chrono::microseconds>(Clock::now()) - std::chrono::seconds(1);
  CHECK(store->position_at(t0).value() == 0);
  REQUIRE(store->append("s-1", ExpectedVersion::any(), deposits(3)));
  std::this_thread::sleep_for(std::chrono::milliseconds(5));
  const auto middle = std::chrono::time_point_cast<std::chrono::microseconds>(Clock::now());
  std::this_thread::sleep_for(std::chrono::milliseconds(5));
  REQUIRE(store->append("s-1", ExpectedVersion::any(), deposits(2)));
  auto all = store->read_all(1, 100).value().events;
  for (std::size_t i = 1; i < all.size(); ++i) CHECK(all[i - 1].recorded_at <= all[i].recorded_at);
  CHECK(store->position_at(t0).value() == 0);
  CHECK(store->position_at(middle).value() == nth(*store, 3));
  CHECK(store->position_at(middle + std::chrono::hours(1)).value() == nth(*store, 5));
}

TEST_CASE_TEMPLATE("the latest snapshot is kept and an older one never replaces it", B, EVS_ALL_BACKENDS) {
  B backend;
  auto store = backend.open();
  CHECK_FALSE(store->load_snapshot("acc-1").value().has_value());
  REQUIRE(store->append("acc-1", ExpectedVersion::any(), deposits(10)));
  Snapshot s;
  s.stream_id = "acc-1";
  s.version = 10;
  s.state_type = "State";
  s.fingerprint = 0xfeedface12345678ULL;
  s.payload = std::string("\x01\x02\x00\x03", 4);
  REQUIRE(store->save_snapshot(s));
  s.version = 5;
  s.payload = "older";
  REQUIRE(store->save_snapshot(s));
  auto loaded = store->load_snapshot("acc-1").value();
  REQUIRE(loaded);
  CHECK(loaded->version == 10);
  CHECK(loaded->fingerprint == 0xfeedface12345678ULL);
  CHECK(loaded->payload == std::string("\x01\x02\x00\x03", 4));
  CHECK_FALSE(store->load_snapshot("acc-1", 9).value().has_value());
  // A snapshot ahead of its stream is refused.
  s.version = 11;
  CHECK(store->save_snapshot(s).error().is(errc::invalid_argument));
}

TEST_CASE_TEMPLATE("append_async reports the same outcome through its callback", B, EVS_ALL_BACKENDS) {
  B backend;
  auto store = backend.open();
  std::promise<Result<AppendResult>> p1, p2;
  store->append_async("s-1", ExpectedVersion::no_stream(), deposits(2),
                      [&](Result<AppendResult> r) { p1.set_value(std::move(r)); });
  auto r1 = p1.get_future().get();
  REQUIRE(r1);
  CHECK(r1->stream_version == 2);
  store->append_async("s-1", ExpectedVersion::no_stream(), deposits(1),
                      [&](Result<AppendResult> r) { p2.set_value(std::move(r)); });
  CHECK(p2.get_future().get().error().is(errc::wrong_expected_version));
}

TEST_CASE_TEMPLATE("eight threads racing on one version: exactly one wins each version, no gaps", B,
                   EVS_ALL_BACKENDS) {
  B backend;
  auto store = backend.open();
  constexpr int threads = 8;
  constexpr std::uint64_t rounds = 50;
  std::vector<std::vector<std::uint64_t>> won(threads);
  std::atomic<int> conflicts{0};
  std::atomic<std::size_t> own{0};
  std::vector<std::thread> pool;
  for (int t = 0; t < threads; ++t) {
    pool.emplace_back([&, t] {
      // Each thread tries to append version v+1 for every v, racing with the others.
      for (std::uint64_t v = 0; v < rounds;) {
        auto r = store->append("race-1", ExpectedVersion::exact(v), std::vector{deposit(t)});
        if (r) {
          won[t].push_back(r->stream_version);
          v = r->stream_version;
        } else {
          CHECK(r.error().is(errc::wrong_expected_version));
          conflicts.fetch_add(1);
          v = store->stream_version("race-1").value();
        }
        // Also write to a private stream so global positions interleave.
        CHECK(store->append("own-" + std::to_string(t), ExpectedVersion::any(), std::vector{deposit(1)}));
        own.fetch_add(1);
      }
    });
  }
  for (auto& th : pool) th.join();
  std::vector<int> winners(rounds + 1, 0);
  for (const auto& w : won)
    for (auto v : w) winners.at(v)++;
  for (std::uint64_t v = 1; v <= rounds; ++v) CHECK_MESSAGE(winners[v] == 1, "version " << v);
  CHECK(conflicts.load() > 0);

  auto stream = store->read_stream("race-1").value();
  REQUIRE(stream.size() == rounds);
  for (std::size_t i = 0; i < stream.size(); ++i) CHECK(stream[i].version == i + 1);
  const auto all = whole_log(*store);
  REQUIRE(all.size() == rounds + own.load());
  CHECK(all.back().position == store->last_position().value());
  for (std::size_t i = 1; i < all.size(); ++i) CHECK(all[i - 1].position < all[i].position);
  if constexpr (test::gap_free_positions<B>)
    for (std::size_t i = 0; i < all.size(); ++i) CHECK(all[i].position == i + 1);
}

TEST_CASE_TEMPLATE("commit listeners hear every append that stores events, until removed", B, EVS_ALL_BACKENDS) {
  B backend;
  auto store = backend.open();
  std::mutex m;
  std::vector<std::uint64_t> heard;
  const auto id = store->add_commit_listener([&](std::uint64_t p) {
    std::lock_guard lock(m);
    heard.push_back(p);
  });
  const auto token0 = store->change_token().value();
  auto batch = deposits(2);
  REQUIRE(store->append("s-1", ExpectedVersion::any(), batch));
  REQUIRE(store->append("s-1", ExpectedVersion::any(), batch));  // idempotent replay: nothing new
  CHECK_FALSE(store->append("s-1", ExpectedVersion::no_stream(), deposits(1)));  // conflict: nothing new
  const auto last = store->append("s-2", ExpectedVersion::any(), deposits(1));
  REQUIRE(last);
  wait_until_heard(m, heard, last->last_position);
  {
    std::lock_guard lock(m);
    if constexpr (test::gap_free_positions<B>) {
      CHECK(heard == std::vector<std::uint64_t>{2, 3});
    } else {  // heard from the follower: the last call is the head, earlier ones may be coalesced
      CHECK(heard.back() == last->last_position);
      CHECK(heard.size() <= 2);
    }
  }
  CHECK(store->change_token().value() != token0);
  store->remove_commit_listener(id);
  std::size_t calls = 0;
  {
    std::lock_guard lock(m);
    calls = heard.size();
  }
  REQUIRE(store->append("s-3", ExpectedVersion::any(), deposits(1)));
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  std::lock_guard lock(m);
  CHECK(heard.size() == calls);
}

TEST_CASE_TEMPLATE("commit listeners hear commits in position order, also from many threads at once", B,
                   EVS_ALL_BACKENDS) {
  B backend;
  auto store = backend.open();
  std::mutex m;
  std::vector<std::uint64_t> heard;
  store->add_commit_listener([&](std::uint64_t p) {
    std::lock_guard lock(m);
    heard.push_back(p);
  });
  constexpr int threads = 8;
  constexpr int appends = 250;
  std::vector<std::thread> pool;
  for (int t = 0; t < threads; ++t)
    pool.emplace_back([&, t] {
      for (int i = 0; i < appends; ++i)
        CHECK(store->append("s-" + std::to_string(t), ExpectedVersion::any(), deposits(1 + i % 2)));
    });
  for (auto& th : pool) th.join();
  wait_until_heard(m, heard, store->last_position().value());
  std::lock_guard lock(m);
  REQUIRE_FALSE(heard.empty());
  const auto disorder = std::adjacent_find(heard.begin(), heard.end(), std::greater_equal<>());
  CHECK_MESSAGE(disorder == heard.end(), "call " << (disorder - heard.begin() + 1) << " heard position "
                                                 << (disorder == heard.end() ? 0 : disorder[1]) << " after "
                                                 << (disorder == heard.end() ? 0 : disorder[0]));
  CHECK(heard.back() == store->last_position().value());
}
