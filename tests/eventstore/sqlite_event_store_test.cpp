// SQLite-specific behaviour: persistence, group commit, and clear errors for bad files, locks, read-only
// media and a full disk, with nothing acknowledged lost.
#include "../support/temp_dir.hpp"
#include "../support/test_events.hpp"

#include <evs/eventstore/sqlite_event_store.hpp>

#include <doctest/doctest.h>
#include <sqlite3.h>

#include <atomic>
#include <cstdio>
#include <fstream>
#include <future>
#include <sys/mount.h>
#include <thread>

using namespace evs;
using testdomain::deposit;

namespace {

SqliteOptions options_for(const std::filesystem::path& p) {
  SqliteOptions o;
  o.path = p;
  o.durability = Durability::normal;
  return o;
}

std::string open_error(const SqliteOptions& o, errc* code) {
  try {
    SqliteEventStore s(o);
  } catch (const Exception& e) {
    *code = static_cast<errc>(e.code().value());
    return e.what();
  }
  return {};
}

// A small tmpfs mounted for one test (needs root, as the CI machine has). Unmounted on destruction.
class SmallDisk {
 public:
  explicit SmallDisk(const std::filesystem::path& at, const std::string& size) : path_(at) {
    std::filesystem::create_directories(at);
    ok_ = mount("tmpfs", at.c_str(), "tmpfs", 0, ("size=" + size).c_str()) == 0;
  }
  ~SmallDisk() {
    if (ok_) umount2(path_.c_str(), MNT_DETACH);
  }
  bool ok() const { return ok_; }
  bool remount(unsigned long flags, const std::string& data) {
    return mount("tmpfs", path_.c_str(), "tmpfs", MS_REMOUNT | flags, data.c_str()) == 0;
  }

 private:
  std::filesystem::path path_;
  bool ok_ = false;
};

// Probed once at start-up, so where no tmpfs can be mounted the tests that need one are reported as
// skipped (doctest's skip decorator; ctest shows them as Skipped), never as passed.
bool cannot_mount_tmpfs() {
  static const bool cannot = [] {
    test::TempDir dir;
    const bool ok = SmallDisk(dir / "probe", "64k").ok();
    if (!ok) std::fprintf(stderr, "MESSAGE: skipped: the tmpfs tests need root to mount a tmpfs\n");
    return !ok;
  }();
  return cannot;
}

}  // namespace

TEST_CASE("appended events survive closing and reopening the file") {
  test::TempDir dir;
  const auto path = dir / "events.db";
  {
    SqliteEventStore store(options_for(path));
    REQUIRE(store.append("s-1", ExpectedVersion::no_stream(), std::vector{deposit(1), deposit(2)}));
  }
  SqliteEventStore store(options_for(path));
  CHECK(store.stream_version("s-1").value() == 2);
  CHECK(store.last_position().value() == 2);
  auto r = store.append("s-1", ExpectedVersion::exact(2), std::vector{deposit(3)});
  REQUIRE(r);
  CHECK(r->first_position == 3);
}

TEST_CASE("group commit: concurrent appends commit together, each expectation judged on its own") {
  test::TempDir dir;
  auto o = options_for(dir / "events.db");
  o.durability = Durability::full;
  SqliteEventStore store(o);
  REQUIRE(store.append("shared-1", ExpectedVersion::no_stream(), std::vector{deposit(1)}));
  constexpr int n = 200;
  std::vector<std::promise<Result<AppendResult>>> done(n);
  for (int i = 0; i < n; ++i) {
    // Every 4th append conflicts (expects a version that shared-1 will never be at when it runs).
    const bool conflicting = i % 4 == 0;
    store.append_async(conflicting ? "shared-1" : "s-" + std::to_string(i),
                       conflicting ? ExpectedVersion::no_stream() : ExpectedVersion::any(),
                       std::vector{deposit(i)}, [&, i](Result<AppendResult> r) { done[i].set_value(std::move(r)); });
  }
  int ok = 0, conflicts = 0;
  for (int i = 0; i < n; ++i) {
    auto r = done[i].get_future().get();
    if (r) ++ok;
    else if (r.error().is(errc::wrong_expected_version)) ++conflicts;
  }
  CHECK(ok == n - n / 4);
  CHECK(conflicts == n / 4);
  CHECK(store.last_position().value() == 1 + static_cast<std::uint64_t>(ok));
}

