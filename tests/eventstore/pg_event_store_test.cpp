// What is particular to the PostgreSQL store (the shared contract runs in event_store_contract_test.cpp):
// the readers' fence (a transaction that commits late is never skipped, and whoever holds the fence is
// named), store locations, what opening refuses, and the tx offset that keeps positions ascending after a
// restore.
#include "../support/pg_server.hpp"
#include "../support/result_printing.hpp"
#include "../support/test_events.hpp"

#include <evs/eventstore/open_store.hpp>
#include <evs/eventstore/pg_event_store.hpp>

#include "pg/pg_follower.hpp"
#include "pg/pg_schema.hpp"

#include <poll.h>

#include <doctest/doctest.h>

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <future>
#include <mutex>
#include <thread>
#include <vector>

using namespace evs;
using namespace std::chrono_literals;

namespace {

// A plain libpq session, as another program would hold one.
class Session {
 public:
  Session(const std::string& url, const std::string& schema) : c_(PQconnectdb(url.c_str())) {
    REQUIRE(PQstatus(c_) == CONNECTION_OK);
    PQsetNoticeProcessor(c_, [](void*, const char*) {}, nullptr);
    exec("SET search_path TO \"" + schema + "\"");
  }
  ~Session() { PQfinish(c_); }
  std::string exec(const std::string& sql) {
    PGresult* r = PQexec(c_, sql.c_str());
    const bool ok = PQresultStatus(r) == PGRES_COMMAND_OK || PQresultStatus(r) == PGRES_TUPLES_OK;
    std::string value = ok && PQntuples(r) > 0 ? PQgetvalue(r, 0, 0) : "";
    const std::string error = ok ? "" : PQerrorMessage(c_);
    PQclear(r);
    REQUIRE_MESSAGE(ok, sql << ": " << error);
    return value;
  }
  int pid() const { return PQbackendPID(c_); }
  // The notifications (LISTEN) that arrive within `within`, counted until there are `enough`.
  int notifications(std::chrono::milliseconds within, int enough) {
    const auto deadline = std::chrono::steady_clock::now() + within;
    int n = 0;
    while (n < enough) {
      while (PGnotify* note = PQnotifies(c_)) {
        PQfreemem(note);
        ++n;
      }
      const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline -
                                                                              std::chrono::steady_clock::now());
      if (n >= enough || left.count() <= 0) break;
      pollfd fd{PQsocket(c_), POLLIN, 0};
      if (::poll(&fd, 1, static_cast<int>(left.count())) > 0) REQUIRE(PQconsumeInput(c_) == 1);
    }
    return n;
  }

 private:
  PGconn* c_;
};

PgOptions options_for(const test::PgSchema& schema) {
  PgOptions o;
  o.url = schema.url();
  o.schema = schema.name();
  return o;
}

// The readers' fence is the oldest transaction open anywhere on the server, and other tests write to the same
// server at the same time: wait until the log readers can see `position` (at most 30 s).
void wait_visible(EventStore& store, std::uint64_t position) {
  const auto deadline = std::chrono::steady_clock::now() + 30s;
  while (store.last_position().value() < position) {
    REQUIRE_MESSAGE(std::chrono::steady_clock::now() < deadline, "position " << position << " never became visible");
    std::this_thread::sleep_for(1ms);
  }
}

std::vector<std::uint64_t> positions(EventStore& store) {
  std::vector<std::uint64_t> out;
  for (const auto& e : store.read_all(1, 1000).value().events) out.push_back(e.position);
  return out;
}

