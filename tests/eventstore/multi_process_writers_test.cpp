// Several processes append to one store at once (expected versions, async and sync appends, back to back as
// fast as they can) while the test SIGKILLs them at random and readers in this process follow the log. None
// may fail with database_locked (or anything else); afterwards versions are contiguous, every acknowledged
// append is stored where it was reported, nothing is stored twice, and every reader saw exactly the log's
// events in the log's order, none skipped or repeated (on SQLite positions are also gap-free). The same test
// runs on one SQLite file and on one PostgreSQL store.
#include "../support/child_process.hpp"
#include "../support/result_printing.hpp"
#include "../support/temp_dir.hpp"

#include <evs/eventstore/open_store.hpp>
#include <evs/eventstore/sqlite_event_store.hpp>
#ifdef EVS_TEST_POSTGRESQL
#include "../support/pg_server.hpp"
#endif

#include <doctest/doctest.h>

#include <fcntl.h>
#include <future>

#include <atomic>
#include <chrono>
#include <map>
#include <optional>
#include <poll.h>
#include <random>
#include <sstream>
#include <thread>

namespace {

using SteadyClock = std::chrono::steady_clock;

struct Ack {
  std::string stream;
  std::uint64_t version = 0, first = 0, last = 0;
  std::vector<std::string> ids;
};

struct Writer {
  std::string mode, durability;
  evs::test::ChildProcess child;
  std::string buffer;  // a partial line
  bool running = false;
};

// Follows the log from the start with its own read-only store object, as a projection would, and records
// every event id it reads, in order.
class Follower {
 public:
  explicit Follower(std::string db) : thread_([this, db] { run(db); }) {}
  ~Follower() { stop(); }
  void stop() {
    stop_ = true;
    if (thread_.joinable()) thread_.join();
  }
  const std::vector<std::string>& seen() const { return seen_; }
  const std::string& problem() const { return problem_; }

