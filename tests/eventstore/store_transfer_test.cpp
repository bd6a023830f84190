// StoreTransfer and copy_store: whole stores moved between backends with everything as stored, and the
// stores they produce working as stores afterwards.
#include "../support/backends.hpp"
#include "../support/store_compare.hpp"
#include "../support/test_events.hpp"

#include <evs/eventstore/store_transfer.hpp>

#include <doctest/doctest.h>
#include <sqlite3.h>

#include <chrono>
#include <string>
#include <thread>
#include <vector>

namespace {

using namespace evs;
using testdomain::deposit;
using testdomain::of_type;

// What a copy must keep: typed events (they make schema records), raw binary and JSON payloads, correlation,
// causation and user metadata, several streams and categories, and snapshots (one of an older version).
void fill(EventStore& store) {
  for (int round = 0; round < 3; ++round) {
    for (const std::string stream : {"acct-1", "acct-2", "ledger-main"}) {
      AppendEventOptions typed;
      typed.metadata.correlation_id = "corr-" + std::to_string(round);
      typed.metadata.causation_id = round == 1 ? "" : "cause-" + stream;
      if (round != 2) typed.metadata.user = {{"user", "u" + std::to_string(round)}, {"tenant", "t"}};
      REQUIRE(store.append_event(stream, ExpectedVersion::any(), testdomain::Deposited{100 + round, stream}, typed));
      EventData json = of_type("test.note", R"({"round":)" + std::to_string(round) + "}");
      json.encoding = Encoding::json;
      EventData raw = deposit(7, "raw");
      raw.schema_version = 1;
      REQUIRE(store.append(stream, ExpectedVersion::any(), std::vector<EventData>{json, raw}));
    }
    REQUIRE(store.append_event("acct-1", ExpectedVersion::any(), testdomain::Withdrawn{5}));
  }
  REQUIRE(store.save_snapshot({"acct-1", 4, "test::Account", 0xfeedbeefcafe1234, Encoding::binary, std::string("s\0b", 3),
                               {}, 3}));
  REQUIRE(store.save_snapshot({"ledger-main", 9, "test::Ledger", 7, Encoding::json, R"({"n":9})", {}, 1}));
}

// A recorded event for imports (the transfer stores it as given).
RecordedEvent recorded(std::uint64_t position, std::string stream, std::uint64_t version, Timestamp at) {
  RecordedEvent e;
  e.position = position;
  e.stream_id = std::move(stream);
  e.version = version;
  e.event_id = Uuid::generate();
  e.type = "test.note";
  e.schema_version = 1;
  e.encoding = Encoding::json;
  e.recorded_at = at;
  e.payload = R"({"p":)" + std::to_string(position) + "}";
  e.metadata.correlation_id = "c" + std::to_string(position);
  return e;
}

Timestamp at_us(std::int64_t us) { return Timestamp(std::chrono::microseconds(us)); }

std::unique_ptr<StoreTransfer> transfer_of(EventStore& store) {
  auto t = open_transfer(store);
  REQUIRE(t);
  return std::move(*t);
}

}  // namespace

TEST_CASE_TEMPLATE("copy_store copies every event, stream version, snapshot and schema record, and appends to the "
                   "copy go after the copied events",
                   B, evs::test::SqliteBackend EVS_PG_BACKEND) {
  evs::test::SqliteBackend source_backend;
  auto source = evs::test::open_plain(source_backend);
  fill(*source);
  B target_backend;
  auto target = evs::test::open_plain(target_backend);

  std::vector<CopyProgress> reports;
  CopyOptions options;
  options.batch_size = 4;  // several transactions
  options.progress = [&](const CopyProgress& p) { reports.push_back(p); };
  auto stats = copy_store(*source, *target, options);
  REQUIRE(stats);
  CHECK(stats->events == 30);
  CHECK(stats->streams == 3);
  CHECK(stats->snapshots == 2);
  CHECK(stats->schemas == 2);
  CHECK(stats->last_position == 30);
  CHECK(evs::test::check_same_store(*source, *target) == 30);
  REQUIRE(!reports.empty());
  CHECK(reports.front().stage == CopyProgress::Stage::schemas);
  CHECK(reports.front().total_events == 30);
  CHECK(reports.back().stage == CopyProgress::Stage::done);
  CHECK(reports.back().events == 30);
  CHECK(reports.back().snapshots == 2);

  // The copy is a store: its streams continue at their versions and new events sort after the copied ones.
  auto appended = target->append("acct-1", ExpectedVersion::exact(12), std::vector<EventData>{deposit(1), deposit(2)});
  REQUIRE(appended);
  CHECK(appended->stream_version == 14);
  CHECK(appended->first_position > 30);
  auto fresh = target->append("new-1", ExpectedVersion::no_stream(), std::vector<EventData>{deposit(3)});
  REQUIRE(fresh);
  CHECK(fresh->first_position > appended->last_position);
  evs::test::wait_for_head(*target, fresh->last_position);
  const auto log = evs::test::whole_log(*target);
  REQUIRE(log.size() == 33);
  CHECK(log[30].position == appended->first_position);
  CHECK(log[32].stream_id == "new-1");
  // A retried append of a copied event is recognized by its id: it reports the copied position.
  EventData again = deposit(9);
  again.event_id = log[0].event_id;
  auto retried = target->append(log[0].stream_id, ExpectedVersion::any(), std::vector<EventData>{again});
  REQUIRE(retried);
  CHECK(retried->idempotent_replay);
  CHECK(retried->first_position == log[0].position);
}

