// The tool on PostgreSQL: every store command takes --db postgresql://..., and `copy` moves whole stores
// between SQLite and PostgreSQL with everything as stored (a server is needed: EVS_PG_URL, see
// support/pg_server.hpp; without one these tests are reported as skipped).
#include "cli_support.hpp"

#include "../support/pg_server.hpp"
#include "../support/store_compare.hpp"
#include "../support/test_events.hpp"

#include <evs/eventstore/pg_event_store.hpp>

#include <doctest/doctest.h>

#include <thread>

using namespace clitest;

namespace {

// The --db location of a test schema.
std::string location(const evs::test::PgSchema& schema) { return schema.location(); }

evs::PgOptions pg_options(const evs::test::PgSchema& schema) {
  evs::PgOptions o;
  o.url = schema.url();
  o.schema = schema.name();
  return o;
}

evs::SqliteEventStore open_read_only(const std::string& db) {
  evs::SqliteOptions o;
  o.path = db;
  o.read_only = true;
  return evs::SqliteEventStore(o);
}

void add_snapshots(const std::string& db) {
  evs::SqliteEventStore store({db});
  REQUIRE(store.save_snapshot({"order-1", 2, "shop::OrderState", 11, evs::Encoding::binary, "s1", {}, 2}));
  REQUIRE(store.save_snapshot({"cart-9", 1, "shop::CartState", 12, evs::Encoding::json, R"({"n":1})", {}, 1}));
}

// The detail of the check named `name` in `check --json` output ("" when it is not there), and its ok.
std::pair<std::string, std::string> check_result(const std::string& json_lines, const std::string& name) {
  for (const auto& d : parse_json_lines(json_lines))
    if (std::string(d["check"].GetString()) == name)
      return {d["ok"].IsBool() ? (d["ok"].GetBool() ? "ok" : "FAILED") : "not checked", d["detail"].GetString()};
  return {};
}

Output copy(const std::string& from, const std::string& to) {
  auto r = run(evs_bin, {"copy", "--from", from, "--to", to});
  CAPTURE(r.err);
  REQUIRE(r.code == 0);
  return r;
}

}  // namespace