// Appends queued together while `session` holds the lock of the stream "blocker-1": the store's writer waits
// on that lock with a group of its own, and everything queued meanwhile is committed as the next group, in
// one transaction.
class HeldWriter {
 public:
  HeldWriter(EventStore& store, Session& session, const std::string& schema) : store_(store), session_(session) {
    const auto key = static_cast<std::uint64_t>(pg::advisory_key(schema, "blocker-1"));
    session_.exec("BEGIN");
    session_.exec("SELECT pg_advisory_xact_lock(" + std::to_string(static_cast<std::int64_t>(key)) + ")");
    submit("blocker-1", ExpectedVersion::any(), {testdomain::deposit(1)});
    // Other tests take advisory locks on the same server: wait for this key's waiter.
    const std::string waiting = "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted"
                                " AND database = (SELECT oid FROM pg_database WHERE datname = current_database())"
                                " AND classid::bigint = " + std::to_string(key >> 32) +
                                " AND objid::bigint = " + std::to_string(key & 0xffffffffu) + " AND objsubid = 1";
    const auto deadline = std::chrono::steady_clock::now() + 30s;
    while (session_.exec(waiting) == "0") {
      REQUIRE_MESSAGE(std::chrono::steady_clock::now() < deadline, "the writer never waited for the lock");
      std::this_thread::sleep_for(1ms);
    }
  }
  void submit(const std::string& stream, ExpectedVersion expected, std::vector<EventData> events) {
    auto promise = std::make_shared<std::promise<Result<AppendResult>>>();
    outcomes_.push_back(promise->get_future());
    store_.append_async(stream, expected, events, [promise](Result<AppendResult> r) { promise->set_value(std::move(r)); });
  }
  // Lets the writer go on; the outcomes of the appends submitted after the blocker, in order.
  std::vector<Result<AppendResult>> release() {
    session_.exec("COMMIT");
    std::vector<Result<AppendResult>> out;
    for (auto& f : outcomes_) {
      REQUIRE_MESSAGE(f.wait_for(60s) == std::future_status::ready, "an append never completed");
      out.push_back(f.get());
    }
    REQUIRE(out.front());  // the blocker's own group
    out.erase(out.begin());
    return out;
  }

 private:
  EventStore& store_;
  Session& session_;
  std::vector<std::future<Result<AppendResult>>> outcomes_;
};

// The transaction a position belongs to (see docs/postgresql.md).
std::uint64_t transaction_of(std::uint64_t position) { return position >> pg::position_shift; }

}  // namespace

TEST_CASE("pg store: a transaction that commits late is read in its place, never skipped, and holds the readers "
          "back until it ends") {
  test::PgSchema schema;
  PgEventStore store(options_for(schema));
  auto appended = store.append("a-1", ExpectedVersion::any(), std::vector{testdomain::deposit(1)});
  REQUIRE(appended);
  const std::uint64_t first = appended->last_position;
  wait_visible(store, first);

  // Another writer takes its transaction id now and commits last: its event sorts before the ones
  // appended meanwhile. (It writes evs's rows by hand, as a stalled evs writer would have.)
  Session late(schema.url(), schema.name());
  late.exec("BEGIN");
  late.exec("INSERT INTO event_types (name) VALUES ('test.late') ON CONFLICT DO NOTHING");
  const std::string late_position = late.exec(
      "SELECT (pg_current_xact_id()::text::bigint + (SELECT value::bigint FROM evs_meta WHERE key = 'tx_offset'))"
      " * 1048576");

  auto later = store.append("b-1", ExpectedVersion::any(), std::vector{testdomain::deposit(2), testdomain::deposit(3)});
  REQUIRE(later);
  CHECK(later->first_position > std::stoull(late_position));
  // Acknowledged, and read_stream sees it, but the log readers stop at the open transaction.
  CHECK(store.read_stream("b-1").value().size() == 2);
  CHECK(store.last_position().value() == first);
  CHECK(positions(store) == std::vector<std::uint64_t>{first});
  const auto holders = store.fence_holders(0ms).value();
  const bool named = std::any_of(holders.begin(), holders.end(), [&](const PgFenceHolder& h) {
    return h.pid == late.pid() && h.state == "idle in transaction";
  });
  CHECK_MESSAGE(named, "fence_holders does not name the open transaction");

  late.exec("INSERT INTO streams (name, category, version, updated_at) VALUES ('late-1', 'late', 1, 0)");
  late.exec("INSERT INTO events (position, stream, version, event_id, type, schema_version, encoding, recorded_at,"
            " correlation_id, causation_id, metadata, payload) SELECT " + late_position +
            ", (SELECT id FROM streams WHERE name = 'late-1'), 1, gen_random_uuid(),"
            " (SELECT id FROM event_types WHERE name = 'test.late'), 1, 0, 0, '', '', NULL, ''::bytea");
  late.exec("COMMIT");

  wait_visible(store, later->last_position);
  const auto all = store.read_all(1, 1000).value().events;
  REQUIRE(all.size() == 4);
  CHECK(all[0].position == first);
  CHECK(all[1].stream_id == "late-1");  // in its place: before the events appended while it was open
  CHECK(all[2].position == later->first_position);
  CHECK(all[3].position == later->last_position);
  CHECK(store.last_position().value() == later->last_position);
}