TEST_CASE("a blocking append inside an append callback is refused instead of deadlocking") {
  test::TempDir dir;
  SqliteEventStore store(options_for(dir / "events.db"));
  std::promise<Result<AppendResult>> inner;
  store.append_async("s-1", ExpectedVersion::any(), std::vector{deposit(1)}, [&](Result<AppendResult>) {
    inner.set_value(store.append("s-2", ExpectedVersion::any(), std::vector{deposit(2)}));
  });
  auto r = inner.get_future().get();
  REQUIRE_FALSE(r);
  CHECK(r.error().is(errc::invalid_argument));
  CHECK(store.append("s-2", ExpectedVersion::any(), std::vector{deposit(2)}));
}

TEST_CASE("JSON payloads are stored as text that SQLite's json functions can query") {
  test::TempDir dir;
  {
    SqliteEventStore store(options_for(dir / "events.db"));
    EventData e = deposit(0);
    e.encoding = Encoding::json;
    e.payload = encode(testdomain::Deposited{1234, "rent"}, Encoding::json);
    REQUIRE(store.append("s-1", ExpectedVersion::any(), std::vector{e}));
    CHECK(store.read_stream("s-1").value()[0].payload == e.payload);
  }
  sqlite3* db = nullptr;
  REQUIRE(sqlite3_open((dir / "events.db").c_str(), &db) == SQLITE_OK);
  sqlite3_stmt* st = nullptr;
  REQUIRE(sqlite3_prepare_v2(db, "SELECT json_extract(payload, '$.cents') FROM events", -1, &st, nullptr) == SQLITE_OK);
  REQUIRE(sqlite3_step(st) == SQLITE_ROW);
  CHECK(sqlite3_column_int64(st, 0) == 1234);
  sqlite3_finalize(st);
  sqlite3_close(db);
}

TEST_CASE("a file that is not an evs store is refused with a clear error and left untouched") {
  test::TempDir dir;
  SUBCASE("a text file") {
    const auto path = dir / "notes.txt";
    std::ofstream(path) << "hello, this is not a database\n";
    errc code{};
    const std::string msg = open_error(options_for(path), &code);
    CHECK(code == errc::not_an_evs_database);
    CHECK(msg.find("notes.txt") != std::string::npos);
    std::ifstream in(path);
    std::string content;
    std::getline(in, content);
    CHECK(content == "hello, this is not a database");
  }
  SUBCASE("another application's SQLite database") {
    const auto path = dir / "other.db";
    sqlite3* db = nullptr;
    REQUIRE(sqlite3_open(path.c_str(), &db) == SQLITE_OK);
    REQUIRE(sqlite3_exec(db, "CREATE TABLE customers(id INTEGER PRIMARY KEY, name TEXT)", nullptr, nullptr, nullptr) ==
            SQLITE_OK);
    sqlite3_close(db);
    errc code{};
    const std::string msg = open_error(options_for(path), &code);
    CHECK(code == errc::not_an_evs_database);
    CHECK(msg.find("other.db") != std::string::npos);
  }
  SUBCASE("a directory that does not exist") {
    errc code{};
    const std::string msg = open_error(options_for(dir / "no" / "such" / "dir" / "x.db"), &code);
    CHECK_FALSE(msg.empty());
  }
}

TEST_CASE("a database locked by another connection gives database_locked, then works once released") {
  test::TempDir dir;
  auto o = options_for(dir / "events.db");
  o.busy_timeout = std::chrono::milliseconds(100);
  SqliteEventStore store(o);
  REQUIRE(store.append("s-1", ExpectedVersion::any(), std::vector{deposit(1)}));

  sqlite3* other = nullptr;
  REQUIRE(sqlite3_open((dir / "events.db").c_str(), &other) == SQLITE_OK);
  REQUIRE(sqlite3_exec(other, "BEGIN EXCLUSIVE", nullptr, nullptr, nullptr) == SQLITE_OK);
  auto r = store.append("s-1", ExpectedVersion::any(), std::vector{deposit(2)});
  REQUIRE_FALSE(r);
  CHECK(r.error().is(errc::database_locked));
  CHECK(r.error().message.find("events.db") != std::string::npos);
  sqlite3_exec(other, "ROLLBACK", nullptr, nullptr, nullptr);
  sqlite3_close(other);

  auto again = store.append("s-1", ExpectedVersion::any(), std::vector{deposit(3)});
  REQUIRE(again);
  CHECK(again->stream_version == 2);
  CHECK(store.read_stream("s-1").value().size() == 2);
}