TEST_SUITE("cli") {

TEST_CASE("the store commands work on --db postgresql:// as on the SQLite store copied there") {
  evs::test::PgSchema schema;
  Fixture f;
  add_snapshots(f.db);
  const std::string pg = location(schema);
  copy(f.db, pg);

  // Reading commands print the same on both backends.
  for (const std::vector<std::string>& command :
       {std::vector<std::string>{"streams"}, {"streams", "--category", "order", "--json"}, {"read", "order-1"},
        {"read", "order-1", "--backward", "--count", "2", "--json"}, {"export", "--all"},
        {"export", "--stream", "order-1", "--from", "2"}, {"tail", "--from", "2", "--count", "3"},
        {"tail", "--from", "1", "--count", "2", "--type", "clitest.order_placed", "--json"}}) {
    CAPTURE(command.front());
    auto on_sqlite = command, on_pg = command;
    on_sqlite.insert(on_sqlite.end(), {"--db", f.db});
    on_pg.insert(on_pg.end(), {"--db", pg});
    const auto a = run(evs_bin, on_sqlite), b = run(evs_bin, on_pg);
    CAPTURE(b.err);
    CHECK(b.code == 0);
    CHECK(b.err.empty());
    CHECK(!b.out.empty());
    CHECK(a.out == b.out);
  }
  // The application's own binary decodes the payloads there too.
  const auto shop_read = run(shop_bin, {"read", "order-1", "--db", pg});
  CHECK(shop_read.code == 0);
  CHECK(shop_read.out == run(shop_bin, {"read", "order-1", "--db", f.db}).out);

  SUBCASE("stats") {
    auto text = run(evs_bin, {"stats", "--db", pg});
    CHECK(text.code == 0);
    CHECK(contains(text.out, "store           " + pg));
    CHECK(contains(text.out, "(tables and indexes)"));
    CHECK(contains(text.out, "events          5"));
    CHECK(contains(text.out, "snapshots       2"));
    auto a = parse_json(run(evs_bin, {"stats", "--json", "--db", f.db}).out);
    auto b = parse_json(run(evs_bin, {"stats", "--json", "--db", pg}).out);
    CHECK(std::string(b["backend"].GetString()) == "postgresql");
    CHECK(std::string(a["backend"].GetString()) == "sqlite");
    CHECK(b["size"].GetUint64() > 0);
    for (const char* key : {"events", "streams", "snapshots", "last_position"}) CHECK(a[key] == b[key]);
    for (const char* key : {"first_recorded_at", "last_recorded_at", "types", "categories"})  // schema versions are per backend
      CHECK(a[key] == b[key]);
  }
  SUBCASE("check: positions unique and ascending, versions contiguous, every payload decodes") {
    auto r = run(shop_bin, {"check", "--json", "--db", pg});
    CAPTURE(r.out);
    CHECK(r.code == 0);
    CHECK_FALSE(contains(r.out, "integrity_check"));
    CHECK(check_result(r.out, "positions") ==
          std::pair<std::string, std::string>{"ok", "5 unique, ascending in log order, 1..5 (gaps are normal on PostgreSQL)"});
    CHECK(check_result(r.out, "stream versions") ==
          std::pair<std::string, std::string>{"ok", "3 streams, contiguous, in log order"});
    CHECK(check_result(r.out, "recorded_at order").first == "ok");
    CHECK(check_result(r.out, "event type clitest.item_added v2") ==
          std::pair<std::string, std::string>{"ok", "3 events decode as clitest::ItemAdded"});
    CHECK(contains(run(shop_bin, {"check", "--db", pg}).out, "check passed"));
    // A stream whose versions skip one fails the check.
    evs::test::pg_exec(schema.url(), "DELETE FROM \"" + schema.name() + "\".events WHERE position = 2");
    auto bad = run(shop_bin, {"check", "--json", "--db", pg});
    CHECK(bad.code == 1);
    CHECK(check_result(bad.out, "stream versions") ==
          std::pair<std::string, std::string>{"FAILED", "order-1 (version 3, 2 events, versions 1..3)"});
    CHECK(contains(bad.err, "check failed: 1 problem in " + pg));
  }
  SUBCASE("tail follows new commits of another process") {
    Child tail(evs_bin, {"tail", "--db", pg, "--from", "1", "--count", "7"});
    {
      evs::PgEventStore store(pg_options(schema));
      append(store, "live-1", {raw_event("clitest.ping", R"({"i":1})", evs::Encoding::json)});
      append(store, "live-1", {raw_event("clitest.ping", R"({"i":2})", evs::Encoding::json)});
    }
    auto r = tail.finish();
    CHECK(r.code == 0);
    CHECK(lines(r.out).size() > 7);
    CHECK(contains(r.out, "live-1 v2  clitest.ping"));
  }
  SUBCASE("snapshots drop, and import of JSON lines") {
    auto dropped = run(evs_bin, {"snapshots", "drop", "--stream", "order-1", "--db", pg});
    CHECK(dropped.code == 0);
    CHECK(dropped.out == "dropped 1 snapshot of stream order-1\n");
    CHECK(run(evs_bin, {"snapshots", "drop", "--all", "--db", pg}).out == "dropped 1 snapshot\n");
    const auto exported = run(evs_bin, {"export", "--all", "--db", f.db});
    // The same events again are all skipped; new ones are appended after the copied ones.
    auto again = run(evs_bin, {"import", "-", "--db", pg}, exported.out);
    CHECK(again.code == 0);
    CHECK(contains(again.out, "imported 0 events into " + pg + "; skipped 5 already stored"));
    auto more = run(evs_bin, {"import", "-", "--db", pg},
                    R"({"stream":"order-1","event_id":"6f7c2b7a-7d6f-4d35-9a3c-1a2b3c4d5e6f","type":"clitest.note","payload":{"n":1}})"
                    "\n");
    CHECK(more.code == 0);
    auto read = parse_json_lines(run(evs_bin, {"read", "order-1", "--json", "--db", pg}).out);
    REQUIRE(read.size() == 4);
    CHECK(read[3]["version"].GetUint64() == 4);
    CHECK(read[3]["position"].GetUint64() > 5);
  }
  SUBCASE("projection data lives in SQLite files: --projections-db") {
    auto projections = run(evs_bin, {"projections", "--db", pg});
    CHECK(projections.code == 0);
    CHECK(contains(projections.out, "no projection checkpoints: the store " + pg +
                                        " holds none; pass the projection database with --projections-db"));
    add_projection_rows(f.db, event_id_hex(f.db));
    auto with = run(evs_bin, {"projections", "--db", pg, "--projections-db", f.db, "--json"});
    CHECK(with.code == 0);
    CHECK(contains(with.out, R"("projection":"orders_by_customer")"));
    CHECK(contains(with.out, R"("head":5)"));
    auto letters = run(evs_bin, {"dead-letters", "list", "--db", pg});
    check_one_line_error(letters, 1);
    CHECK(contains(letters.err, "pass it with --projections-db"));
    auto show = run(evs_bin, {"dead-letters", "show", "1", "--db", pg, "--projections-db", f.db});
    CHECK(show.code == 0);
    CHECK(contains(show.out, "#1  order-1 v1"));
  }
}

TEST_CASE("stats on PostgreSQL names the sessions whose open transactions hold the log readers back") {
  evs::test::PgSchema schema;
  {
    evs::PgEventStore store(pg_options(schema));
    REQUIRE(store.append("acc-1", evs::ExpectedVersion::any(), std::vector<evs::EventData>{testdomain::deposit(1)}));
  }
  // Another program's transaction that took an id and stays open.
  PGconn* other = PQconnectdb(schema.url().c_str());
  REQUIRE(PQstatus(other) == CONNECTION_OK);
  const auto exec = [&](const char* sql) {
    PGresult* r = PQexec(other, sql);
    const bool ok = PQresultStatus(r) == PGRES_COMMAND_OK || PQresultStatus(r) == PGRES_TUPLES_OK;
    PQclear(r);
    REQUIRE_MESSAGE(ok, sql << ": " << PQerrorMessage(other));
  };
  exec("SET application_name = 'stuck-report'");
  exec("BEGIN");
  exec("SELECT pg_current_xact_id()");
  std::this_thread::sleep_for(std::chrono::milliseconds(1100));  // fence holders younger than 1 s are not listed

  const std::string pg = location(schema);
  auto json = run(evs_bin, {"stats", "--json", "--db", pg});
  CAPTURE(json.err);
  REQUIRE(json.code == 0);
  const auto d = parse_json(json.out);
  REQUIRE(d["readers_held_back_by"].IsArray());
  bool named = false;
  for (const auto& h : d["readers_held_back_by"].GetArray()) {
    if (h["pid"].GetInt64() != PQbackendPID(other)) continue;
    named = true;
    CHECK(std::string(h["application_name"].GetString()) == "stuck-report");
    CHECK(std::string(h["state"].GetString()) == "idle in transaction");
    CHECK(h["age_ms"].GetInt64() >= 1000);
  }
  CHECK_MESSAGE(named, json.out);
  auto text = run(evs_bin, {"stats", "--db", pg});
  CHECK(contains(text.out, "fence held by"));
  CHECK(contains(text.out, "pid " + std::to_string(PQbackendPID(other)) + " (stuck-report, idle in transaction, open "));

  exec("COMMIT");
  const auto after = parse_json(run(evs_bin, {"stats", "--json", "--db", pg}).out);
  for (const auto& h : after["readers_held_back_by"].GetArray()) CHECK(h["pid"].GetInt64() != PQbackendPID(other));
  PQfinish(other);
}

TEST_CASE("evs copy SQLite -> PostgreSQL -> SQLite is identical: every field of every event, the snapshots and "
          "the schema records") {
  evs::test::PgSchema schema;
  Fixture f;
  add_snapshots(f.db);
  const std::string pg = location(schema);
  const auto to_pg = copy(f.db, pg);
  CHECK(to_pg.out == "copied 5 events in 3 streams, 2 snapshots and 2 schema records from " + f.db + " to " + pg +
                         " (positions up to 5)\n");
  const std::string back = (f.dir / "back.db").string();
  copy(pg, back);
  {
    auto original = open_read_only(f.db);
    auto round_trip = open_read_only(back);
    CHECK(evs::test::check_same_store(original, round_trip) == 5);
    auto options = pg_options(schema);
    options.read_only = true;
    evs::PgEventStore middle(options);
    CHECK(evs::test::check_same_store(original, middle) == 5);
  }
  CHECK(run(evs_bin, {"check", "--db", back}).code == 0);

  // Appends after the copy go after the copied events on both targets.
  for (const std::string& db : {pg, back}) {
    CAPTURE(db);
    auto r = run(evs_bin, {"import", "-", "--db", db},
                 R"({"stream":"order-2","event_id":"0d5e1c52-3f43-4b7e-8a55-0f3d3b1f2e71","type":"clitest.note","payload":{"n":2}})"
                 "\n");
    CHECK(r.code == 0);
    // On PostgreSQL the log's readers may lag a commit while another test's transaction is open.
    auto log = parse_json_lines(run(evs_bin, {"export", "--all", "--db", db}).out);
    for (int i = 0; i < 100 && log.size() < 6; ++i) {
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
      log = parse_json_lines(run(evs_bin, {"export", "--all", "--db", db}).out);
    }
    REQUIRE(log.size() == 6);
    CHECK(log[5]["position"].GetUint64() > 5);
    CHECK(std::string(log[5]["stream"].GetString()) == "order-2");
    CHECK(log[5]["version"].GetUint64() == 2);
  }
}

TEST_CASE("evs copy of a PostgreSQL-born store to SQLite keeps its gaps, and check, read, tail and import work on "
          "the copy") {
  evs::test::PgSchema schema;
  {
    evs::PgEventStore store(pg_options(schema));
    for (int i = 0; i < 3; ++i) {
      append(store, "order-" + std::to_string(i), {binary_event(clitest::OrderPlaced{"o", "c", i})});
      append(store, "order-" + std::to_string(i), {binary_event(clitest::ItemAdded{"o", "s", i}),
                                                   binary_event(clitest::ItemAdded{"o", "t", i})});
    }
  }
  evs::test::TempDir dir;
  const std::string copied = (dir / "copied.db").string();
  copy(location(schema), copied);
  const auto log = parse_json_lines(run(evs_bin, {"export", "--all", "--db", copied}).out);
  REQUIRE(log.size() == 9);
  const std::uint64_t last = log[8]["position"].GetUint64();
  CHECK(last > 1u << 20);

  auto checked = run(shop_bin, {"check", "--json", "--db", copied});
  CAPTURE(checked.out);
  CHECK(checked.code == 0);
  CHECK(check_result(checked.out, "positions") ==
        std::pair<std::string, std::string>{"ok", "up to position " + std::to_string(last) +
                                                      " imported with gaps (copied from another store)"});
  CHECK(check_result(checked.out, "event type clitest.item_added v2") ==
        std::pair<std::string, std::string>{"ok", "6 events decode as clitest::ItemAdded"});
  auto tail = run(evs_bin, {"tail", "--from", "1", "--count", "3", "--type", "clitest.order_placed", "--db", copied});
  CHECK(tail.code == 0);
  CHECK(lines(tail.out).size() > 3);
  CHECK(contains(tail.out, "order-2 v1  clitest.order_placed"));

  auto imported = run(evs_bin, {"import", "-", "--db", copied},
                      R"({"stream":"order-1","event_id":"5e0c3d0a-1b7a-4c8e-9f5e-2a6b7c8d9e0f","type":"clitest.note","payload":{}})"
                      "\n");
  CHECK(imported.code == 0);
  auto after = parse_json_lines(run(evs_bin, {"read", "order-1", "--json", "--db", copied}).out);
  REQUIRE(after.size() == 4);
  CHECK(after[3]["position"].GetUint64() == last + 1);
  auto rechecked = run(evs_bin, {"check", "--json", "--db", copied});
  CHECK(rechecked.code == 0);
  CHECK(check_result(rechecked.out, "positions").second ==
        "up to position " + std::to_string(last) + " imported with gaps (copied from another store), " +
            std::to_string(last + 1) + ".." + std::to_string(last + 1) + ", gap-free");
}

TEST_CASE("evs copy refuses a PostgreSQL target that is not empty, and reading a schema without a store creates "
          "none") {
  evs::test::PgSchema schema;
  Fixture f;
  const std::string pg = location(schema);

  auto missing = run(evs_bin, {"stats", "--db", pg});
  check_one_line_error(missing, 1);
  CHECK(contains(missing.err, "there is no event store there, and a read-only open creates none"));
  CHECK(run(evs_bin, {"stats", "--db", pg}).code == 1);  // still none

  copy(f.db, pg);
  auto twice = run(evs_bin, {"copy", "--from", f.db, "--to", pg});
  check_one_line_error(twice, 1);
  CHECK(contains(twice.err, "the target store is not empty (it holds 5 events"));
  auto back = run(evs_bin, {"copy", "--from", pg, "--to", f.db});
  check_one_line_error(back, 1);
  CHECK(contains(back.err, "the target store is not empty"));
}

TEST_CASE("rebuild and replay --until run an application's projection over a PostgreSQL store into its SQLite "
          "read model") {
  evs::test::PgSchema schema;
  evs::test::TempDir dir;
  std::vector<evs::RecordedEvent> log;
  {
    evs::PgEventStore store(pg_options(schema));
    std::uint64_t last = 0;
    for (int i = 0; i < 12; ++i) {
      auto r = store.append("acc-" + std::to_string(i % 3), evs::ExpectedVersion::any(),
                            std::vector<evs::EventData>{testdomain::deposit(10 + i), testdomain::deposit(1)});
      REQUIRE(r);
      last = r->last_position;
    }
    evs::test::wait_for_head(store, last);
    log = evs::test::whole_log(store);
  }
  REQUIRE(log.size() == 24);
  // The totals (sum of cents, count) per stream of the events up to `until`.
  const auto expected = [&](std::uint64_t until) {
    std::map<std::string, std::string> out;
    std::map<std::string, std::pair<std::int64_t, std::int64_t>> sums;
    for (const auto& e : log) {
      if (e.position > until) break;
      const auto d = evs::decode<testdomain::Deposited>(e.payload, e.encoding).value();
      sums[e.stream_id].first += d.cents;
      sums[e.stream_id].second += 1;
    }
    for (const auto& [stream, sum] : sums) out[stream] = std::to_string(sum.first) + "/" + std::to_string(sum.second);
    return out;
  };
  const auto totals = [](const std::string& db) {
    std::map<std::string, std::string> out;
    for (const char* stream : {"acc-0", "acc-1", "acc-2"}) {
      const std::string v = sql_text(db, std::string("SELECT cents || '/' || n FROM totals WHERE stream = '") + stream + "'");
      if (!v.empty()) out[stream] = v;
    }
    return out;
  };
  const std::string read_model = (dir / "read.db").string();
  const std::vector<std::pair<std::string, std::string>> env{{"EVS_TEST_READ_MODEL", read_model}};
  auto rebuilt = run(EVS_REBUILD_APP, {"--db", location(schema), "rebuild", "totals"}, {}, env);
  CAPTURE(rebuilt.err);
  CHECK(rebuilt.code == 0);
  CHECK(totals(read_model) == expected(UINT64_MAX));

  const std::uint64_t until = log[9].position;
  const std::string target = (dir / "as-of.db").string();
  auto replayed = run(EVS_REBUILD_APP,
                      {"--db", location(schema), "replay", "totals", "--until", std::to_string(until), "--target", target},
                      {}, env);
  CAPTURE(replayed.err);
  CHECK(replayed.code == 0);
  CHECK(totals(target) == expected(until));
  CHECK(totals(target) != expected(UINT64_MAX));
}

}  // TEST_SUITE