TEST_CASE("pg store: opening refuses a schema that holds something else, and a read-only open creates nothing") {
  test::PgSchema schema;
  {
    Session s(schema.url(), "public");
    s.exec("CREATE SCHEMA \"" + schema.name() + "\"");
  }
  PgOptions o = options_for(schema);
  o.read_only = true;
  try {
    PgEventStore store(o);
    FAIL("a read-only open of an empty schema succeeded");
  } catch (const Exception& e) {
    CHECK(e.error().is(errc::read_only));
  }
  {
    Session s(schema.url(), schema.name());
    s.exec("CREATE TABLE orders (id bigint)");
  }
  try {
    PgEventStore store(options_for(schema));
    FAIL("a schema holding other tables was taken for an event store");
  } catch (const Exception& e) {
    CHECK(e.error().is(errc::not_an_evs_database));
    CHECK(e.error().message.find(schema.name()) != std::string::npos);
  }
}

TEST_CASE("pg store: a schema-version-1 store is read as it is read-only, and a writable open adds the correlation index") {
  test::PgSchema schema;
  {
    PgEventStore store(options_for(schema));
    REQUIRE(store.append("a-1", ExpectedVersion::any(), std::vector{testdomain::deposit(1)}));
  }
  const auto version = [&] {
    return Session(schema.url(), schema.name()).exec("SELECT value FROM evs_meta WHERE key = 'schema_version'");
  };
  const auto indexed = [&] {
    return Session(schema.url(), "public")
        .exec("SELECT count(*) FROM pg_indexes WHERE schemaname = '" + schema.name() +
              "' AND indexname = 'events_by_correlation'");
  };
  CHECK(version() == "2");
  CHECK(indexed() == "1");
  // What a build of schema version 1 wrote.
  Session(schema.url(), schema.name()).exec("DROP INDEX events_by_correlation; UPDATE evs_meta SET value = '1' WHERE key = 'schema_version'");
  {
    PgOptions o = options_for(schema);
    o.read_only = true;
    PgEventStore store(o);
    CHECK(store.read_all(1, 10).value().events.size() == 1);
  }
  CHECK(version() == "1");
  CHECK(indexed() == "0");
  {
    PgEventStore store(options_for(schema));
    CHECK(store.read_all(1, 10).value().events.size() == 1);
  }
  CHECK(version() == "2");
  CHECK(indexed() == "1");
  // A version this build does not know is refused.
  Session(schema.url(), schema.name()).exec("UPDATE evs_meta SET value = '3' WHERE key = 'schema_version'");
  try {
    PgEventStore store(options_for(schema));
    FAIL("a store of a newer schema version was opened");
  } catch (const Exception& e) {
    CHECK(e.error().is(errc::not_an_evs_database));
  }
}