TEST_CASE("a read-only store serves reads and refuses appends with read_only") {
  test::TempDir dir;
  SUBCASE("opened read-only on purpose") {
    { SqliteEventStore store(options_for(dir / "events.db")); REQUIRE(store.append("s-1", ExpectedVersion::any(), std::vector{deposit(1)})); }
    auto o = options_for(dir / "events.db");
    o.read_only = true;
    SqliteEventStore store(o);
    CHECK(store.read_stream("s-1").value().size() == 1);
    auto r = store.append("s-1", ExpectedVersion::any(), std::vector{deposit(2)});
    REQUIRE_FALSE(r);
    CHECK(r.error().is(errc::read_only));
  }
}

TEST_CASE("a store on a read-only file system serves reads and refuses appends with read_only" *
          doctest::skip(cannot_mount_tmpfs())) {
  test::TempDir dir;
  {
    SmallDisk disk(dir / "mnt", "16m");
    REQUIRE(disk.ok());
    const auto path = dir / "mnt" / "events.db";
    { SqliteEventStore store(options_for(path)); REQUIRE(store.append("s-1", ExpectedVersion::any(), std::vector{deposit(1)})); }
    REQUIRE(disk.remount(MS_RDONLY, "size=16m"));
    SqliteEventStore store(options_for(path));
    CHECK(store.read_stream("s-1").value().size() == 1);
    auto r = store.append("s-1", ExpectedVersion::any(), std::vector{deposit(2)});
    REQUIRE_FALSE(r);
    CHECK(r.error().is(errc::read_only));
    CHECK(r.error().message.find("events.db") != std::string::npos);
  }
}

TEST_CASE("a full disk fails the append with disk_full and loses nothing acknowledged" *
          doctest::skip(cannot_mount_tmpfs())) {
  test::TempDir dir;
  SmallDisk disk(dir / "mnt", "512k");
  REQUIRE(disk.ok());
  const auto path = dir / "mnt" / "events.db";
  std::vector<std::pair<std::string, std::uint64_t>> acknowledged;
  Error failure;
  {
    SqliteEventStore store(options_for(path));
    for (int i = 0; i < 100000; ++i) {
      const std::string stream = "s-" + std::to_string(i % 7);
      auto r = store.append(stream, ExpectedVersion::any(), std::vector{deposit(i, std::string(2000, 'x'))});
      if (!r) {
        failure = r.error();
        break;
      }
      acknowledged.emplace_back(stream, r->stream_version);
    }
    REQUIRE(failure.code);
    CHECK(failure.is(errc::disk_full));
    CHECK(failure.message.find("events.db") != std::string::npos);
    // Still readable while full.
    CHECK(store.last_position().value() == acknowledged.size());
  }
  REQUIRE(disk.remount(0, "size=64m"));
  SqliteEventStore store(options_for(path));
  CHECK(store.last_position().value() == acknowledged.size());
  for (const auto& [stream, version] : acknowledged)
    REQUIRE(store.read_stream(stream, {Direction::forward, version, 1}).value().size() == 1);
  CHECK(store.append("s-0", ExpectedVersion::any(), std::vector{deposit(1)}));
}

TEST_CASE("the change token notices commits made by another store object on the same file") {
  test::TempDir dir;
  SqliteEventStore reader(options_for(dir / "events.db"));
  SqliteEventStore writer(options_for(dir / "events.db"));
  const auto before = reader.change_token().value();
  CHECK(reader.change_token().value() == before);  // stable while nothing happens
  REQUIRE(writer.append("s-1", ExpectedVersion::any(), std::vector{deposit(1)}));
  CHECK(reader.change_token().value() != before);
  CHECK(reader.last_position().value() == 1);
}
