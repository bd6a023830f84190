// Several worker processes (nodes) run one partitioned SQL projection under claims (ProjectionOptions::node):
// workers holding partitions are SIGKILLed and replaced while appends continue, and a worker paused past its
// lease resumes; the read model must still equal a clean replay with no event applied twice, and the
// partitions must have changed owner (their epochs grew).
#include "projection_processes.hpp"

#include <doctest/doctest.h>

#include <algorithm>
#include <map>
#include <random>
#include <utility>

namespace {

using namespace std::chrono_literals;
using evs::test::ChildProcess;
using evs::test::KillRoundsSetup;

constexpr std::size_t partitions = 4;

// A worker process; one still running when the test ends (a failed check) is killed, even if stopped.
struct Worker {
  std::string node;
  ChildProcess process;
  Worker(std::string n, ChildProcess p) : node(std::move(n)), process(p) {}
  Worker(Worker&& other) noexcept : node(std::move(other.node)), process(std::exchange(other.process, {})) {}
  Worker& operator=(Worker&& other) noexcept {
    std::swap(node, other.node);
    std::swap(process, other.process);
    return *this;
  }
  ~Worker() {
    if (process.pid > 0) evs::test::kill_and_reap(process.pid);
    if (process.out >= 0) close(process.out);
  }
};

// Starts a worker and waits until it has started its engine (its claims table exists).
Worker start_worker(const KillRoundsSetup& where, const std::string& node, std::chrono::milliseconds lease) {
  Worker w(node, evs::test::spawn_projection_child({"work", where.store, where.model, std::to_string(partitions), node,
                                                    std::to_string(lease.count())}));
  const auto line = evs::test::read_line_within(w.process.out, 30s);
  REQUIRE_MESSAGE(line == std::optional<std::string>("working"), node << " did not start");
  return w;
}

// node -> partitions it holds now (lease still running by the database's clock is not checked: the test
// reads owners right after they claimed).
std::map<std::string, int> owners(const KillRoundsSetup& where) {
  std::map<std::string, int> out;
  for (const auto& row : where.query("SELECT owner FROM evs_claims WHERE projection = 'shop_stats' AND owner IS NOT NULL"))
    ++out[row.at(0)];
  return out;
}

std::int64_t max_epoch(const KillRoundsSetup& where) {
  const auto rows = where.query("SELECT max(epoch) FROM evs_claims WHERE projection = 'shop_stats'");
  return rows.empty() || rows[0].at(0) == "NULL" ? 0 : std::stoll(rows[0].at(0));
}

// Waits until `node` holds `count` partitions (at most 20 s).
void wait_held(const KillRoundsSetup& where, const std::string& node, int count) {
  const auto deadline = std::chrono::steady_clock::now() + 20s;
  while (owners(where)[node] != count) {
    REQUIRE_MESSAGE(std::chrono::steady_clock::now() < deadline, node << " never held " << count << " partitions");
    std::this_thread::sleep_for(20ms);
  }
}

// SIGTERMs the workers (a graceful stop: they give their claims up) and returns their fenced batches.
std::uint64_t stop_workers(std::vector<Worker>& workers) {
  std::uint64_t fenced = 0;
  for (auto& w : workers) kill(w.process.pid, SIGTERM);
  for (auto& w : workers) {
    int status = 0;
    const bool exited = evs::test::wait_exit(w.process.pid, 60s, status);
    if (!exited) evs::test::kill_and_reap(w.process.pid);
    w.process.pid = -1;
    const std::string out = evs::test::read_to_end(std::exchange(w.process.out, -1));
    CHECK_MESSAGE(exited, w.node << " did not stop within 60 s");
    CHECK_MESSAGE((WIFEXITED(status) && WEXITSTATUS(status) == 0), w.node << " failed: status " << status << ": " << out);
    if (out.rfind("fenced ", 0) == 0) fenced += std::stoull(out.substr(7));
  }
  workers.clear();
  return fenced;
}

// Runs the projection once more without claims to the end of the log, then checks the read model.
void finish_and_check(const KillRoundsSetup& where, evs::EventStore& store) {
  ChildProcess last = evs::test::spawn_projection_child({"project", where.store, where.model, std::to_string(partitions)});
  int status = 0;
  const bool exited = evs::test::wait_exit(last.pid, 90s, status);
  if (!exited) evs::test::kill_and_reap(last.pid);
  (void)evs::test::read_to_end(last.out);
  REQUIRE_MESSAGE(exited, "projection_child did not catch up within 90 s");
  REQUIRE((WIFEXITED(status) && WEXITSTATUS(status) == 0));
  const auto log = evs::test::load_log(store);
  const auto check = where.check(log);  // no position twice, every stream a prefix of its handled events
  CHECK(check.min_checkpoint == log.back().position);
  CHECK(check.processed_rows == evs::test::handled_positions(log).size());
}

// Three workers; in each round the parent appends, then SIGKILLs a worker that holds a partition and starts
// a new one. Their leases run out and the others take the partitions over.
void run_failover(const KillRoundsSetup& where, int rounds) {
  const auto store = evs::test::open_test_store(where.store);
  shop::Generator gen(4242, 300, 40);
  evs::test::fill(*store, gen, 4000);
  const auto lease = 700ms;
  std::vector<Worker> workers;
  int started = 0;
  for (; started < 3; ++started) workers.push_back(start_worker(where, "node-" + std::to_string(started), lease));
  std::mt19937 rng(std::random_device{}());
  int failovers = 0;
  for (int round = 0; round < rounds; ++round) {
    CAPTURE(round);
    evs::test::fill(*store, gen, 1500);
    std::this_thread::sleep_for(std::chrono::milliseconds(150 + rng() % 400));
    const auto held = owners(where);
    auto victim = std::find_if(workers.begin(), workers.end(), [&](const Worker& w) { return held.contains(w.node); });
    if (victim == workers.end()) victim = workers.begin() + static_cast<std::ptrdiff_t>(rng() % workers.size());
    else ++failovers;
    workers.erase(victim);  // SIGKILLed
    workers.push_back(start_worker(where, "node-" + std::to_string(started++), lease));
  }
  evs::test::fill(*store, gen, 1000);
  std::this_thread::sleep_for(2s);  // the killed workers' leases run out; the rest take over
  const std::uint64_t fenced = stop_workers(workers);
  MESSAGE(failovers << " of " << rounds << " kills hit a worker holding partitions; max epoch " << max_epoch(where)
                    << ", fenced batches " << fenced);
  CHECK(failovers > 0);
  CHECK(max_epoch(where) > 1);
  finish_and_check(where, *store);
}

// Waits until the partitions held per node, in ascending order, are `counts` (at most 20 s).
void wait_spread(const KillRoundsSetup& where, std::vector<int> counts) {
  const auto deadline = std::chrono::steady_clock::now() + 20s;
  for (;;) {
    std::vector<int> now;
    for (const auto& [node, count] : owners(where)) now.push_back(count);
    std::sort(now.begin(), now.end());
    if (now == counts) return;
    REQUIRE_MESSAGE(std::chrono::steady_clock::now() < deadline, "the partitions never spread as expected");
    std::this_thread::sleep_for(20ms);
  }
}

// One worker holds every partition; two join and the partitions spread 2 + 1 + 1 while appends continue;
// the two stop gracefully and the first takes everything back.
void run_rebalance(const KillRoundsSetup& where) {
  const auto store = evs::test::open_test_store(where.store);
  shop::Generator gen(99, 300, 40);
  evs::test::fill(*store, gen, 2000);
  const auto lease = 600ms;
  std::vector<Worker> first;
  first.push_back(start_worker(where, "first", lease));
  wait_held(where, "first", static_cast<int>(partitions));
  evs::test::fill(*store, gen, 1500);
  std::vector<Worker> joined;
  joined.push_back(start_worker(where, "second", lease));
  joined.push_back(start_worker(where, "third", lease));
  evs::test::fill(*store, gen, 1500);
  wait_spread(where, {1, 1, 2});
  evs::test::fill(*store, gen, 1500);
  CHECK(stop_workers(joined) == 0);
  wait_held(where, "first", static_cast<int>(partitions));
  evs::test::fill(*store, gen, 1000);
  CHECK(stop_workers(first) == 0);
  CHECK(max_epoch(where) > 1);
  finish_and_check(where, *store);
}

}  // namespace