TEST_CASE("pg store: after a restore that reset transaction ids, new events still sort after the stored ones") {
  test::PgSchema schema;
  std::uint64_t stored = 0;
  {
    PgEventStore store(options_for(schema));
    auto appended = store.append("a-1", ExpectedVersion::any(), std::vector{testdomain::deposit(1)});
    REQUIRE(appended);
    stored = appended->last_position;
  }
  // What a dump restored into a younger cluster looks like: a stored position far ahead of the ids.
  const std::uint64_t ahead = stored + (std::uint64_t{5000000} << 20);
  {
    Session s(schema.url(), schema.name());
    s.exec("UPDATE events SET position = " + std::to_string(ahead));
  }
  PgEventStore store(options_for(schema));
  auto r = store.append("a-1", ExpectedVersion::any(), std::vector{testdomain::deposit(2)});
  REQUIRE(r);
  CHECK(r->first_position > ahead);
  wait_visible(store, r->last_position);
  CHECK(positions(store) == std::vector<std::uint64_t>{ahead, r->first_position});
}

TEST_CASE("store locations name the backend: postgresql URLs with evs_schema, sqlite: and plain paths") {
  auto pg = parse_store_location("postgresql://db.example/shop?sslmode=require&evs_schema=orders&connect_timeout=5");
  REQUIRE(pg);
  CHECK(pg->backend == StoreBackend::postgresql);
  CHECK(pg->schema == "orders");
  CHECK(pg->target == "postgresql://db.example/shop?sslmode=require&connect_timeout=5");
  auto plain = parse_store_location("postgres://u@h/db");
  REQUIRE(plain);
  CHECK(plain->schema == "public");
  CHECK(plain->target == "postgres://u@h/db");
  auto kv = parse_store_location("host=/run/pg dbname=shop evs_schema=s1");
  REQUIRE(kv);
  CHECK(kv->backend == StoreBackend::postgresql);
  CHECK(kv->target == "host=/run/pg dbname=shop");
  CHECK(kv->schema == "s1");
  auto file = parse_store_location("sqlite:/var/lib/app/events.db");
  REQUIRE(file);
  CHECK(file->backend == StoreBackend::sqlite);
  CHECK(file->target == "/var/lib/app/events.db");
  CHECK(parse_store_location("events.db")->target == "events.db");
  CHECK(parse_store_location("").error().is(errc::invalid_argument));
  CHECK(parse_store_location("sqlite:").error().is(errc::invalid_argument));
  CHECK(parse_store_location("postgresql://h/db?evs_schema=").error().is(errc::invalid_argument));
}

