// Drives the real `evs` binary and an application that embeds the tool (cli_app, as `shop`) the way a user
// would: spawn the process, then check its stdout, stderr and exit code.
#include "cli_support.hpp"

#include <doctest/doctest.h>

#include <filesystem>
#include <fstream>
#include <thread>

using namespace clitest;

TEST_SUITE("cli") {

TEST_CASE("--help works on the tool and on each command, and lists the commands") {
  auto r = run(evs_bin, {"--help"});
  CHECK(r.code == 0);
  CHECK(r.err.empty());
  for (const char* command : {"streams", "read", "tail", "stats", "projections", "dead-letters", "check", "export", "import"})
    CHECK_MESSAGE(contains(r.out, command), command);
  CHECK(contains(r.out, "--db"));
  CHECK(contains(r.out, "--json"));

  for (const char* command : {"streams", "read", "tail", "stats", "projections", "dead-letters", "check", "export", "import"}) {
    CAPTURE(command);
    auto sub = run(evs_bin, {command, "--help"});
    CHECK(sub.code == 0);
    CHECK(sub.err.empty());
    CHECK(contains(sub.out, command));
  }
  auto nested = run(evs_bin, {"dead-letters", "retry", "--help"});
  CHECK(nested.code == 0);
  CHECK(contains(nested.out, "--all"));

  auto shop = run(shop_bin, {"--help"});
  CHECK(shop.code == 0);
  CHECK(contains(shop.out, "shop"));
}

TEST_CASE("bad usage exits 2 with one line on stderr") {
  Fixture f;
  check_one_line_error(run(evs_bin, {}), 2);                                        // no command
  check_one_line_error(run(evs_bin, {"frobnicate", "--db", f.db}), 2);              // unknown command
  check_one_line_error(run(evs_bin, f.with_db({"streams", "--bogus"})), 2);         // unknown option
  check_one_line_error(run(evs_bin, f.with_db({"read"})), 2);                       // missing argument
  check_one_line_error(run(evs_bin, f.with_db({"read", "order-1", "--count", "x"})), 2);  // bad value
  check_one_line_error(run(evs_bin, f.with_db({"read", "order-1", "--count", "0"})), 2);
  check_one_line_error(run(evs_bin, {"streams"}), 2);                               // no --db
  check_one_line_error(run(evs_bin, f.with_db({"export"})), 2);                     // neither --stream nor --all
  check_one_line_error(run(evs_bin, f.with_db({"export", "--all", "--stream", "order-1"})), 2);
  check_one_line_error(run(evs_bin, f.with_db({"dead-letters"})), 2);
  check_one_line_error(run(evs_bin, f.with_db({"dead-letters", "retry"})), 2);      // neither ID nor --all
  check_one_line_error(run(evs_bin, f.with_db({"dead-letters", "list", "--status", "lost"})), 2);
  check_one_line_error(run(shop_bin, {"stats"}), 2, "shop");
}

TEST_CASE("a missing file, a directory and a file that is not an evs store fail with one line and exit 1") {
  evs::test::TempDir dir;
  const std::string missing = (dir / "nope.db").string();
  auto r = run(evs_bin, {"stats", "--db", missing});
  check_one_line_error(r, 1);
  CHECK(contains(r.err, missing));
  CHECK_FALSE(std::filesystem::exists(missing));  // never created by a read

  check_one_line_error(run(evs_bin, {"streams", "--db", dir.path().string()}), 1);

  const std::string text = (dir / "notes.txt").string();
  std::ofstream(text) << "this is not a database, just some text that is long enough to have a header....\n";
  for (const char* command : {"streams", "stats", "check", "tail"}) {
    CAPTURE(command);
    auto bad = run(evs_bin, {command, "--db", text});
    check_one_line_error(bad, 1);
    CHECK(contains(bad.err, "not an evs"));
  }

  const std::string foreign = (dir / "other.db").string();
  sql(foreign, "CREATE TABLE customers (id INTEGER PRIMARY KEY, name TEXT)");
  auto other = run(evs_bin, {"read", "x", "--db", foreign});
  check_one_line_error(other, 1);
  CHECK(contains(other.err, "another application"));
  CHECK(sql_text(foreign, "SELECT count(*) FROM sqlite_master") == "1");  // left untouched

  const std::string empty = (dir / "empty.db").string();
  std::ofstream(empty).close();
  check_one_line_error(run(evs_bin, {"stats", "--db", empty}), 1);

  Fixture f;
  auto unknown_stream = run(evs_bin, f.with_db({"read", "order-404"}));
  check_one_line_error(unknown_stream, 1);
  CHECK(contains(unknown_stream.err, "order-404"));
}

TEST_CASE("streams lists every stream with its version and last update, filtered by category") {
  Fixture f;
  auto r = run(evs_bin, f.with_db({"streams"}));
  CHECK(r.code == 0);
  CHECK(r.err.empty());
  auto l = lines(r.out);
  REQUIRE(l.size() == 5);  // header, 3 streams, count
  CHECK(contains(l[0], "stream"));
  CHECK(contains(l[0], "version"));
  CHECK(contains(l[1], "cart-9"));
  CHECK(contains(l[2], "order-1"));
  CHECK(contains(l[2], " 3 "));
  CHECK(contains(l[2], "Z"));  // ISO-8601 UTC
  CHECK(l[4] == "3 streams");

  auto orders = run(evs_bin, f.with_db({"streams", "--category", "order", "--json"}));
  CHECK(orders.code == 0);
  auto docs = parse_json_lines(orders.out);
  REQUIRE(docs.size() == 2);
  CHECK(std::string(docs[0]["stream"].GetString()) == "order-1");
  CHECK(docs[0]["version"].GetUint64() == 3);
  CHECK(std::string(docs[0]["category"].GetString()) == "order");
  CHECK(std::string(docs[1]["stream"].GetString()) == "order-2");
}

TEST_CASE("read shows events with their envelope, JSON payloads as JSON, unknown binary payloads as size and hex") {
  Fixture f;
  auto r = run(evs_bin, f.with_db({"read", "order-1"}));
  CHECK(r.code == 0);
  CHECK(r.err.empty());
  CHECK(contains(r.out, "#1  order-1 v1  clitest.order_placed (schema 1, binary)"));
  CHECK(contains(r.out, "correlation  corr-1"));
  CHECK(contains(r.out, "causation    cmd-1"));
  CHECK(contains(r.out, R"(metadata     {"tenant":"acme","user":"alice"})"));
  const std::string placed = evs::encode(clitest::OrderPlaced{"o-1", "alice", 1250}, evs::Encoding::binary);
  CHECK(contains(r.out, "<" + std::to_string(placed.size()) + " bytes: 036f2d31"));  // "o-1" as a binary string
  CHECK(contains(r.out, "(not decoded: no registry)"));
  CHECK(contains(r.out, "#5  order-1 v3"));

  auto json_payload = run(evs_bin, f.with_db({"read", "order-2"}));
  CHECK(contains(json_payload.out, R"(payload      {"order_id":"o-2","customer":"bob","total_cents":990})"));

  // The embedded app knows the types: binary payloads are decoded.
  auto shop = run(shop_bin, f.with_db({"read", "order-1"}));
  CHECK(shop.code == 0);
  CHECK(contains(shop.out, R"(payload      {"order_id":"o-1","customer":"alice","total_cents":1250})"));
  CHECK(contains(shop.out, R"(payload      {"order_id":"o-1","sku":"SKU-2","qty":5})"));

  SUBCASE("backward, from and count") {
    auto back = run(shop_bin, f.with_db({"read", "order-1", "--backward", "--count", "2", "--json"}));
    CHECK(back.code == 0);
    auto docs = parse_json_lines(back.out);
    REQUIRE(docs.size() == 2);
    CHECK(docs[0]["version"].GetUint64() == 3);
    CHECK(docs[1]["version"].GetUint64() == 2);
    CHECK(std::string(docs[0]["payload"]["sku"].GetString()) == "SKU-2");
    CHECK(std::string(docs[0]["encoding"].GetString()) == "binary");
    CHECK(docs[0].HasMember("payload_base64"));

    auto from = run(evs_bin, f.with_db({"read", "order-1", "--from", "2", "--count", "1", "--json"}));
    auto one = parse_json_lines(from.out);
    REQUIRE(one.size() == 1);
    CHECK(one[0]["version"].GetUint64() == 2);
    CHECK(one[0]["position"].GetUint64() == 2);
    CHECK(std::string(one[0]["type"].GetString()) == "clitest.item_added");
    CHECK(one[0]["schema_version"].GetUint() == 2);
    CHECK(std::string(one[0]["payload_problem"].GetString()) == "not decoded: no registry");
  }
  SUBCASE("--json carries the whole envelope") {
    auto j = run(evs_bin, f.with_db({"read", "order-1", "--json", "--count", "1"}));
    auto docs = parse_json_lines(j.out);
    REQUIRE(docs.size() == 1);
    const auto& d = docs[0];
    CHECK(d["position"].GetUint64() == 1);
    CHECK(std::string(d["stream"].GetString()) == "order-1");
    CHECK(std::string(d["event_id"].GetString()).size() == 36);
    CHECK(std::string(d["correlation_id"].GetString()) == "corr-1");
    CHECK(std::string(d["causation_id"].GetString()) == "cmd-1");
    CHECK(std::string(d["metadata"]["user"].GetString()) == "alice");
    const std::string at = d["recorded_at"].GetString();
    CHECK(at.size() == 27);
    CHECK(at.back() == 'Z');
    CHECK(at[10] == 'T');
  }
}

TEST_CASE("read and export page through a long stream in both directions") {
  Fixture f;
  {
    evs::SqliteEventStore store({f.db});
    std::vector<evs::EventData> batch;
    for (int i = 1; i <= 1203; ++i)
      batch.push_back(raw_event("clitest.tick", "{\"n\":" + std::to_string(i) + "}", evs::Encoding::json));
    append(store, "clock-1", batch);
  }
  auto forward = parse_json_lines(run(evs_bin, f.with_db({"read", "clock-1", "--json"})).out);
  REQUIRE(forward.size() == 1203);
  for (std::size_t i = 0; i < forward.size(); ++i) REQUIRE(forward[i]["version"].GetUint64() == i + 1);

  auto backward = parse_json_lines(run(evs_bin, f.with_db({"read", "clock-1", "--backward", "--json"})).out);
  REQUIRE(backward.size() == 1203);
  for (std::size_t i = 0; i < backward.size(); ++i) REQUIRE(backward[i]["version"].GetUint64() == 1203 - i);

  auto window = parse_json_lines(run(evs_bin, f.with_db({"read", "clock-1", "--backward", "--from", "700", "--count", "600", "--json"})).out);
  REQUIRE(window.size() == 600);
  CHECK(window.front()["version"].GetUint64() == 700);
  CHECK(window.back()["version"].GetUint64() == 101);

  auto exported = lines(run(evs_bin, f.with_db({"export", "--stream", "clock-1", "--from", "3"})).out);
  CHECK(exported.size() == 1201);
  auto all = lines(run(evs_bin, f.with_db({"export", "--all", "--from", "5", "--count", "1000"})).out);
  CHECK(all.size() == 1000);
  CHECK(parse_json(all.front())["position"].GetUint64() == 5);
  CHECK(parse_json(all.back())["position"].GetUint64() == 1004);
}

TEST_CASE("tail prints the log from a position, follows new commits, and exits 0 on Ctrl-C") {
  Fixture f;
  SUBCASE("from a position, with a count") {
    auto r = run(evs_bin, f.with_db({"tail", "--from", "4", "--count", "2", "--json"}));
    CHECK(r.code == 0);
    auto docs = parse_json_lines(r.out);
    REQUIRE(docs.size() == 2);
    CHECK(docs[0]["position"].GetUint64() == 4);
    CHECK(docs[1]["position"].GetUint64() == 5);
  }
  SUBCASE("new events only by default, as they are committed") {
    Child tail(evs_bin, f.with_db({"tail", "--count", "2", "--category", "live"}));
    evs::SqliteEventStore store({f.db});
    // tail starts at the end of the log; keep appending until it has seen two events.
    for (int i = 0; i < 200 && tail.pump(0); ++i) {
      append(store, "live-1", {raw_event("clitest.ping", R"({"i":)" + std::to_string(i) + "}", evs::Encoding::json)});
      append(store, "other-1", {raw_event("clitest.ping", "{}", evs::Encoding::json)});  // filtered out
      tail.pump(100);
    }
    auto r = tail.finish();
    CHECK(r.code == 0);
    CHECK(r.err.empty());
    CHECK(contains(r.out, "live-1 v"));
    CHECK_FALSE(contains(r.out, "other-1"));
    CHECK_FALSE(contains(r.out, "order-1"));  // what was there before tail started
  }
  SUBCASE("Ctrl-C ends it with exit code 0") {
    Child tail(evs_bin, f.with_db({"tail", "--from", "1"}));
    // Wait until it has printed the existing events, i.e. it is following.
    for (int i = 0; i < 200 && !contains(tail.out_so_far(), "#5  "); ++i) tail.pump(50);
    REQUIRE(contains(tail.out_so_far(), "#5  "));
    tail.signal(SIGINT);
    auto r = tail.finish();
    CHECK(r.code == 0);
    CHECK(r.err.empty());
  }
}

TEST_CASE("stats counts events, streams and types") {
  Fixture f;
  auto r = run(evs_bin, f.with_db({"stats"}));
  CHECK(r.code == 0);
  CHECK(contains(r.out, "events          5"));
  CHECK(contains(r.out, "streams         3"));
  CHECK(contains(r.out, "last position   5"));
  CHECK(contains(r.out, "clitest.item_added"));

  auto j = run(evs_bin, f.with_db({"stats", "--json"}));
  CHECK(j.code == 0);
  auto docs = parse_json_lines(j.out);
  REQUIRE(docs.size() == 1);
  const auto& d = docs[0];
  CHECK(d["events"].GetUint64() == 5);
  CHECK(d["streams"].GetUint64() == 3);
  CHECK(d["last_position"].GetUint64() == 5);
  CHECK(d["file_size"].GetUint64() > 0);
  REQUIRE(d["types"].Size() == 2);
  CHECK(std::string(d["types"][0]["type"].GetString()) == "clitest.item_added");
  CHECK(d["types"][0]["events"].GetUint64() == 3);
  CHECK(d["types"][0]["schema_versions"][0].GetUint() == 2);
  REQUIRE(d["categories"].Size() == 2);
  CHECK(std::string(d["categories"][1]["category"].GetString()) == "order");
  CHECK(d["categories"][1]["events"].GetUint64() == 4);
}

TEST_CASE("check: integrity and, in the embedded form, every stored type against the registry") {
  Fixture f;
  SUBCASE("the standalone binary checks integrity and reports types as not checked") {
    auto r = run(evs_bin, f.with_db({"check"}));
    CHECK(r.code == 0);
    CHECK(r.err.empty());
    CHECK(contains(r.out, "integrity_check"));
    CHECK(contains(r.out, "1..5, gap-free"));
    CHECK(contains(r.out, "not checked: 3 events (no registry)"));
    auto j = run(evs_bin, f.with_db({"check", "--quick", "--json"}));
    CHECK(j.code == 0);
    auto docs = parse_json_lines(j.out);
    REQUIRE(!docs.empty());
    CHECK(std::string(docs.back()["check"].GetString()) == "summary");
    CHECK(docs.back()["ok"].GetBool());
  }
  SUBCASE("the embedded app passes when every payload decodes") {
    auto r = run(shop_bin, f.with_db({"check"}));
    CAPTURE(r.out);
    CAPTURE(r.err);
    CHECK(r.code == 0);
    CHECK(contains(r.out, "clitest.order_placed v1"));
    CHECK(contains(r.out, "decode as clitest::OrderPlaced"));
    CHECK(contains(r.out, "check passed"));
  }
  SUBCASE("it fails on an event whose type is no longer registered") {
    {
      evs::SqliteEventStore store({f.db});
      append(store, "order-3", {raw_event("clitest.coupon_applied", "\x03" "abc", evs::Encoding::binary)});
    }
    auto r = run(shop_bin, f.with_db({"check"}));
    CHECK(r.code == 1);
    CHECK(contains(r.out, "clitest.coupon_applied v1"));
    CHECK(contains(r.out, "not registered in shop"));
    REQUIRE(lines(r.err).size() == 1);
    CHECK(contains(r.err, "shop: error: check failed: 1 problem"));

    auto j = run(shop_bin, f.with_db({"check", "--json"}));
    CHECK(j.code == 1);
    bool found = false;
    for (const auto& d : parse_json_lines(j.out))
      if (d.HasMember("type") && std::string(d["type"].GetString()) == "clitest.coupon_applied") {
        found = true;
        CHECK_FALSE(d["ok"].GetBool());
        CHECK(std::string(d["status"].GetString()) == "not_registered");
      }
    CHECK(found);

    auto shown = run(shop_bin, f.with_db({"read", "order-3"}));
    CHECK(contains(shown.out, "payload      <4 bytes: 03616263> (type not registered)"));

    // The standalone binary cannot know: integrity is fine, so it passes.
    CHECK(run(evs_bin, f.with_db({"check"})).code == 0);
  }
  SUBCASE("it fails on a payload that no longer decodes and on a schema version newer than the code") {
    {
      evs::SqliteEventStore store({f.db});
      append(store, "order-4", {raw_event("clitest.order_placed", "\x01", evs::Encoding::binary)});
      append(store, "order-5", {raw_event("clitest.item_added", R"({"order_id":"x"})", evs::Encoding::json, 3)});
    }
    auto r = run(shop_bin, f.with_db({"check"}));
    CHECK(r.code == 1);
    CHECK(contains(r.out, "1 of 3 events do not decode as clitest::OrderPlaced (first: position 6"));
    CHECK(contains(r.out, "schema version 3 is newer than the registered 2"));
    CHECK(contains(r.err, "check failed: 2 problems"));
  }
  SUBCASE("it fails on a gap in the positions") {
    sql(f.db, "DELETE FROM events WHERE position = 3");
    auto r = run(evs_bin, f.with_db({"check"}));
    CHECK(r.code == 1);
    CHECK(contains(r.out, "first missing: 3"));
    CHECK(contains(r.out, "order-2"));  // its stream now has a missing version
  }
}

TEST_CASE("export and import move events between stores with their ids, payloads and metadata") {
  Fixture f;
  const std::string file = (f.dir / "all.jsonl").string();
  auto exported = run(evs_bin, f.with_db({"export", "--all", "--out", file}));
  CHECK(exported.code == 0);
  CHECK(exported.out == "exported 5 events to " + file + "\n");

  std::ifstream in(file);
  std::stringstream content;
  content << in.rdbuf();
  auto docs = parse_json_lines(content.str());
  REQUIRE(docs.size() == 5);
  CHECK(std::string(docs[0]["encoding"].GetString()) == "binary");
  CHECK(docs[0].HasMember("payload_base64"));
  CHECK_FALSE(docs[0].HasMember("payload"));
  CHECK(std::string(docs[2]["encoding"].GetString()) == "json");
  CHECK(docs[2]["payload"].IsObject());
  CHECK(docs[2]["payload"]["total_cents"].GetInt() == 990);

  const std::string copy = (f.dir / "copy.db").string();
  auto imported = run(evs_bin, {"import", file, "--db", copy});
  CHECK(imported.code == 0);
  CHECK(imported.err.empty());
  CHECK(contains(imported.out, "imported 5 events"));
  CHECK(contains(imported.out, "skipped 0"));

  {
    evs::SqliteOptions o;
    evs::SqliteEventStore a({f.db});
    evs::SqliteEventStore b({copy});
    auto original = a.read_all(1, 100).value().events;
    auto copied = b.read_all(1, 100).value().events;
    REQUIRE(copied.size() == original.size());
    for (std::size_t i = 0; i < original.size(); ++i) {
      CAPTURE(i);
      CHECK(copied[i].event_id == original[i].event_id);
      CHECK(copied[i].stream_id == original[i].stream_id);
      CHECK(copied[i].version == original[i].version);
      CHECK(copied[i].position == original[i].position);
      CHECK(copied[i].type == original[i].type);
      CHECK(copied[i].schema_version == original[i].schema_version);
      CHECK(copied[i].encoding == original[i].encoding);
      CHECK(copied[i].payload == original[i].payload);
      CHECK(copied[i].metadata == original[i].metadata);
    }
  }

  // Importing again stores nothing.
  auto again = run(evs_bin, {"import", file, "--db", copy, "--json"});
  CHECK(again.code == 0);
  auto summary = parse_json(lines(again.out).at(0));
  CHECK(summary["imported"].GetUint64() == 0);
  CHECK(summary["skipped"].GetUint64() == 5);

  SUBCASE("a stream range through stdout and stdin, and a partial re-import") {
    auto range = run(evs_bin, f.with_db({"export", "--stream", "order-1", "--from", "2", "--count", "1"}));
    CHECK(range.code == 0);
    auto one = parse_json_lines(range.out);
    REQUIRE(one.size() == 1);
    CHECK(one[0]["version"].GetUint64() == 2);

    auto whole = run(evs_bin, f.with_db({"export", "--stream", "order-1"}));
    REQUIRE(lines(whole.out).size() == 3);
    const std::string third = (f.dir / "third.db").string();
    auto first_two = lines(whole.out)[0] + "\n" + lines(whole.out)[1] + "\n";
    CHECK(run(evs_bin, {"import", "-", "--db", third}, first_two).code == 0);
    auto rest = run(evs_bin, {"import", "-", "--db", third}, whole.out);  // overlaps the first two
    CHECK(rest.code == 0);
    CHECK(contains(rest.out, "imported 1 event "));
    CHECK(contains(rest.out, "skipped 2"));
  }
  SUBCASE("a malformed line imports nothing") {
    const std::string bad = (f.dir / "bad.jsonl").string();
    std::ofstream(bad) << lines(content.str())[0] << "\n{\"stream\":\"x\"}\n";
    const std::string target = (f.dir / "target.db").string();
    auto r = run(evs_bin, {"import", bad, "--db", target});
    check_one_line_error(r, 1);
    CHECK(contains(r.err, "line 2"));
    CHECK(contains(r.err, "event_id"));
    CHECK_FALSE(std::filesystem::exists(target));
  }
  SUBCASE("import of a missing file") {
    check_one_line_error(run(evs_bin, {"import", (f.dir / "none.jsonl").string(), "--db", copy}), 1);
  }
}

TEST_CASE("projections shows each projection's position, lag, state and dead letters") {
  Fixture f;
  add_projection_rows(f.db, event_id_hex(f.db));
  auto r = run(evs_bin, f.with_db({"projections"}));
  CAPTURE(r.out);
  CHECK(r.code == 0);
  CHECK(r.err.empty());
  auto l = lines(r.out);
  REQUIRE(l.size() == 4);
  CHECK(contains(l[0], "lag"));
  CHECK(contains(l[1], "mailer"));
  CHECK(contains(l[1], "idle"));
  CHECK(contains(l[2], "orders_by_customer"));
  CHECK(contains(l[2], "behind"));
  CHECK(l[2].ends_with("  3"));  // dead letters
  CHECK(l[3] == "store head: position 5");

  auto j = run(evs_bin, f.with_db({"projections", "--json"}));
  auto docs = parse_json_lines(j.out);
  REQUIRE(docs.size() == 2);
  CHECK(std::string(docs[1]["projection"].GetString()) == "orders_by_customer");
  CHECK(docs[1]["position"].GetUint64() == 3);
  CHECK(docs[1]["lag_events"].GetUint64() == 2);
  CHECK(docs[1]["dead_letters"].GetUint64() == 3);
  CHECK(std::string(docs[1]["state"].GetString()) == "behind");
  CHECK(docs[0]["partitions"].GetUint64() == 2);
  CHECK(std::string(docs[0]["last_checkpoint_at"].GetString()) == "2026-01-01T00:00:01.000000Z");

  SUBCASE("the embedded form lists its projections without a checkpoint as never run") {
    evs::test::TempDir other;
    const std::string fresh = (other / "fresh.db").string();
    { evs::SqliteEventStore store({fresh}); }
    auto shop = run(shop_bin, {"projections", "--db", fresh});
    CHECK(shop.code == 0);
    CHECK(contains(shop.out, "orders_by_customer"));
    CHECK(contains(shop.out, "never run"));
    // Its lag counts only handled types: orders_by_customer handles clitest.order_placed only.
    auto known = run(shop_bin, f.with_db({"projections", "--json"}));
    auto d = parse_json_lines(known.out);
    REQUIRE(d.size() == 2);
    CHECK(std::string(d[1]["kind"].GetString()) == "sql");
    CHECK(d[1]["lag_events"].GetUint64() == 0);  // events 4 and 5 are item_added
    CHECK(std::string(d[1]["state"].GetString()) == "idle");
  }
  SUBCASE("--projections-db reads the tables from another file") {
    evs::test::TempDir other;
    const std::string read_db = (other / "read.db").string();
    add_projection_rows(read_db, event_id_hex(f.db));
    sql(f.db, "DROP TABLE evs_checkpoints; DROP TABLE evs_dead_letters");
    auto none = run(evs_bin, f.with_db({"projections"}));
    CHECK(contains(none.out, "no projection checkpoints in " + f.db));
    auto elsewhere = run(evs_bin, f.with_db({"projections", "--projections-db", read_db}));
    CHECK(elsewhere.code == 0);
    CHECK(contains(elsewhere.out, "orders_by_customer"));
    check_one_line_error(run(evs_bin, f.with_db({"projections", "--projections-db", (other / "x.db").string()})), 1);
  }
}

TEST_CASE("dead-letters: list, show, retry and skip") {
  Fixture f;
  add_projection_rows(f.db, event_id_hex(f.db));

  auto list = run(evs_bin, f.with_db({"dead-letters", "list"}));
  CHECK(list.code == 0);
  auto l = lines(list.out);
  REQUIRE(l.size() == 5);
  CHECK(contains(l[1], "customer alice is blocked"));
  CHECK(contains(l[4], "3 dead letters"));

  auto filtered = run(evs_bin, f.with_db({"dead-letters", "list", "--projection", "mailer", "--json"}));
  CHECK(filtered.code == 0);
  CHECK(filtered.out.empty());

  SUBCASE("show prints the row and the event with its payload") {
    auto show = run(shop_bin, f.with_db({"dead-letters", "show", "1"}));
    CHECK(show.code == 0);
    CHECK(contains(show.out, "customer alice is blocked"));
    CHECK(contains(show.out, "#1  order-1 v1"));
    CHECK(contains(show.out, R"("customer":"alice")"));
    auto j = run(evs_bin, f.with_db({"dead-letters", "show", "3", "--json"}));
    auto d = parse_json(lines(j.out).at(0));
    CHECK(std::string(d["status"].GetString()) == "parked");
    CHECK(d["event"]["position"].GetUint64() == 3);
    CHECK(d["event"]["payload"]["customer"].GetString() == std::string("bob"));
    check_one_line_error(run(evs_bin, f.with_db({"dead-letters", "show", "42"})), 1);
  }
  SUBCASE("retry one, skip one, retry the rest") {
    auto retry = run(evs_bin, f.with_db({"dead-letters", "retry", "1"}));
    CHECK(retry.code == 0);
    CHECK(contains(retry.out, "queued for retry"));
    CHECK(sql_text(f.db, "SELECT status FROM evs_dead_letters WHERE id = 1") == "retry");

    auto skip = run(evs_bin, f.with_db({"dead-letters", "skip", "2"}));
    CHECK(skip.code == 0);
    CHECK(contains(skip.out, "skipped"));
    CHECK(sql_text(f.db, "SELECT status FROM evs_dead_letters WHERE id = 2") == "skipped");

    auto all = run(evs_bin, f.with_db({"dead-letters", "retry", "--all", "--json"}));
    CHECK(all.code == 0);
    CHECK(parse_json(lines(all.out).at(0))["retry_queued"].GetUint64() == 1);  // only id 3 was still parked
    CHECK(sql_text(f.db, "SELECT group_concat(status, ',') FROM (SELECT status FROM evs_dead_letters ORDER BY id)") ==
          "retry,skipped,retry");

    auto parked = run(evs_bin, f.with_db({"dead-letters", "list", "--status", "retry", "--json"}));
    CHECK(parse_json_lines(parked.out).size() == 2);
    check_one_line_error(run(evs_bin, f.with_db({"dead-letters", "skip", "42"})), 1);
  }
  SUBCASE("a store without projection tables is an error that says where projection data lives") {
    Fixture plain;
    auto empty = run(evs_bin, plain.with_db({"dead-letters", "list"}));
    check_one_line_error(empty, 1);
    CHECK(contains(empty.err, "--projections-db"));
    check_one_line_error(run(evs_bin, plain.with_db({"dead-letters", "retry", "1"})), 1);
  }
}

}  // TEST_SUITE