TEST_CASE("partitions spread over joining workers and come back from leaving ones without a gap or a repeat, "
          "on SQLite") {
  evs::test::SqliteSetup s;
  run_rebalance(s.where);
}

TEST_CASE("worker processes of one partitioned SQL projection on SQLite take over the partitions of killed ones "
          "without a gap or a repeat") {
  evs::test::SqliteSetup s;
  run_failover(s.where, 5);
}

#ifdef EVS_TEST_POSTGRESQL
TEST_CASE("worker processes of one partitioned SQL projection on PostgreSQL take over the partitions of killed ones "
          "without a gap or a repeat") {
  evs::test::PgSetup s;
  run_failover(s.where, 5);
}

TEST_CASE("partitions spread over joining workers and come back from leaving ones without a gap or a repeat, "
          "on PostgreSQL") {
  evs::test::PgSetup s;
  run_rebalance(s.where);
}

TEST_CASE("a worker paused past its lease on PostgreSQL commits nothing after it resumes and rejoins under new claims") {
  evs::test::PgSetup s;
  const auto& where = s.where;
  const auto store = evs::test::open_test_store(where.store);
  shop::Generator gen(777, 300, 40);
  evs::test::fill(*store, gen, 3000);
  const auto lease = 600ms;
  std::vector<Worker> workers;
  workers.push_back(start_worker(where, "paused", lease));
  wait_held(where, "paused", static_cast<int>(partitions));
  evs::test::fill(*store, gen, 3000);  // work in hand when it stops
  kill(workers[0].process.pid, SIGSTOP);
  std::this_thread::sleep_for(lease + 500ms);
  workers.push_back(start_worker(where, "successor", lease));
  wait_held(where, "successor", static_cast<int>(partitions));
  std::map<std::string, std::int64_t> taken;  // partition -> the successor's epoch
  for (const auto& row : where.query("SELECT partition, epoch FROM evs_claims WHERE projection = 'shop_stats'")) {
    taken[row.at(0)] = std::stoll(row.at(1));
    CHECK(taken[row.at(0)] >= 2);
  }
  evs::test::fill(*store, gen, 1000);
  kill(workers[0].process.pid, SIGCONT);
  // The resumed worker is a live node again: it gets its share back, but only under new claims.
  wait_spread(where, {2, 2});
  for (const auto& row :
       where.query("SELECT partition, epoch FROM evs_claims WHERE projection = 'shop_stats' AND owner = 'paused'"))
    CHECK(std::stoll(row.at(1)) > taken[row.at(0)]);
  evs::test::fill(*store, gen, 1000);
  const std::uint64_t fenced = stop_workers(workers);
  MESSAGE("claims found gone after the pause: " << fenced);
  CHECK(fenced >= 1);  // counted in health
  finish_and_check(where, *store);
}
#endif