TEST_CASE_TEMPLATE("an import refuses positions at or below the store's last and versions that do not continue "
                   "their stream, and stores nothing of that batch",
                   B, evs::test::SqliteBackend EVS_PG_BACKEND) {
  B backend;
  auto store = evs::test::open_plain(backend);
  auto transfer = transfer_of(*store);
  REQUIRE(transfer->import_events(std::vector<RecordedEvent>{recorded(10, "s-1", 1, at_us(1000)),
                                                             recorded(20, "s-1", 2, at_us(2000))}));
  const auto refused = [&](std::vector<RecordedEvent> batch, const std::string& words) {
    auto r = transfer->import_events(batch);
    REQUIRE_FALSE(r);
    CHECK(r.error().is(errc::invalid_argument));
    CAPTURE(r.error().message);
    CHECK(r.error().message.find(words) != std::string::npos);
    CHECK(transfer->contents().value().events == 2);
  };
  refused({recorded(30, "s-2", 1, at_us(3000)), recorded(20, "s-2", 2, at_us(3000))}, "positions must ascend");
  refused({recorded(15, "s-2", 1, at_us(3000))}, "holds events up to position 20");
  refused({recorded(30, "s-2", 1, at_us(3000)), recorded(40, "s-1", 4, at_us(3000))}, "next version is 3");
  refused({recorded(30, "s-3", 2, at_us(3000))}, "next version is 1");
  CHECK(transfer->contents().value().streams == 1);
  CHECK(store->stream_version("s-1").value() == 2);

  // A snapshot ahead of its stream, and a schema record that exists, are refused too.
  auto snapshot = transfer->import_snapshots(std::vector<Snapshot>{{"s-1", 3, "T", 1, Encoding::binary, "x", {}, 1}});
  REQUIRE_FALSE(snapshot);
  CHECK(snapshot.error().is(errc::invalid_argument));
  const RecordedSchema schema{"test.note", 1, 42, "n:int64", at_us(5)};
  REQUIRE(transfer->import_schemas(std::vector<RecordedSchema>{schema}));
  auto twice = transfer->import_schemas(std::vector<RecordedSchema>{schema});
  REQUIRE_FALSE(twice);
  CHECK(twice.error().is(errc::invalid_argument));
  CHECK(store->recorded_schemas().value() == std::vector<RecordedSchema>{schema});
}

TEST_CASE("copy_store refuses a target that is not empty, and writes nothing to it") {
  evs::test::SqliteBackend a, b;
  auto source = evs::test::open_plain(a);
  auto target = evs::test::open_plain(b);
  fill(*source);
  REQUIRE(target->append("other-1", ExpectedVersion::no_stream(), std::vector<EventData>{deposit(1)}));
  auto r = copy_store(*source, *target);
  REQUIRE_FALSE(r);
  CHECK(r.error().is(errc::invalid_argument));
  CHECK(r.error().message.find("not empty (it holds 1 event, 1 stream, 0 snapshots") != std::string::npos);
  CHECK(target->last_position().value() == 1);
  CHECK(target->recorded_schemas().value().empty());
}