TEST_CASE("pg store: a group is decided append by append, whether it commits in one round trip or not") {
  using testdomain::deposit;
  test::PgSchema schema;
  PgEventStore store(options_for(schema));
  Session session(schema.url(), schema.name());
  // The type is interned and known before the groups, as in a running application.
  const std::vector<EventData> stored{deposit(1), deposit(2)};
  const AppendResult original = store.append("known-1", ExpectedVersion::no_stream(), stored).value();
  REQUIRE(store.append("known-2", ExpectedVersion::no_stream(), std::vector<EventData>{deposit(3)}));

  SUBCASE("every expectation holds: one transaction, versions and positions as read back") {
    HeldWriter held(store, session, schema.name());
    held.submit("new-1", ExpectedVersion::no_stream(), {deposit(4), deposit(5)});
    held.submit("known-1", ExpectedVersion::exact(2), {deposit(6)});
    held.submit("known-2", ExpectedVersion::stream_exists(), {deposit(7)});
    held.submit("new-2", ExpectedVersion::any(), {deposit(8)});
    const auto r = held.release();
    REQUIRE(r.size() == 4);
    for (const auto& one : r) REQUIRE(one);
    CHECK(r[0]->stream_version == 2);
    CHECK(r[1]->stream_version == 3);
    CHECK(r[2]->stream_version == 2);
    CHECK(r[3]->stream_version == 1);
    for (const auto& one : r) CHECK(transaction_of(one->first_position) == transaction_of(r[0]->first_position));
    CHECK(r[0]->last_position == r[0]->first_position + 1);
    CHECK(r[1]->first_position == r[0]->last_position + 1);
    wait_visible(store, r[3]->last_position);
    const auto read = store.read_stream("known-1").value();
    REQUIRE(read.size() == 3);
    CHECK(read[2].position == r[1]->first_position);
    CHECK(read[2].version == 3);
    CHECK(store.read_stream("new-1").value().at(1).position == r[0]->last_position);
  }
  SUBCASE("a wrong expectation fails alone and the rest of the group commits") {
    // One wrong expectation per group, of each kind, between two appends that hold.
    const std::pair<std::string, ExpectedVersion> wrong[] = {{"known-1", ExpectedVersion::exact(7)},
                                                             {"known-1", ExpectedVersion::no_stream()},
                                                             {"new-9", ExpectedVersion::stream_exists()},
                                                             {"new-9", ExpectedVersion::exact(1)}};
    std::uint64_t version = 1;
    for (const auto& one : wrong) {
      const std::string& stream = one.first;
      const ExpectedVersion expected = one.second;
      const std::string expectation = expected.to_string();
      CAPTURE(expectation);
      HeldWriter held(store, session, schema.name());
      held.submit("new-1", ExpectedVersion::any(), {deposit(4)});
      held.submit(stream, expected, {deposit(5)});
      held.submit("known-2", ExpectedVersion::exact(version), {deposit(6)});
      const auto r = held.release();
      REQUIRE(r.size() == 3);
      REQUIRE(r[0]);
      CHECK(r[1].error().is(errc::wrong_expected_version));
      REQUIRE(r[2]);
      CHECK(r[2]->stream_version == ++version);
      CHECK(transaction_of(r[2]->first_position) == transaction_of(r[0]->first_position));
    }
    CHECK(store.read_stream("known-1").value().size() == 2);
    CHECK_FALSE(store.read_stream("new-9"));
  }
  SUBCASE("an idempotent retry in a group reports the original result, beside new appends") {
    HeldWriter held(store, session, schema.name());
    held.submit("new-1", ExpectedVersion::no_stream(), {deposit(4)});
    held.submit("known-1", ExpectedVersion::any(), stored);  // an expectation that holds, as a blind retry's
    held.submit("known-2", ExpectedVersion::exact(1), {deposit(5)});
    const auto r = held.release();
    REQUIRE(r.size() == 3);
    REQUIRE(r[0]);
    REQUIRE(r[1]);
    CHECK(r[1]->idempotent_replay);
    CHECK(r[1]->first_position == original.first_position);
    CHECK(r[1]->stream_version == 2);
    REQUIRE(r[2]);
    CHECK(r[2]->stream_version == 2);
    CHECK(store.read_stream("known-1").value().size() == 2);
  }
  SUBCASE("two appends to one stream in a group see each other, in queue order") {
    HeldWriter held(store, session, schema.name());
    held.submit("new-1", ExpectedVersion::no_stream(), {deposit(4)});
    held.submit("new-1", ExpectedVersion::exact(1), {deposit(5)});
    held.submit("new-1", ExpectedVersion::no_stream(), {deposit(6)});
    held.submit("known-2", ExpectedVersion::no_stream(), {deposit(7)});
    held.submit("known-2", ExpectedVersion::exact(1), {deposit(8)});
    const auto r = held.release();
    REQUIRE(r.size() == 5);
    REQUIRE(r[0]);
    REQUIRE(r[1]);
    CHECK(r[1]->stream_version == 2);
    CHECK(r[2].error().is(errc::wrong_expected_version));
    CHECK(r[3].error().is(errc::wrong_expected_version));
    REQUIRE(r[4]);
    CHECK(r[4]->stream_version == 2);
  }
}

