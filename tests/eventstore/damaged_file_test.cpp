// A store file whose events b-tree is damaged (keys out of order, as a torn or tampered page leaves them):
// every read terminates with a result or a clear io_error, and never loops. The time-travel search seeks by
// position and relies on each seek moving forward, which a damaged page does not guarantee.
#include "../support/result_printing.hpp"
#include "../support/temp_dir.hpp"
#include "../support/test_events.hpp"

#include <evs/eventstore/sqlite_event_store.hpp>

#include <doctest/doctest.h>
#include <sqlite3.h>

#include <cstdint>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

using namespace evs;
using testdomain::deposit;

namespace {

std::string read_file(const std::filesystem::path& p) {
  std::ifstream in(p, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), {}};
}

void write_file(const std::filesystem::path& p, const std::string& bytes) {
  std::ofstream(p, std::ios::binary | std::ios::trunc).write(bytes.data(), std::streamsize(bytes.size()));
}

std::int64_t root_page_of_events(const std::filesystem::path& db) {
  sqlite3* c = nullptr;
  REQUIRE(sqlite3_open_v2(db.c_str(), &c, SQLITE_OPEN_READONLY, nullptr) == SQLITE_OK);
  sqlite3_stmt* s = nullptr;
  REQUIRE(sqlite3_prepare_v2(c, "SELECT rootpage FROM sqlite_master WHERE name = 'events'", -1, &s, nullptr) ==
          SQLITE_OK);
  REQUIRE(sqlite3_step(s) == SQLITE_ROW);
  const std::int64_t root = sqlite3_column_int64(s, 0);
  sqlite3_finalize(s);
  sqlite3_close(c);
  return root;
}

// Where each cell's rowid byte sits in the events table's single leaf page (rowids below 128 take one byte).
std::vector<std::size_t> rowid_offsets(const std::string& file, std::int64_t root) {
  const auto byte = [&](std::size_t at) { return static_cast<std::uint8_t>(file.at(at)); };
  std::size_t page_size = (std::size_t(byte(16)) << 8) | byte(17);
  if (page_size == 1) page_size = 65536;
  const std::size_t page = std::size_t(root - 1) * page_size;
  const std::size_t header = page + (root == 1 ? 100 : 0);
  REQUIRE(byte(header) == 0x0D);  // a table leaf: everything fits one page
  const std::size_t cells = (std::size_t(byte(header + 3)) << 8) | byte(header + 4);
  std::vector<std::size_t> offsets;
  for (std::size_t i = 0; i < cells; ++i) {
    std::size_t cell = page + ((std::size_t(byte(header + 8 + 2 * i)) << 8) | byte(header + 9 + 2 * i));
    while (byte(cell) & 0x80) ++cell;  // the payload size varint
    offsets.push_back(cell + 1);
    REQUIRE(byte(cell + 1) == i + 1);  // positions 1..n, in order
  }
  return offsets;
}

}  // namespace

TEST_CASE("a damaged events page makes reads fail or answer, never loop") {
  test::TempDir dir;
  const auto good = dir / "good.db";
  constexpr int events = 12;
  {
    SqliteOptions o;
    o.path = good;
    SqliteEventStore store(o);
    for (int i = 0; i < events; ++i) REQUIRE(store.append("account-1", ExpectedVersion::any(), std::vector{deposit(i)}));
  }
  const std::string file = read_file(good);
  const auto offsets = rowid_offsets(file, root_page_of_events(good));
  REQUIRE(offsets.size() == events);
  int opened = 0;
  // Every cell given every other one-byte key: the page's keys stop being ordered.
  for (std::size_t cell = 0; cell < offsets.size(); ++cell) {
    for (std::uint8_t key = 1; key < 128; ++key) {
      if (key == cell + 1) continue;
      std::string damaged = file;
      damaged[offsets[cell]] = char(key);
      const auto path = dir / "damaged.db";
      write_file(path, damaged);
      SqliteOptions o;
      o.path = path;
      o.read_only = true;
      std::unique_ptr<SqliteEventStore> store;
      try {
        store = std::make_unique<SqliteEventStore>(o);
      } catch (const Exception&) {
        continue;  // refused at open: also a clear answer
      }
      ++opened;
      CAPTURE(cell);
      CAPTURE(int(key));
      for (const Timestamp t : {Timestamp{}, std::chrono::time_point_cast<std::chrono::microseconds>(Clock::now()), Timestamp::max()}) {
        const auto at = store->position_at(t);
        if (!at) CHECK(at.error().code == errc::io_error);
      }
      (void)store->read_all(1, 100);
      (void)store->read_stream("account-1");
    }
  }
  CHECK(opened > 0);
}

// A damaged schema: `position` no longer the row id, so positions can be any value, text included. SQLite
// orders text after every number, so a seek for a position past the numbers answers with a text position
// whose integer value lies behind the seek: the time-travel search used to wait on it forever.
TEST_CASE("time travel on a log whose positions are not numbers fails with io_error instead of looping") {
  test::TempDir dir;
  const auto path = dir / "store.db";
  {
    SqliteOptions o;
    o.path = path;
    SqliteEventStore store(o);
    for (int i = 0; i < 12; ++i) REQUIRE(store.append("account-1", ExpectedVersion::any(), std::vector{deposit(i)}));
  }
  const auto exec = [&](const char* sql) {
    sqlite3* c = nullptr;
    REQUIRE(sqlite3_open(path.c_str(), &c) == SQLITE_OK);
    char* message = nullptr;
    const int rc = sqlite3_exec(c, sql, nullptr, nullptr, &message);
    CAPTURE(std::string(message ? message : ""));
    CHECK(rc == SQLITE_OK);
    sqlite3_free(message);
    sqlite3_close(c);
  };
  exec("PRAGMA writable_schema = ON; UPDATE sqlite_master SET sql = replace(sql, 'INTEGER PRIMARY KEY', 'INTEGER') "
       "WHERE name = 'events'");
  exec("REINDEX; UPDATE events SET position = rowid; UPDATE events SET position = '5z' WHERE rowid = 11; "
       "UPDATE events SET position = '99z' WHERE rowid = 12");
  SqliteOptions o;
  o.path = path;
  o.read_only = true;
  SqliteEventStore store(o);
  const auto at = store.position_at(Timestamp::max());
  REQUIRE_FALSE(at);
  CHECK(at.error().code == errc::io_error);
  CHECK(at.error().message.find("damaged") != std::string::npos);
}
