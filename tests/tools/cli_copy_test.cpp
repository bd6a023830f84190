// `copy` between SQLite stores: a whole store with everything as stored, the refusal of a target that is not
// empty, clear errors for bad locations, and a copy that fails midway. (Copies to and from PostgreSQL:
// cli_pg_test.cpp.)
#include "cli_support.hpp"

#include "../support/store_compare.hpp"

#include <doctest/doctest.h>

using namespace clitest;

namespace {

evs::SqliteEventStore open_read_only(const std::string& db) {
  evs::SqliteOptions o;
  o.path = db;
  o.read_only = true;
  return evs::SqliteEventStore(o);
}

// The Fixture's store plus two snapshots (one of an older snapshot version).
void add_snapshots(const std::string& db) {
  evs::SqliteEventStore store({db});
  REQUIRE(store.save_snapshot({"order-1", 2, "shop::OrderState", 11, evs::Encoding::binary, "s1", {}, 2}));
  REQUIRE(store.save_snapshot({"cart-9", 1, "shop::CartState", 12, evs::Encoding::json, R"({"n":1})", {}, 1}));
}

}  // namespace

TEST_SUITE("cli") {

TEST_CASE("copy moves a whole SQLite store into a new one with positions, ids, times, metadata, snapshots and "
          "schema records, with progress on stderr") {
  Fixture f;
  add_snapshots(f.db);
  const std::string target = (f.dir / "copy.db").string();
  auto r = run(evs_bin, {"copy", "--from", f.db, "--to", target});
  CAPTURE(r.err);
  REQUIRE(r.code == 0);
  CHECK(r.out == "copied 5 events in 3 streams, 2 snapshots and 2 schema records from " + f.db + " to " + target +
                     " (positions up to 5)\n");
  CHECK(contains(r.err, "evs: copying 5 events and 2 snapshots from " + f.db + " to " + target));
  CHECK(contains(r.err, "evs: copied 5 of 5 events (100%), up to position 5"));
  CHECK(contains(r.err, "evs: copied 2 of 2 snapshots"));
  {
    auto original = open_read_only(f.db);
    auto copy = open_read_only(target);
    CHECK(evs::test::check_same_store(original, copy) == 5);
  }
  // The copy checks clean and takes appends after the copied positions.
  CHECK(run(evs_bin, {"check", "--db", target}).code == 0);
  {
    evs::SqliteEventStore store({target});
    auto appended = store.append("order-2", evs::ExpectedVersion::exact(1), std::vector<evs::EventData>{
                                                                              binary_event(clitest::ItemAdded{"o-2", "S", 1})});
    REQUIRE(appended);
    CHECK(appended->first_position == 6);
    CHECK(appended->stream_version == 2);
  }

  // --from defaults to --db; --json reports the counts.
  const std::string second = (f.dir / "second.db").string();
  auto j = run(evs_bin, {"copy", "--db", f.db, "--to", second, "--json", "--batch", "2"});
  REQUIRE(j.code == 0);
  auto docs = parse_json_lines(j.out);
  REQUIRE(docs.size() == 1);
  CHECK(docs[0]["events"].GetUint64() == 5);
  CHECK(docs[0]["streams"].GetUint64() == 3);
  CHECK(docs[0]["snapshots"].GetUint64() == 2);
  CHECK(docs[0]["schema_records"].GetUint64() == 2);
  CHECK(docs[0]["last_position"].GetUint64() == 5);
  CHECK(std::string(docs[0]["to"].GetString()) == second);
}

TEST_CASE("copy refuses a target that is not empty and leaves it as it was") {
  Fixture f, other;
  auto r = run(evs_bin, {"copy", "--from", f.db, "--to", other.db});
  check_one_line_error(r, 1);
  CHECK(contains(r.err, "copy " + f.db + " to " + other.db + ": the target store is not empty (it holds 5 events, 3 "
                        "streams, 0 snapshots, 2 schema records): a copy goes only into an empty store"));
  CHECK(sql_text(other.db, "SELECT count(*) FROM events") == "5");

  auto same = run(evs_bin, {"copy", "--from", f.db, "--to", "sqlite:" + f.db});
  check_one_line_error(same, 1);
  CHECK(contains(same.err, "--from and --to name the same store"));
}

TEST_CASE("copy names bad locations clearly, creates nothing when the source cannot be read, and never prints a "
          "password") {
  Fixture f;
  const std::string target = (f.dir / "target.db").string();
  auto missing = run(evs_bin, {"copy", "--from", (f.dir / "missing.db").string(), "--to", target});
  check_one_line_error(missing, 1);
  CHECK(contains(missing.err, "open " + (f.dir / "missing.db").string() + ": no such file"));
  CHECK_FALSE(std::filesystem::exists(target));

  auto empty_sqlite = run(evs_bin, {"copy", "--from", f.db, "--to", "sqlite:"});
  check_one_line_error(empty_sqlite, 1);
  CHECK(contains(empty_sqlite.err, "--to sqlite:: sqlite: names no file"));

  auto directory = run(evs_bin, {"copy", "--from", f.db, "--to", f.dir.path().string()});
  check_one_line_error(directory, 1);
  CHECK(contains(directory.err, "is a directory"));

  auto no_target = run(evs_bin, {"copy", "--from", f.db});
  check_one_line_error(no_target, 2);
  CHECK(contains(no_target.err, "--to is required"));

  // A server that is not there (or a build without PostgreSQL): one clear line, without the password.
  auto server = run(evs_bin, {"copy", "--from", f.db, "--to", "postgresql://evs:s3cret@127.0.0.1:1/nowhere?connect_timeout=2"});
  check_one_line_error(server, 1);
  CHECK((contains(server.err, "database server unavailable") || contains(server.err, "without the PostgreSQL backend")));
  CHECK_FALSE(contains(server.err, "s3cret"));
  CHECK(contains(server.err, "127.0.0.1"));
}

TEST_CASE("a copy that fails midway says how far it got and what to delete before copying again") {
  Fixture f;
  // Damage the source: order-1 loses its version 2, so its version 3 no longer continues the stream.
  sql(f.db, "DELETE FROM events WHERE position = 2");
  const std::string target = (f.dir / "partial.db").string();
  auto r = run(evs_bin, {"copy", "--from", f.db, "--to", target, "--batch", "1"});
  CAPTURE(r.err);
  CHECK(r.code == 1);
  CHECK(r.out.empty());
  const auto err = lines(r.err);
  REQUIRE_FALSE(err.empty());
  CHECK(err.back().rfind("evs: error: invalid argument: copy " + f.db + " to " + target +
                             ": the copy stopped after 3 events (up to position 4): import the event at position 5 "
                             "(stream order-1, version 3)",
                         0) == 0);
  CHECK(contains(err.back(), "the target holds a partial copy: empty it before copying again (delete " + target +
                                 " (and its -wal and -shm files))"));
  CHECK(sql_text(target, "SELECT count(*) FROM events") == "3");
}

}  // TEST_SUITE