TEST_CASE("a copy that fails midway says how far it got, and the target keeps the whole batches before it") {
  evs::test::SqliteBackend a, b;
  auto source = evs::test::open_plain(a);
  fill(*source);
  source.reset();
  // Damage the source: acct-2 loses its version 2, so its version 3 no longer continues the stream.
  sqlite3* db = nullptr;
  REQUIRE(sqlite3_open((a.dir / "events.db").string().c_str(), &db) == SQLITE_OK);
  REQUIRE(sqlite3_exec(db,
                       "DELETE FROM events WHERE version = 2 AND stream = (SELECT id FROM streams WHERE name = 'acct-2')",
                       nullptr, nullptr, nullptr) == SQLITE_OK);
  sqlite3_close(db);
  source = evs::test::open_plain(a);
  auto target = evs::test::open_plain(b);
  CopyOptions options;
  options.batch_size = 2;
  auto r = copy_store(*source, *target, options);
  REQUIRE_FALSE(r);
  CAPTURE(r.error().message);
  CHECK(r.error().is(errc::invalid_argument));
  // acct-2's version 3 is at position 6; the batch of positions 6 and 7 fails.
  CHECK(r.error().message.find("the copy stopped after 4 events (up to position 4): import the event at position 6 "
                               "(stream acct-2, version 3)") != std::string::npos);
  CHECK(r.error().message.find("partial copy") != std::string::npos);
  CHECK(target->last_position().value() == 4);
}

TEST_CASE("a SQLite store imported with gaps in its positions reads, filters, finds times and appends after its "
          "last position") {
  evs::test::SqliteBackend backend;
  auto store = evs::test::open_plain(backend);
  auto transfer = transfer_of(*store);
  // Positions as PostgreSQL makes them: far apart (2^20 per transaction and more).
  const std::vector<std::uint64_t> positions = {5, 6, std::uint64_t{1} << 30, (std::uint64_t{1} << 30) + 1,
                                                std::uint64_t{1} << 40, std::uint64_t{1} << 50};
  std::vector<RecordedEvent> events;
  for (std::size_t i = 0; i < positions.size(); ++i) {
    events.push_back(recorded(positions[i], i % 2 == 0 ? "even-1" : "odd-1", i / 2 + 1, at_us(1000 * (i + 1))));
    if (i == 3) events.back().type = "test.rare";
  }
  REQUIRE(transfer->import_events(events));
  REQUIRE(transfer->finish_import());
  CHECK(store->last_position().value() == positions.back());

  const auto log = evs::test::whole_log(*store);
  REQUIRE(log.size() == positions.size());
  for (std::size_t i = 0; i < log.size(); ++i) evs::test::check_same_event(log[i], events[i]);
  // A filtered read jumps over the gaps instead of scanning them window by window (2^50 positions).
  const auto started = std::chrono::steady_clock::now();
  auto rare = store->read_all(1, 10, ReadAllFilter{{"test.rare"}, {}});
  REQUIRE(rare);
  REQUIRE(rare->events.size() == 1);
  CHECK(rare->events[0].position == positions[3]);
  auto odd = store->read_all(positions[1] + 1, 10, ReadAllFilter{{}, {"odd"}});
  REQUIRE(odd);
  REQUIRE(odd->events.size() == 2);
  CHECK(odd->events[1].position == positions[5]);
  CHECK(std::chrono::steady_clock::now() - started < std::chrono::seconds(5));
  // Time travel: the last position recorded at or before a time.
  CHECK(store->position_at(at_us(999)).value() == 0);
  for (std::size_t i = 0; i < positions.size(); ++i) {
    CHECK(store->position_at(at_us(1000 * (i + 1))).value() == positions[i]);
    CHECK(store->position_at(at_us(1000 * (i + 1) + 500)).value() == positions[i]);
  }
  // Appends continue after the last position, gap-free from there.
  auto appended = store->append("odd-1", ExpectedVersion::exact(3), std::vector<EventData>{deposit(1), deposit(2)});
  REQUIRE(appended);
  CHECK(appended->first_position == positions.back() + 1);
  CHECK(appended->last_position == positions.back() + 2);
  CHECK(store->position_at(std::chrono::time_point_cast<std::chrono::microseconds>(Clock::now() + std::chrono::hours(1)))
            .value() == positions.back() + 2);
}

TEST_CASE("open_transfer refuses a store without bulk access") {
  evs::test::MemoryBackend backend;
  auto store = evs::test::open_plain(backend);
  auto t = open_transfer(*store);
  REQUIRE_FALSE(t);
  CHECK(t.error().is(errc::invalid_argument));
}

