// The SQLite wrappers under the store and SqlSession: a bind that SQLite refuses is an error of its
// statement (never a statement that runs with the parameter left NULL), and SQL holding several statements
// is refused instead of running only the first.
#include "../support/result_printing.hpp"
#include "../support/temp_dir.hpp"

#include <evs/projections/sql_database.hpp>

#include "sqlite_connection.hpp"

#include <doctest/doctest.h>

using namespace evs;
using sqlite::Access;
using sqlite::Connection;

namespace {

Connection open_table(const test::TempDir& dir) {
  auto c = Connection::open(dir / "t.db", Access::write, std::chrono::milliseconds(1000)).value();
  REQUIRE(c.exec("CREATE TABLE t (v)", "set up"));
  return c;
}

std::int64_t rows(Connection& c) {
  auto st = c.cached("SELECT count(*) FROM t", "count").value();
  REQUIRE(st->step("count").value());
  return st->column_int64(0);
}

}  // namespace

TEST_CASE("a value over SQLite's length limit fails its statement with invalid_argument, and nothing is stored") {
  test::TempDir dir;
  Connection c = open_table(dir);
  sqlite3_limit(c.handle(), SQLITE_LIMIT_LENGTH, 1000);
  constexpr std::string_view action = "insert into";
  SUBCASE("a blob") {
    auto st = c.cached("INSERT INTO t (v) VALUES (?1)", action).value();
    st->bind_blob(1, std::string(2000, 'b'));
    auto r = st->run(action);
    REQUIRE_FALSE(r);
    CHECK(r.error().is(errc::invalid_argument));
    CHECK(r.error().message.find("parameter 1") != std::string::npos);
  }
  SUBCASE("a text, after a value that fits") {
    auto st = c.cached("INSERT INTO t (v) VALUES (?1 || ?2)", action).value();
    st->bind_text(1, "fits");
    st->bind_text(2, std::string(2000, 't'));
    auto r = st->run(action);
    REQUIRE_FALSE(r);
    CHECK(r.error().is(errc::invalid_argument));
    CHECK(r.error().message.find("parameter 2") != std::string::npos);
  }
  CHECK(rows(c) == 0);
  // The failed bind is forgotten with the statement's reset: the next use runs normally.
  auto st = c.cached("INSERT INTO t (v) VALUES (?1)", action).value();
  st->bind_blob(1, std::string(10, 'b'));
  REQUIRE(st->run(action));
  CHECK(rows(c) == 1);
}

TEST_CASE("SQL with a second statement is refused with invalid_argument before anything runs") {
  test::TempDir dir;
  Connection c = open_table(dir);
  auto two = c.cached("INSERT INTO t VALUES (1); INSERT INTO t VALUES (2)", "insert into");
  REQUIRE_FALSE(two);
  CHECK(two.error().is(errc::invalid_argument));
  CHECK(two.error().message.find("INSERT INTO t VALUES (2)") != std::string::npos);
  CHECK(rows(c) == 0);
  // One statement followed by whitespace, a semicolon or a comment is fine; so is a trigger whose body
  // holds semicolons.
  REQUIRE(c.cached("INSERT INTO t VALUES (3);  -- the only one\n", "insert into").value()->run("insert into"));
  REQUIRE(c.cached("CREATE TRIGGER t_ins AFTER INSERT ON t WHEN NEW.v = 4 BEGIN SELECT 1; SELECT 2; END;",
                   "create a trigger in")
              .value()
              ->run("create a trigger in"));
  CHECK(rows(c) == 1);
}

TEST_CASE("SqlSession::exec refuses several statements instead of silently running only the first") {
  SqlDatabase db = SqlDatabase::in_memory();
  SqlSession& session = db.session();
  session.exec("CREATE TABLE t (v INTEGER)");
  try {
    session.exec("INSERT INTO t VALUES (?1); DELETE FROM t", {std::int64_t{1}});
    FAIL("exec ran SQL holding two statements");
  } catch (const Exception& e) {
    CHECK(e.error().is(errc::invalid_argument));
  }
  CHECK(sql_int(*session.scalar("SELECT count(*) FROM t")) == 0);
  session.exec("INSERT INTO t VALUES (?1)", {std::int64_t{1}});
  CHECK(session.changes() == 1);
  CHECK(session.query("SELECT v FROM t; ").size() == 1);
}
