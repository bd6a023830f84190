// The JSON API, route by route, against what the store and the engine say: on SQLite and on PostgreSQL.
#include "http_rig.hpp"

#ifdef EVS_TEST_POSTGRESQL
#include "../support/pg_server.hpp"
#endif

#include <filesystem>
#include <set>
#include <thread>

namespace {

using namespace std::chrono_literals;

using httptest::parse;
using httptest::Rig;

std::string text(const rapidjson::Value& v, const char* key) {
  REQUIRE_MESSAGE(v.HasMember(key), "no member " << key);
  REQUIRE(v[key].IsString());
  return v[key].GetString();
}

std::uint64_t number(const rapidjson::Value& v, const char* key) {
  REQUIRE_MESSAGE(v.HasMember(key), "no member " << key);
  REQUIRE(v[key].IsUint64());
  return v[key].GetUint64();
}

const rapidjson::Value& projection(const rapidjson::Document& d, const std::string& name) {
  for (const auto& p : d["projections"].GetArray())
    if (p["name"].GetString() == name) return p;
  FAIL("no projection " << name);
  throw std::logic_error("unreachable");
}

// Every route but the dead-letter actions (see below), on the rig's backend.
void check_read_routes(Rig& rig) {
  SUBCASE("overview") {
    const auto o = rig.json("/api/overview");
    CHECK(number(o, "head") == rig.head());
    CHECK(number(o, "streams") == httptest::stream_count);
    CHECK(o["read_only"].GetBool() == false);
    CHECK(text(o, "backend") == (rig.location().starts_with("postgresql:") ? "postgresql" : "sqlite"));
  }
  SUBCASE("categories") {
    const auto d = rig.json("/api/categories");
    std::map<std::string, std::uint64_t> counts;
    for (const auto& c : d["categories"].GetArray()) counts[c["name"].GetString()] = c["streams"].GetUint64();
    CHECK(counts == std::map<std::string, std::uint64_t>{
                        {"acc", 3}, {"bulk", httptest::bulk_streams}, {"odd stream/\xc3\xa9", 1}});
  }
  SUBCASE("streams, paged: every stream once, in id order") {
    std::vector<std::string> seen;
    std::string after;
    for (int page = 0; page < 10; ++page) {
      const auto d = rig.json("/api/streams?limit=7&after=" + after);
      for (const auto& s : d["streams"].GetArray()) seen.push_back(s["id"].GetString());
      if (d["next"].IsNull()) break;
      after = d["next"].GetString();
      CHECK(after == seen.back());
    }
    CHECK(seen.size() == httptest::stream_count);
    CHECK(std::is_sorted(seen.begin(), seen.end()));
    CHECK(std::set<std::string>(seen.begin(), seen.end()).size() == seen.size());
  }
  SUBCASE("streams filtered by category and by a part of the id") {
    const auto d = rig.json("/api/streams?category=bulk&q=1&limit=100");
    std::vector<std::string> ids;
    for (const auto& s : d["streams"].GetArray()) ids.push_back(s["id"].GetString());
    CHECK(ids == std::vector<std::string>{"bulk-01", "bulk-10", "bulk-11", "bulk-12", "bulk-13", "bulk-14", "bulk-15",
                                          "bulk-16", "bulk-17", "bulk-18", "bulk-19"});
    CHECK(rig.json("/api/streams?category=acc")["streams"].Size() == 3);
    CHECK(rig.json("/api/streams?q=nothing-like-this")["streams"].Size() == 0);
  }
  SUBCASE("a stream's events, decoded, paged by version") {
    const auto d = rig.json("/api/streams/acc-1");
    CHECK(number(d, "version") == 2);
    REQUIRE(d["events"].Size() == 2);
    const auto& first = d["events"][0];
    CHECK(text(first, "type") == "test.deposited");
    CHECK(number(first, "version") == 1);
    CHECK(text(first, "correlation_id") == "c-1");
    REQUIRE(first.HasMember("payload"));
    CHECK(first["payload"]["cents"].GetInt64() == 100);
    CHECK(d["next"].IsNull());
    const auto page = rig.json("/api/streams/acc-1?limit=1");
    CHECK(page["events"].Size() == 1);
    CHECK(number(page, "next") == 2);
    const auto rest = rig.json("/api/streams/acc-1?from=2");
    REQUIRE(rest["events"].Size() == 1);
    CHECK(rest["events"][0]["payload"]["cents"].GetInt64() == 50);
    // A stream id with a space, a slash and a non-ASCII letter, percent-encoded as one path segment.
    const auto odd = rig.json("/api/streams/odd%20stream%2F%C3%A9");
    CHECK(text(odd, "stream") == "odd stream/\xc3\xa9");
    CHECK(odd["events"].Size() == 1);
    const auto missing = rig.get("/api/streams/no-such-stream");
    CHECK(missing.status == 404);
    CHECK(text(parse(missing.body), "error").find("no-such-stream") != std::string::npos);
  }
  SUBCASE("one event by position") {
    const auto e = rig.json("/api/events/" + std::to_string(rig.head()));
    CHECK(number(e, "position") == rig.head());
    CHECK(text(e, "stream") == "bulk-19");
    CHECK(e["payload"]["cents"].GetInt64() == 20);
    CHECK(rig.get("/api/events/" + std::to_string(rig.head() + 1)).status == 404);
    CHECK(rig.get("/api/events/0").status == 404);
    const auto bad = rig.get("/api/events/abc");
    CHECK(bad.status == 400);
    CHECK(text(parse(bad.body), "error").find("position") != std::string::npos);
  }
  SUBCASE("a correlation's events across streams, in log order") {
    const auto d = rig.json("/api/correlation/c-1");
    REQUIRE(d["events"].Size() == 2);
    CHECK(text(d["events"][0], "stream") == "acc-1");
    CHECK(text(d["events"][1], "stream") == "acc-2");
    CHECK(number(d["events"][0], "position") < number(d["events"][1], "position"));
    CHECK(rig.json("/api/correlation/none")["events"].Size() == 0);
  }
  SUBCASE("projections: the engine's health") {
    const auto d = rig.json("/api/projections");
    const auto& totals = projection(d, "totals");
    const auto health = rig.engine().health("totals").value();
    CHECK(number(totals, "position") == health.position);
    CHECK(number(totals, "position") == rig.head());
    CHECK(text(totals, "state") == "live");
    CHECK(text(totals, "kind") == "sql");
    CHECK(number(totals, "lag_events") == 0);
    REQUIRE(totals["checkpoints"].Size() == 1);
    CHECK(number(totals["checkpoints"][0], "position") == rig.head());
    const auto& mailer = projection(d, "mailer");
    CHECK(text(mailer, "kind") == "effect");
    CHECK(number(mailer, "dead_letters") == 1);
    CHECK(number(mailer, "errors") >= 1);
    CHECK(text(mailer, "last_error").find("mailbox unavailable") != std::string::npos);
  }
  SUBCASE("dead letters: the list and one with its event") {
    const auto d = rig.json("/api/dead-letters");
    REQUIRE(d["dead_letters"].Size() == 1);
    const auto& dl = d["dead_letters"][0];
    CHECK(text(dl, "projection") == "mailer");
    CHECK(text(dl, "stream") == "acc-3");
    CHECK(text(dl, "status") == "parked");
    CHECK(text(dl, "error").find("mailbox unavailable") != std::string::npos);
    CHECK(rig.json("/api/dead-letters?status=retry")["dead_letters"].Size() == 0);
    CHECK(rig.json("/api/dead-letters?projection=totals")["dead_letters"].Size() == 0);
    const auto one = rig.json("/api/dead-letters/mailer/" + std::to_string(number(dl, "id")));
    CHECK(text(one["event"], "stream") == "acc-3");
    CHECK(one["event"]["payload"]["memo"].GetString() == std::string("bad"));
    CHECK(rig.get("/api/dead-letters/mailer/999").status == 404);
    CHECK(rig.get("/api/dead-letters/nosuch/1").status == 404);
  }
  SUBCASE("rebuilds: none in progress") { CHECK(rig.json("/api/rebuilds")["rebuilds"].Size() == 0); }
}

// retry and skip through the API, against the engine settling at the same time.
void check_dead_letter_actions(Rig& rig) {
  const std::string token = rig.server().token();
  const auto status = [&] { return text(rig.json("/api/dead-letters/mailer/1"), "status"); };
  REQUIRE(status() == "parked");
  rig.mailer.broken = false;  // the re-delivery succeeds
  const auto retried = rig.post("/api/dead-letters/mailer/1/retry", token);
  INFO(retried.body);
  REQUIRE(retried.status == 200);
  CHECK(text(parse(retried.body)["dead_letter"], "status") == "retry");
  // The engine re-delivers between batches: an unhandled event wakes it.
  REQUIRE(rig.store().append("poke", evs::ExpectedVersion::any(), std::vector{testdomain::of_type("test.poke")}));
  for (int i = 0; i < 200 && status() != "retried"; ++i) std::this_thread::sleep_for(50ms);
  CHECK(status() == "retried");
  CHECK(rig.mailer.sent == httptest::stream_count + 1);  // 25 deposits, each mailed once: the bad one on retry
  // retried is final: neither action applies any more.
  const auto again = rig.post("/api/dead-letters/mailer/1/retry", token);
  CHECK(again.status == 409);
  CHECK(text(parse(again.body), "error").find("'retried'") != std::string::npos);
  CHECK(rig.post("/api/dead-letters/mailer/1/skip", token).status == 409);
  CHECK(rig.post("/api/dead-letters/mailer/1/delete", token).status == 404);
  CHECK(rig.post("/api/dead-letters/mailer/77/skip", token).status == 404);
  CHECK(rig.post("/api/dead-letters/mailer/x/skip", token).status == 400);
}

}  // namespace