#ifdef EVS_TEST_POSTGRESQL
TEST_CASE("copy_store from PostgreSQL to SQLite keeps the positions with their gaps, and the SQLite copy reads, "
          "filters, finds times and appends") {
  evs::test::PgBackend pg;
  auto source = pg.open_plain();
  fill(*source);
  evs::test::SqliteBackend backend;
  auto target = evs::test::open_plain(backend);
  REQUIRE(copy_store(*source, *target));
  CHECK(evs::test::check_same_store(*source, *target) == 30);
  const auto log = evs::test::whole_log(*target);
  CHECK(log.back().position > 1u << 20);  // PostgreSQL's positions, gaps and all

  auto notes = target->read_all(1, 100, ReadAllFilter{{"test.note"}, {"ledger"}});
  REQUIRE(notes);
  CHECK(notes->events.size() == 3);
  for (const RecordedEvent& e : log) {
    // Sequential appends on PostgreSQL record non-decreasing times: time travel finds each event's position
    // (the last one recorded at that time).
    std::uint64_t expected = 0;
    for (const RecordedEvent& o : log)
      if (o.recorded_at <= e.recorded_at) expected = o.position;
    CHECK(target->position_at(e.recorded_at).value() == expected);
  }
  auto appended = target->append("acct-2", ExpectedVersion::exact(9), std::vector<EventData>{deposit(1)});
  REQUIRE(appended);
  CHECK(appended->first_position == log.back().position + 1);
  CHECK(appended->stream_version == 10);
}

TEST_CASE("a copy into PostgreSQL raises the transaction-id offset when the copied positions are ahead of the "
          "server's, so appends still sort after them") {
  // A SQLite store whose log was imported with positions far beyond this server's transaction ids.
  evs::test::SqliteBackend backend;
  auto source = evs::test::open_plain(backend);
  const std::uint64_t far = std::uint64_t{50'000'000} << 20;
  REQUIRE(transfer_of(*source)->import_events(
      std::vector<RecordedEvent>{recorded(far, "s-1", 1, at_us(1000)), recorded(far + 1, "s-1", 2, at_us(2000))}));
  evs::test::PgBackend pg;
  auto target = pg.open_plain();
  REQUIRE(copy_store(*source, *target));
  // Readers see the copied events (they are below the fence), and a new append sorts after them.
  evs::test::wait_for_head(*target, far + 1);
  CHECK(target->last_position().value() == far + 1);
  auto appended = target->append("s-1", ExpectedVersion::exact(2), std::vector<EventData>{deposit(1)});
  REQUIRE(appended);
  CHECK(appended->first_position > far + 1);
  target.reset();
  target = pg.open_plain();  // and so does one of a store opened afresh
  auto again = target->append("s-2", ExpectedVersion::no_stream(), std::vector<EventData>{deposit(2)});
  REQUIRE(again);
  CHECK(again->first_position > appended->last_position);
  evs::test::wait_for_head(*target, again->last_position);
  const auto log = evs::test::whole_log(*target);
  REQUIRE(log.size() == 4);
  CHECK(log[2].position == appended->first_position);
  CHECK(log[3].position == again->first_position);
}

TEST_CASE("a copy from PostgreSQL waits for the events its readers cannot see yet, and says so when they stay "
          "hidden") {
  evs::test::PgBackend pg;
  auto source = pg.open_plain();
  REQUIRE(source->append("a-1", ExpectedVersion::any(), std::vector<EventData>{deposit(1)}));
  // Another session's open transaction (it has an id) holds every reader of the cluster back.
  PGconn* blocker = PQconnectdb(pg.schema.url().c_str());
  REQUIRE(PQstatus(blocker) == CONNECTION_OK);
  PQclear(PQexec(blocker, "BEGIN"));
  PQclear(PQexec(blocker, "SELECT pg_current_xact_id()"));
  REQUIRE(source->append("a-1", ExpectedVersion::any(), std::vector<EventData>{deposit(2), deposit(3)}));

  evs::test::SqliteBackend first;
  auto hidden = evs::test::open_plain(first);
  CopyOptions options;
  options.wait_for_readers = std::chrono::milliseconds(300);
  auto r = copy_store(*source, *hidden, options);
  REQUIRE_FALSE(r);
  CAPTURE(r.error().message);
  CHECK(r.error().is(errc::timed_out));
  CHECK(r.error().message.find("the source held 3 events when the copy started, but only 1 are readable") !=
        std::string::npos);

  // Once the transaction ends, a copy waits for the rest and gets everything.
  std::thread ender([&] {
    std::this_thread::sleep_for(std::chrono::milliseconds(300));
    PQclear(PQexec(blocker, "COMMIT"));
  });
  evs::test::SqliteBackend second;
  auto target = evs::test::open_plain(second);
  auto copied = copy_store(*source, *target);
  ender.join();
  PQfinish(blocker);
  REQUIRE(copied);
  CHECK(copied->events == 3);
  CHECK(evs::test::check_same_store(*source, *target) == 3);
}
#endif
