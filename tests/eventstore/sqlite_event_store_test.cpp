// SQLite-specific behaviour: persistence, group commit (one failing append fails alone, groups capped by
// count and bytes, events too big refused before they queue), and clear errors for bad files, locks,
// read-only media and a full disk, with nothing acknowledged lost.
#include "../support/result_printing.hpp"
#include "../support/temp_dir.hpp"
#include "../support/test_events.hpp"

#include <evs/eventstore/sqlite_event_store.hpp>

#include <doctest/doctest.h>
#include <sqlite3.h>

#include <atomic>
#include <cstdio>
#include <fcntl.h>
#include <fstream>
#include <future>
#include <mutex>
#include <sys/mount.h>
#include <thread>
#include <unistd.h>

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

// Holds the writer thread inside the callback of an append, so that everything appended until release()
// queues and then commits as one group (or as few as the group limits allow).
class HeldWriter {
 public:
  explicit HeldWriter(EventStore& store) {
    auto released = release_.get_future();
    store.append_async("gate", ExpectedVersion::any(), std::vector{deposit(0)},
                       [this, released = released.share()](Result<AppendResult>) {
                         entered_.set_value();
                         released.wait();
                       });
    entered_.get_future().wait();
  }
  ~HeldWriter() { release(); }
  HeldWriter(const HeldWriter&) = delete;
  HeldWriter& operator=(const HeldWriter&) = delete;
  void release() {
    if (!released_) release_.set_value();
    released_ = true;
  }

 private:
  std::promise<void> entered_;
  std::promise<void> release_;
  bool released_ = false;
};

// Collects the outcomes of async appends.
struct Outcomes {
  std::vector<std::promise<Result<AppendResult>>> promises;
  std::vector<std::future<Result<AppendResult>>> futures;
  EventStore::AppendCallback next() {
    promises.emplace_back();
    futures.push_back(promises.back().get_future());
    auto* promise = &promises.back();
    return [promise](Result<AppendResult> r) { promise->set_value(std::move(r)); };
  }
  explicit Outcomes(std::size_t n) { promises.reserve(n); }
};