TEST_CASE("pg store: commits wake another store object's followers through NOTIFY, long before its fallback "
          "poll, also in a schema whose name is as long as PostgreSQL allows") {
  using testdomain::deposit;
  for (const std::size_t length : {std::size_t{0}, std::size_t{63}}) {
    CAPTURE(length);
    test::PgSchema schema(length);
    std::mutex m;  // declared before the stores: the follower's thread uses them until the stores are gone
    std::condition_variable cv;
    std::uint64_t heard = 0;
    PgEventStore writer(options_for(schema));
    PgOptions slow = options_for(schema);
    slow.poll_interval = 120s;  // within the test, only a notification can wake it
    PgEventStore follower(slow);
    follower.add_commit_listener([&](std::uint64_t head) {
      {
        std::lock_guard lock(m);
        heard = std::max(heard, head);
      }
      cv.notify_all();
    });
    // The change token moves once the follower's LISTEN is in place: commits from then on are heard.
    const std::uint64_t token = follower.change_token().value();
    const auto listening_by = std::chrono::steady_clock::now() + 30s;
    while (follower.change_token().value() == token) {
      REQUIRE_MESSAGE(std::chrono::steady_clock::now() < listening_by, "the follower never LISTENed");
      std::this_thread::sleep_for(1ms);
    }
    // The first append of a type goes the general way (it interns the type); the next ones to streams of
    // their own commit in one round trip. Each group's pipeline notifies.
    for (const char* stream : {"wake-1", "wake-2", "wake-3"}) {
      CAPTURE(stream);
      const auto appended = writer.append(stream, ExpectedVersion::no_stream(), std::vector{deposit(1)});
      REQUIRE(appended);
      std::unique_lock lock(m);
      CHECK_MESSAGE(cv.wait_for(lock, 30s, [&] { return heard >= appended->last_position; }),
                    "position " << appended->last_position << " not heard; the last heard is " << heard);
    }
  }
}

TEST_CASE("pg follower: it notifies the other processes for a commit whose group's own notification failed, "
          "and only then") {
  test::PgSchema schema;
  { PgEventStore made(options_for(schema)); }  // the store's tables, for the follower's head reads
  pg::StoreShared shared;
  shared.options = options_for(schema);
  shared.channel = pg::notify_channel(schema.name());
  shared.connect.search_path = schema.name();
  Session other(schema.url(), schema.name());  // another process, following the store
  other.exec("LISTEN \"" + shared.channel + "\"");
  pg::PgFollower follower(shared);
  follower.committed(true);  // the group's pipeline notified: the follower adds nothing
  CHECK(other.notifications(1s, 1) == 0);
  follower.committed(false);  // its notification failed: the follower sends it
  CHECK(other.notifications(30s, 1) == 1);
}

TEST_CASE("pg store: racing writers stay exact where the database defaults to serializable") {
  using testdomain::deposit;
  test::PgSchema schema;
  PgOptions o = options_for(schema);
  // Every session of these stores starts its transactions SERIALIZABLE unless told otherwise.
  o.url += (o.url.find('?') == std::string::npos ? "?" : "&") +
           std::string("options=-c%20default_transaction_isolation%3Dserializable");
  PgEventStore first(o), second(o);
  EventStore* stores[] = {&first, &second};
  constexpr int threads = 4;
  constexpr std::uint64_t rounds = 30;
  std::vector<std::vector<std::uint64_t>> won(threads);
  std::vector<std::thread> pool;
  for (int t = 0; t < threads; ++t) {
    pool.emplace_back([&, t] {
      EventStore& store = *stores[t % 2];  // two writers, each with its own connection
      for (std::uint64_t v = 0; v < rounds;) {
        auto r = store.append("race-1", ExpectedVersion::exact(v), std::vector{deposit(t)});
        if (r) {
          won[t].push_back(r->stream_version);
          v = r->stream_version;
        } else {
          CHECK_MESSAGE(r.error().is(errc::wrong_expected_version), r.error().message);
          v = store.stream_version("race-1").value();
        }
      }
    });
  }
  for (auto& th : pool) th.join();
  std::vector<int> winners(rounds + 1, 0);
  for (const auto& w : won)
    for (auto v : w) winners.at(v)++;
  for (std::uint64_t v = 1; v <= rounds; ++v) CHECK_MESSAGE(winners[v] == 1, "version " << v);
  const auto stream = first.read_stream("race-1").value();
  REQUIRE(stream.size() == rounds);
  for (std::size_t i = 0; i < stream.size(); ++i) CHECK(stream[i].version == i + 1);
}