TEST_CASE("http API on SQLite: every route answers with what the store and the engine hold") {
  evs::test::TempDir dir;
  Rig rig((dir / "events.db").string(), (dir / "read.db").string());
  check_read_routes(rig);
}

TEST_CASE("http API on SQLite: dead letters are retried and skipped only along their legal transitions") {
  evs::test::TempDir dir;
  Rig rig((dir / "events.db").string(), (dir / "read.db").string());
  check_dead_letter_actions(rig);
}

TEST_CASE("http API on SQLite: a rebuild's shadow copy shows as progress") {
  evs::test::TempDir dir;
  const auto read_db = (dir / "read.db").string();
  Rig rig((dir / "events.db").string(), read_db);
  // What `rebuild totals` builds beside the live database (docs/replay-tool.md): the shadow, here complete.
  rebuildtest::Totals shadow_totals;
  evs::ProjectionEngine shadow(rig.store());
  shadow.add(shadow_totals, {.database = read_db + ".rebuild-totals"});
  shadow.start();
  REQUIRE(shadow.wait_for("totals", rig.head(), std::chrono::seconds(30)));
  shadow.stop();
  const auto d = rig.json("/api/rebuilds");
  REQUIRE(d["rebuilds"].Size() == 1);
  CHECK(text(d["rebuilds"][0], "projection") == "totals");
  CHECK(number(d["rebuilds"][0], "position") == rig.head());
  CHECK(d["rebuilds"][0]["progress"].GetDouble() == doctest::Approx(1.0));
}

#ifdef EVS_TEST_POSTGRESQL
TEST_CASE("http API on PostgreSQL: every route answers with what the store and the engine hold") {
  evs::test::PgSchema store_schema, read_schema;
  Rig rig(store_schema.location(), read_schema.location());
  check_read_routes(rig);
}

TEST_CASE("http API on PostgreSQL: dead letters are retried and skipped only along their legal transitions") {
  evs::test::PgSchema store_schema, read_schema;
  Rig rig(store_schema.location(), read_schema.location());
  check_dead_letter_actions(rig);
}
#endif