void exec(const std::filesystem::path& db, const char* sql) {
  sqlite3* c = nullptr;
  REQUIRE(sqlite3_open(db.c_str(), &c) == SQLITE_OK);
  CHECK(sqlite3_exec(c, sql, nullptr, nullptr, nullptr) == SQLITE_OK);
  sqlite3_close(c);
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

TEST_CASE("an append that fails inside a commit group fails alone, the others commit at contiguous positions") {
  test::TempDir dir;
  const auto path = dir / "events.db";
  SqliteEventStore store(options_for(path));
  REQUIRE(store.append("a", ExpectedVersion::any(), std::vector{deposit(1)}));
  // Another program's trigger makes the insert of one particular event fail inside SQLite.
  exec(path,
       "CREATE TRIGGER poison BEFORE INSERT ON events WHEN NEW.payload = CAST('poison' AS BLOB) "
       "BEGIN SELECT RAISE(ABORT, 'poisoned event'); END");
  EventData poison = deposit(2);
  poison.payload = "poison";

  Outcomes outcomes(4);
  {
    HeldWriter held(store);  // position 2
    store.append_async("a", ExpectedVersion::exact(1), std::vector{deposit(3)}, outcomes.next());
    // A new stream whose insert is undone: its stream row must go with it.
    store.append_async("b", ExpectedVersion::no_stream(), std::vector{deposit(4), poison}, outcomes.next());
    // Judged against what the group really stored: stream b does not exist.
    store.append_async("b", ExpectedVersion::no_stream(), std::vector{deposit(5)}, outcomes.next());
    store.append_async("a", ExpectedVersion::exact(2), std::vector{deposit(6), deposit(7)}, outcomes.next());
  }
  auto a1 = outcomes.futures[0].get();
  auto bad = outcomes.futures[1].get();
  auto b1 = outcomes.futures[2].get();
  auto a2 = outcomes.futures[3].get();
  REQUIRE_FALSE(bad);
  CHECK(bad.error().message.find("poisoned event") != std::string::npos);
  REQUIRE(a1);
  REQUIRE(b1);
  REQUIRE(a2);
  CHECK(a1->first_position == 3);
  CHECK(b1->first_position == 4);
  CHECK(b1->stream_version == 1);
  CHECK(a2->first_position == 5);
  CHECK(a2->last_position == 6);
  CHECK(a2->stream_version == 4);

  const auto all = store.read_all(1, 100).value().events;
  REQUIRE(all.size() == 6);
  for (std::size_t i = 0; i < all.size(); ++i) CHECK(all[i].position == i + 1);
  CHECK(store.stream_version("b").value() == 1);
  CHECK(store.read_stream("b").value().size() == 1);
  // The writer still works after the failed append, in a group of its own too.
  auto again = store.append("b", ExpectedVersion::exact(1), std::vector{deposit(8)});
  REQUIRE(again);
  CHECK(again->first_position == 7);
}

TEST_CASE("a schema record commits with its events: an append undone in its group leaves no record behind") {
  test::TempDir dir;
  const auto path = dir / "events.db";
  SqliteEventStore store(options_for(path));
  exec(path,
       "CREATE TRIGGER poison BEFORE INSERT ON events WHEN NEW.payload = CAST('poison' AS BLOB) "
       "BEGIN SELECT RAISE(ABORT, 'poisoned event'); END");
  EventData poison = deposit(2);
  poison.payload = "poison";
  EventData drifted = make_event_data(testdomain::Withdrawn{3});
  drifted.fingerprint = 42;

  Outcomes outcomes(3);
  {
    HeldWriter held(store);  // raw: records nothing
    store.append_async("x", ExpectedVersion::any(), std::vector{make_event_data(testdomain::Withdrawn{1})}, outcomes.next());
    // The first typed test.deposited: its record is written, then its append is undone.
    store.append_async("y", ExpectedVersion::any(), std::vector{make_event_data(testdomain::Deposited{1, ""}), poison},
                       outcomes.next());
    // Differs from the record made earlier in this very transaction: refused.
    store.append_async("z", ExpectedVersion::any(), std::vector{drifted}, outcomes.next());
  }
  REQUIRE(outcomes.futures[0].get());
  auto undone = outcomes.futures[1].get();
  REQUIRE_FALSE(undone);
  CHECK(undone.error().message.find("poisoned event") != std::string::npos);
  auto refused = outcomes.futures[2].get();
  REQUIRE_FALSE(refused);
  CHECK(refused.error().is(errc::schema_drift));

  auto recorded = store.recorded_schemas().value();
  REQUIRE(recorded.size() == 1);
  CHECK(recorded[0].type == "test.withdrawn");
  CHECK(recorded[0].fingerprint == fingerprint_v<testdomain::Withdrawn>);
  CHECK(store.last_position().value() == 2);

  // The writer's memory of what is recorded went with the rollback: the next deposit records its type.
  REQUIRE(store.append("y", ExpectedVersion::any(), std::vector{make_event_data(testdomain::Deposited{4, ""})}));
  recorded = store.recorded_schemas().value();
  REQUIRE(recorded.size() == 2);
  CHECK(recorded[0].type == "test.deposited");
}

TEST_CASE("commit groups are capped by bytes as well as by count") {
  test::TempDir dir;
  auto o = options_for(dir / "events.db");
  o.max_group_bytes = 2500;  // two of the events below fit, three do not
  SqliteEventStore store(o);
  std::mutex mutex;
  std::vector<std::uint64_t> commits;  // last position of every commit, in order
  store.add_commit_listener([&](std::uint64_t position) {
    std::lock_guard lock(mutex);
    commits.push_back(position);
  });
  constexpr int n = 10;
  Outcomes outcomes(n);
  {
    HeldWriter held(store);  // commits position 1
    for (int i = 0; i < n; ++i)
      store.append_async("s-" + std::to_string(i), ExpectedVersion::any(), std::vector{deposit(i, std::string(1000, 'm'))},
                         outcomes.next());
  }
  for (auto& f : outcomes.futures) REQUIRE(f.get());
  std::lock_guard lock(mutex);
  // The ten queued appends commit two by two: positions 3, 5, 7, 9, 11.
  CHECK(commits == std::vector<std::uint64_t>{1, 3, 5, 7, 9, 11});
}

TEST_CASE("an event over max_event_bytes is refused with invalid_argument before it joins a group") {
  test::TempDir dir;
  auto o = options_for(dir / "events.db");
  o.max_event_bytes = 4096;
  SqliteEventStore store(o);
  const EventData big = deposit(1, std::string(5000, 'x'));
  const auto is_too_big = [](const Error& e) {
    return e.is(errc::invalid_argument) && e.message.find("max_event_bytes") != std::string::npos;
  };

  Outcomes outcomes(3);
  {
    HeldWriter held(store);
    store.append_async("a", ExpectedVersion::any(), std::vector{deposit(1)}, outcomes.next());
    store.append_async("b", ExpectedVersion::any(), std::vector{deposit(2), big}, outcomes.next());
    // Answered at once, while the writer is still held.
    auto refused = outcomes.futures[1].get();
    REQUIRE_FALSE(refused);
    CHECK(is_too_big(refused.error()));
    CHECK(refused.error().message.find("event 2 of 2") != std::string::npos);
    store.append_async("c", ExpectedVersion::any(), std::vector{deposit(3)}, outcomes.next());
  }
  CHECK(outcomes.futures[0].get());
  CHECK(outcomes.futures[2].get());
  CHECK(store.stream_version("b").value() == 0);

  auto sync = store.append("b", ExpectedVersion::any(), std::vector{big});
  REQUIRE_FALSE(sync);
  CHECK(is_too_big(sync.error()));
  Snapshot snapshot{"a", 1, "State", 42, Encoding::binary, std::string(5000, 's'), {}};
  auto saved = store.save_snapshot(snapshot);
  REQUIRE_FALSE(saved);
  CHECK(is_too_big(saved.error()));
  CHECK(store.last_position().value() == 3);
  CHECK(store.append("b", ExpectedVersion::any(), std::vector{deposit(4, std::string(3000, 'x'))}));
}

namespace {

// Another writer's hold on a byte of the store's <file>-lock (0: the queue, 1: the turn), as an evs process
// holds them inside (or right before) its write transaction.
class SidecarLock {
 public:
  SidecarLock(const std::filesystem::path& store, off_t byte)
      : fd_(::open((store.string() + "-lock").c_str(), O_RDWR | O_CLOEXEC)) {
    REQUIRE(fd_ >= 0);
    struct flock request {};
    request.l_type = F_WRLCK;
    request.l_whence = SEEK_SET;
    request.l_start = byte;
    request.l_len = 1;
    REQUIRE(fcntl(fd_, F_OFD_SETLK, &request) == 0);
  }
  ~SidecarLock() { release(); }
  SidecarLock(const SidecarLock&) = delete;
  SidecarLock& operator=(const SidecarLock&) = delete;
  void release() {
    if (fd_ < 0) return;
    close(fd_);  // releases the lock
    fd_ = -1;
  }

 private:
  int fd_;
};

// Appends while another process holds `byte` of <file>-lock longer than the busy timeout.
void appends_fail_while_held(off_t byte) {
  test::TempDir dir;
  const auto path = dir / "events.db";
  auto o = options_for(path);
  o.busy_timeout = std::chrono::milliseconds(200);
  SqliteEventStore store(o);
  REQUIRE(store.append("s-1", ExpectedVersion::any(), std::vector{deposit(1)}));

  SidecarLock held(path, byte);
  Outcomes outcomes(2);
  auto pending = std::async(std::launch::async, [&] {
    store.append_async("s-2", ExpectedVersion::any(), std::vector{deposit(2)}, outcomes.next());
    store.append_async("s-3", ExpectedVersion::any(), std::vector{deposit(3)}, outcomes.next());
    return store.append("s-1", ExpectedVersion::exact(1), std::vector{deposit(4)});
  });
  // Generous: the appends must give up after about 200 ms, not wait for the holder.
  if (pending.wait_for(std::chrono::seconds(60)) != std::future_status::ready) {
    held.release();  // lets the stuck appends end so the test can
    FAIL("the appends are still waiting for the writers' turn after 60 s");
  }
  auto r = pending.get();
  REQUIRE_FALSE(r);
  CHECK(r.error().is(errc::database_locked));
  CHECK(r.error().message.find(path.string() + "-lock") != std::string::npos);
  CHECK(r.error().message.find("another process") != std::string::npos);
  for (auto& f : outcomes.futures) {
    REQUIRE(f.wait_for(std::chrono::seconds(60)) == std::future_status::ready);
    auto queued = f.get();
    REQUIRE_FALSE(queued);
    CHECK(queued.error().is(errc::database_locked));
  }
  // Reads go on; nothing of the failed appends is stored.
  CHECK(store.last_position().value() == 1);

  held.release();
  auto later = store.append("s-1", ExpectedVersion::exact(1), std::vector{deposit(5)});
  REQUIRE(later);
  CHECK(later->stream_version == 2);
  CHECK(later->last_position == 2);
  CHECK(store.stream_version("s-2").value() == 0);
}

}  // namespace

TEST_CASE("appends fail with database_locked after the busy timeout when another process keeps the writers' turn") {
  SUBCASE("the turn") { appends_fail_while_held(1); }
  SUBCASE("the queue in front of it") { appends_fail_while_held(0); }
}

TEST_CASE("an append waits for the writers' turn in <file>-lock while the busy timeout lasts") {
  test::TempDir dir;
  const auto path = dir / "events.db";
  auto o = options_for(path);
  o.busy_timeout = std::chrono::seconds(120);
  SqliteEventStore store(o);
  REQUIRE(store.append("s-1", ExpectedVersion::any(), std::vector{deposit(1)}));
  REQUIRE(std::filesystem::exists(path.string() + "-lock"));

  SidecarLock turn(path, 1);
  auto pending = std::async(std::launch::async, [&] {
    return store.append("s-1", ExpectedVersion::exact(1), std::vector{deposit(2)});
  });
  CHECK(pending.wait_for(std::chrono::milliseconds(300)) == std::future_status::timeout);
  turn.release();
  auto r = pending.get();
  REQUIRE(r);
  CHECK(r->stream_version == 2);
}