 private:
  void run(const std::string& db) {
    std::unique_ptr<evs::EventStore> store;
    try {
      store = evs::open_store(db, {.read_only = true});
    } catch (const evs::Exception& e) {
      problem_ = std::string("open: ") + e.what();
      return;
    }
    std::uint64_t next = 1, last = 0;
    while (!stop_ && problem_.empty()) {
      auto batch = store->read_all(next, 500);
      if (!batch) {
        problem_ = "read_all failed: " + batch.error().what();
        return;
      }
      for (const auto& e : batch->events) {
        if (e.position <= last) {
          problem_ = "read position " + std::to_string(e.position) + " after " + std::to_string(last);
          return;
        }
        last = e.position;
        seen_.push_back(e.event_id.to_string());
      }
      next = batch->next_position;
      if (batch->events.empty()) std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
  }

  std::atomic<bool> stop_{false};
  std::vector<std::string> seen_;
  std::string problem_;
  std::thread thread_;  // last
};

void parse_lines(Writer& w, std::vector<Ack>& acks, std::vector<std::string>& errors) {
  for (std::size_t end; (end = w.buffer.find('\n')) != std::string::npos; w.buffer.erase(0, end + 1)) {
    const std::string line = w.buffer.substr(0, end);
    std::istringstream in(line);
    std::string kind, ids;
    Ack a;
    in >> kind;
    if (kind != "ack") {
      errors.push_back(w.mode + ": " + line);
      continue;
    }
    in >> a.stream >> a.version >> a.first >> a.last >> ids;
    for (std::size_t start = 0; start <= ids.size();) {
      const std::size_t comma = std::min(ids.find(',', start), ids.size());
      a.ids.push_back(ids.substr(start, comma - start));
      start = comma + 1;
    }
    if (in) acks.push_back(std::move(a));
  }
}

// Reads what is available on the running writers' pipes for up to `timeout`.
void pump(std::vector<Writer>& writers, std::chrono::milliseconds timeout, std::vector<Ack>& acks,
          std::vector<std::string>& errors) {
  std::vector<pollfd> fds;
  for (const Writer& w : writers)
    if (w.running) fds.push_back({w.child.out, POLLIN, 0});
  if (poll(fds.data(), fds.size(), static_cast<int>(timeout.count())) <= 0) return;
  for (Writer& w : writers) {
    if (!w.running) continue;
    const auto it = std::find_if(fds.begin(), fds.end(), [&](const pollfd& p) { return p.fd == w.child.out; });
    if (it == fds.end() || it->revents == 0) continue;
    char buf[8192];
    const ssize_t n = read(w.child.out, buf, sizeof buf);
    if (n > 0) w.buffer.append(buf, static_cast<std::size_t>(n));
    parse_lines(w, acks, errors);
    if (n <= 0) {  // the child is gone (killed, or it failed on its own)
      close(w.child.out);
      const int code = evs::test::wait_child(w.child.pid);
      if (code != -SIGKILL) errors.push_back(w.mode + " writer ended by itself with code " + std::to_string(code));
      w.running = false;
    }
  }
}

// The writers' busy timeout: shorter than the test, so a writer starved by the others fails within it. It
// also bounds each wait for the store's write turn, which another writer holds for one transaction (well
// under a millisecond to a few with an fsync) and which the next waiter takes within a poll interval: 500 ms
// is hundreds of turns of the other three, so reaching it means starvation, not load (two copies of this
// test pinned to one CPU still pass).
constexpr const char* busy_timeout_ms = "500";

void start(Writer& w, const std::string& db, unsigned seed, const char* busy_ms = busy_timeout_ms) {
  w.child = evs::test::spawn_child(EVS_MULTI_WRITER, {db, std::to_string(seed), w.mode, w.durability, busy_ms});
  w.buffer.clear();
  w.running = true;
}

// SIGKILLs the writer and reads its pipe to the end (acknowledgements printed before the kill count).
void kill_and_drain(Writer& w, std::vector<Ack>& acks, std::vector<std::string>& errors) {
  if (!w.running) return;
  kill(w.child.pid, SIGKILL);
  w.buffer += evs::test::read_to_end(w.child.out);
  parse_lines(w, acks, errors);
  const int code = evs::test::wait_child(w.child.pid);
  if (code != -SIGKILL) errors.push_back(w.mode + " writer ended by itself with code " + std::to_string(code));
  w.running = false;
}

// The whole log of `db`: ascending positions (gap-free when `gap_free`), contiguous versions per stream,
// every event id once; and every acknowledged append stored where it was reported. Returns the log.
std::vector<evs::RecordedEvent> check_stored(const std::string& db, const std::vector<Ack>& acks,
                                             bool gap_free = true) {
  auto opened = evs::open_store(db);
  evs::EventStore& store = *opened;
  // The whole log: gap-free positions, contiguous versions per stream, every event id once.
  std::vector<evs::RecordedEvent> log;
  std::map<std::string, std::uint64_t> versions;
  std::map<std::string, std::uint64_t> position_of_id;
  const auto read_log = [&] {
    log.clear();
    versions.clear();
    position_of_id.clear();
    for (std::uint64_t from = 1;;) {
      auto batch = store.read_all(from, 5000).value();
      if (batch.events.empty()) break;
      for (auto& e : batch.events) {
        if (gap_free) REQUIRE(e.position == log.size() + 1);
        REQUIRE((log.empty() || e.position > log.back().position));
        REQUIRE(e.version == ++versions[e.stream_id]);
        REQUIRE(position_of_id.emplace(e.event_id.to_string(), e.position).second);
        log.push_back(std::move(e));
      }
      from = batch.next_position;
    }
  };
  // On PostgreSQL the log readers stop below the oldest transaction open anywhere in the cluster (the
  // fence), which other tests' sessions and the killed writers' dying backends hold for a moment: read until
  // the head before and after the log read agree with the log's end (the writers are all gone by now).
  std::uint64_t last = 0;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  for (;;) {
    last = store.last_position().value();
    read_log();
    const std::uint64_t end = log.empty() ? 0 : log.back().position;
    if (end == last && store.last_position().value() == last) break;
    if (std::chrono::steady_clock::now() >= deadline) break;  // the check below reports it
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  CHECK((log.empty() ? 0 : log.back().position) == last);
  for (const auto& [stream, v] : versions) CHECK(store.stream_version(stream).value() == v);
  // Every acknowledged append is stored where it was reported, once.
  for (const Ack& a : acks) {
    CAPTURE(a.stream);
    CAPTURE(a.first);
    REQUIRE(a.last - a.first + 1 == a.ids.size());
    REQUIRE(a.last <= last);
    const auto first = std::lower_bound(log.begin(), log.end(), a.first, [](const evs::RecordedEvent& e, std::uint64_t p) {
      return e.position < p;
    });
    REQUIRE(first != log.end());
    REQUIRE(first->position == a.first);
    const std::size_t index = static_cast<std::size_t>(first - log.begin());
    for (std::size_t i = 0; i < a.ids.size(); ++i) {
      REQUIRE(index + i < log.size());
      const evs::RecordedEvent& e = log[index + i];
      CHECK(e.position == a.first + i);  // an append's events sit at consecutive positions
      CHECK(e.event_id.to_string() == a.ids[i]);
      CHECK(e.stream_id == a.stream);
      CHECK(e.version == a.version - a.ids.size() + 1 + i);
    }
  }
  return log;
}

// Whether a description other than this one holds a lock on `byte` of <db>-lock.
bool sidecar_byte_held(const std::string& db, off_t byte) {
  const int fd = open((db + "-lock").c_str(), O_RDWR | O_CLOEXEC);
  if (fd < 0) return false;
  struct flock probe {};
  probe.l_type = F_WRLCK;
  probe.l_whence = SEEK_SET;
  probe.l_start = byte;
  probe.l_len = 1;
  const bool held = fcntl(fd, F_OFD_GETLK, &probe) == 0 && probe.l_type != F_UNLCK;
  close(fd);
  return held;
}

}  // namespace

namespace {

// The writers run for `run_for` while SIGKILLed at random and restarted; then checks everything.
void writers_killed_at_random(const std::string& db, bool gap_free, std::chrono::milliseconds run_for) {
  evs::open_store(db);  // creates the store before the writers race to
  std::mt19937 rng(std::random_device{}());
  const unsigned seed0 = rng();
  CAPTURE(seed0);
  std::vector<Writer> writers{{"sync", "normal", {}, {}, false},
                              {"sync", "full", {}, {}, false},
                              {"async", "normal", {}, {}, false},
                              {"expected", "normal", {}, {}, false}};
  std::vector<Ack> acks;
  std::vector<std::string> errors;
  int kills = 0;
  std::vector<std::vector<std::string>> seen;
  {
    Follower follower(db), second(db);
    for (std::size_t i = 0; i < writers.size(); ++i) start(writers[i], db, seed0 + static_cast<unsigned>(i));
    const auto end = SteadyClock::now() + run_for;
    auto next_kill = SteadyClock::now() + std::chrono::milliseconds(150 + rng() % 300);
    while (SteadyClock::now() < end) {
      pump(writers, std::chrono::milliseconds(20), acks, errors);
      for (Writer& w : writers)  // a writer that failed on its own is restarted too; its error is kept
        if (!w.running) start(w, db, rng());
      if (SteadyClock::now() >= next_kill) {
        Writer& victim = writers[rng() % writers.size()];
        kill_and_drain(victim, acks, errors);
        ++kills;
        start(victim, db, rng());
        next_kill = SteadyClock::now() + std::chrono::milliseconds(100 + rng() % 300);
      }
    }
    for (Writer& w : writers) kill_and_drain(w, acks, errors);
    follower.stop();
    second.stop();
    for (const Follower* f : {&follower, &second}) {
      CHECK_MESSAGE(f->problem().empty(), "a reader running alongside: " << f->problem());
      seen.push_back(f->seen());
    }
    MESSAGE(acks.size() << " acknowledged appends, " << kills << " kills, the readers followed "
                        << seen[0].size() << " and " << seen[1].size() << " events");
  }
  for (const std::string& e : errors) CHECK_MESSAGE(false, e);
  REQUIRE_FALSE(acks.empty());

  const auto log = check_stored(db, acks, gap_free);
  // Each reader saw a prefix of the final log, in its order: nothing skipped, nothing twice.
  for (const auto& ids : seen) {
    REQUIRE(ids.size() <= log.size());
    std::size_t differ = ids.size();
    for (std::size_t i = 0; i < ids.size() && differ == ids.size(); ++i)
      if (ids[i] != log[i].event_id.to_string()) differ = i;
    CHECK_MESSAGE(differ == ids.size(), "a reader's event " << differ << " is not the log's");
  }
}

}  // namespace

TEST_CASE("processes writing one store at once, SIGKILLed at random, never fail and lose or repeat nothing") {
  evs::test::TempDir dir;
  writers_killed_at_random((dir / "shared.db").string(), true, std::chrono::milliseconds(3000));
}

#ifdef EVS_TEST_POSTGRESQL
TEST_CASE("processes writing one PostgreSQL store at once, SIGKILLed at random, never fail and lose, repeat or "
          "reorder anything for the readers following the log") {
  evs::test::PgSchema schema;
  writers_killed_at_random(schema.url() + (schema.url().find('?') == std::string::npos ? "?" : "&") +
                               "evs_schema=" + schema.name(),
                           false, std::chrono::milliseconds(5000));
}
#endif

TEST_CASE("a stopped process holding the writers' turn makes appends fail with database_locked, and after it "
          "resumes everything proceeds with nothing lost") {
  evs::test::TempDir dir;
  const std::string db = (dir / "shared.db").string();
  evs::SqliteOptions o;
  o.path = db;
  o.durability = evs::Durability::normal;
  o.busy_timeout = std::chrono::milliseconds(200);
  evs::SqliteEventStore store(o);  // opened before the other process can stop inside a transaction
  REQUIRE(store.append("mine", evs::ExpectedVersion::any(), std::vector{evs::EventData{.type = "t"}}));

  std::vector<Writer> writers{{"sync", "normal", {}, {}, false}};
  Writer& child = writers.front();
  start(child, db, std::random_device{}(), "5000");
  std::vector<Ack> acks;
  std::vector<std::string> errors;
  const auto pump_child = [&](std::chrono::milliseconds timeout) { pump(writers, timeout, acks, errors); };
  for (const auto until = SteadyClock::now() + std::chrono::seconds(30); acks.empty() && child.running &&
                                                                         SteadyClock::now() < until;)
    pump_child(std::chrono::milliseconds(20));
  REQUIRE_FALSE(acks.empty());

  // Stop it at a moment when it holds the turn (it writes back to back, so it mostly does).
  bool in_turn = false;
  for (int attempt = 0; attempt < 2000 && !in_turn && child.running; ++attempt) {
    kill(child.child.pid, SIGSTOP);
    int status = 0;
    waitpid(child.child.pid, &status, WUNTRACED);
    in_turn = sidecar_byte_held(db, 1);
    if (!in_turn) {
      kill(child.child.pid, SIGCONT);
      pump_child(std::chrono::milliseconds(1));
    }
  }
  REQUIRE(in_turn);

  evs::EventData lost{.type = "t"};
  auto pending = std::async(std::launch::async, [&] {
    return store.append("mine", evs::ExpectedVersion::exact(1), std::vector{lost});
  });
  const bool answered = pending.wait_for(std::chrono::seconds(60)) == std::future_status::ready;
  if (!answered) kill(child.child.pid, SIGKILL);  // releases the turn, so the waiting append can end
  REQUIRE_MESSAGE(answered, "an append still waited for the stopped process after 60 s");
  auto failed = pending.get();
  REQUIRE_FALSE(failed);
  CHECK(failed.error().is(evs::errc::database_locked));
  CHECK(failed.error().message.find(db + "-lock") != std::string::npos);

  // Resumed, it goes on writing, and so do we (a patient store: the two now take turns).
  kill(child.child.pid, SIGCONT);
  const std::size_t acks_before = acks.size();
  for (const auto until = SteadyClock::now() + std::chrono::seconds(30);
       acks.size() < acks_before + 10 && child.running && SteadyClock::now() < until;)
    pump_child(std::chrono::milliseconds(20));
  CHECK(acks.size() >= acks_before + 10);
  o.busy_timeout = std::chrono::seconds(30);
  evs::SqliteEventStore patient(o);
  auto later = patient.append("mine", evs::ExpectedVersion::exact(1), std::vector{evs::EventData{.type = "t"}});
  REQUIRE(later);
  CHECK(later->stream_version == 2);

  kill_and_drain(child, acks, errors);
  for (const std::string& e : errors) CHECK_MESSAGE(false, e);
  const auto log = check_stored(db, acks);
  CHECK(std::none_of(log.begin(), log.end(), [&](const evs::RecordedEvent& e) { return e.event_id == lost.event_id; }));
}
