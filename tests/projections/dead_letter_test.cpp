// Dead letters: their states and transitions (the engine's and the operator's through `evs dead-letters`),
// re-delivery through the inbox, and the tool's errors for files that hold no projection data.
#include "../support/child_process.hpp"
#include "../support/mailer.hpp"
#include "../support/temp_dir.hpp"
#include "../support/test_events.hpp"
#include "projection_test_support.hpp"

#include <evs/eventstore/sqlite_event_store.hpp>
#include <evs/projections/engine.hpp>

#include <doctest/doctest.h>

#include <atomic>
#include <fstream>

namespace {

using namespace std::chrono_literals;
using evs::test::RawDb;

using evs::test::Mailer;

struct Run {
  int code = -1;
  std::string output;  // stdout and stderr
};

Run evs_tool(std::vector<std::string> args) {
  auto child = evs::test::spawn_child(EVS_CLI_BINARY, std::move(args), {}, true);
  Run r;
  r.output = evs::test::read_to_end(child.out);
  r.code = evs::test::wait_child(child.pid);
  return r;
}

bool contains(const std::string& s, const std::string& part) { return s.find(part) != std::string::npos; }

// A store whose mailer (one attempt per event, tables in the store's file) has parked one bad deposit:
// dead letter 1.
struct ParkedMail {
  evs::SqliteEventStore store;
  Mailer mailer;
  evs::ProjectionEngine engine{store};

  explicit ParkedMail(const std::filesystem::path& db) : store({db, evs::Durability::normal}) {
    evs::ProjectionOptions po;
    po.database = db;
    po.retry.max_attempts = 1;
    engine.add(mailer, po);
    engine.start();
    const auto bad = store.append("acc-1", evs::ExpectedVersion::any(), std::vector{testdomain::deposit(5, "bad")});
    REQUIRE(bad);
    REQUIRE(engine.wait_for("mailer", bad->last_position, 20s));
    REQUIRE(engine.health("mailer")->dead_letters == 1);
  }
};

}  // namespace

TEST_CASE("a retried dead letter of an effect handler goes through the inbox: its effect is never repeated") {
  evs::test::TempDir dir;
  const auto db = dir / "events.db";
  ParkedMail rig(db);
  auto& store = rig.store;
  auto& mailer = rig.mailer;
  auto& engine = rig.engine;
  CHECK(mailer.sent == 0);

  RawDb raw(db);
  const auto status = [&] { return raw.query("SELECT status FROM evs_dead_letters").at(0).at(0); };
  const auto poke = [&] {  // an unhandled event wakes the engine up
    REQUIRE(store.append("other", evs::ExpectedVersion::any(), std::vector{testdomain::of_type("test.withdrawn")}));
  };
  mailer.broken = false;
  auto queued = evs_tool({"dead-letters", "retry", "1", "--db", db.string()});
  CHECK(queued.code == 0);
  poke();
  REQUIRE(evs::test::eventually([&] { return status() == "retried"; }));
  CHECK(mailer.sent == 1);

  SUBCASE("the tool refuses to retry a resolved dead letter") {
    auto again = evs_tool({"dead-letters", "retry", "1", "--db", db.string()});
    CHECK(again.code == 1);
    CHECK(contains(again.output, "resolved"));
    auto skip = evs_tool({"dead-letters", "skip", "1", "--db", db.string()});
    CHECK(skip.code == 1);
    CHECK(status() == "retried");
  }
  SUBCASE("a retry request for an effect already in the inbox settles it without running the handler") {
    // As after a crash between the effect's inbox row and the settling of its dead letter.
    raw.exec("UPDATE evs_dead_letters SET status = 'retry'");
    poke();
    REQUIRE(evs::test::eventually([&] { return status() == "retried"; }));
    engine.stop();
    CHECK(mailer.sent == 1);
  }
  engine.stop();
}

TEST_CASE("dead-letters retry and skip follow the states: parked -> retry -> skipped, anything else exits 1") {
  evs::test::TempDir dir;
  const auto db = dir / "events.db";
  { ParkedMail rig(db); }
  RawDb raw(db);
  const auto status = [&] { return raw.query("SELECT status FROM evs_dead_letters WHERE id = 1").at(0).at(0); };
  REQUIRE(status() == "parked");
  const auto tool = [&](const char* command) { return evs_tool({"dead-letters", command, "1", "--db", db.string()}); };

  CHECK(tool("retry").code == 0);
  CHECK(status() == "retry");
  auto twice = tool("retry");
  CHECK(twice.code == 1);
  CHECK(contains(twice.output, "already queued"));
  CHECK(status() == "retry");

  CHECK(tool("skip").code == 0);  // cancels the queued retry
  CHECK(status() == "skipped");
  for (const char* command : {"retry", "skip"}) {
    CAPTURE(command);
    auto refused = tool(command);
    CHECK(refused.code == 1);
    CHECK(contains(refused.output, "discarded"));
    CHECK(status() == "skipped");
  }
}

TEST_CASE("dead-letters refuses files without projection tables, and says where projection data lives") {
  evs::test::TempDir dir;
  const auto list = [](const std::filesystem::path& p) { return evs_tool({"dead-letters", "list", "--db", p.string()}); };

  SUBCASE("an event store no projection ran against") {
    const auto db = dir / "events.db";
    { evs::SqliteEventStore store({db, evs::Durability::normal}); }
    auto r = list(db);
    CHECK(r.code == 1);
    CHECK(contains(r.output, "evs event store without projection tables"));
    CHECK(contains(r.output, "ProjectionOptions::database"));
    CHECK(contains(r.output, "--projections-db"));
    CHECK_FALSE(contains(r.output, "0 dead letters"));
  }
  SUBCASE("an empty file") {
    const auto empty = dir / "empty.db";
    std::ofstream{empty};
    auto r = list(empty);
    CHECK(r.code == 1);
    CHECK(contains(r.output, "not a projection database"));
  }
  SUBCASE("another application's SQLite database") {
    const auto foreign = dir / "foreign.db";
    RawDb(foreign).exec("CREATE TABLE notes(text TEXT)");
    auto r = list(foreign);
    CHECK(r.code == 1);
    CHECK(contains(r.output, "not a projection database"));
  }
  SUBCASE("a file that is not SQLite") {
    const auto text = dir / "notes.txt";
    std::ofstream(text) << "these are not the dead letters you are looking for, not even close to a database\n";
    auto r = list(text);
    CHECK(r.code == 1);
    CHECK(contains(r.output, "not a SQLite database"));
  }
  SUBCASE("a store a projection ran against lists its dead letters") {
    const auto db = dir / "events.db";
    { ParkedMail rig(db); }
    auto r = list(db);
    CHECK(r.code == 0);
    CHECK(contains(r.output, "1 dead letter in " + db.string()));
  }
}
