// Several worker processes (nodes) run one partitioned SQL projection under claims (ProjectionOptions::node):
// workers holding partitions are SIGKILLed and replaced while appends continue, and a worker paused past its
// lease resumes; the read model must still equal a clean replay with no event applied twice, and the
// partitions must have changed owner (their epochs grew).
#include "projection_processes.hpp"
#include "shop_workers.hpp"

#include <doctest/doctest.h>

#include <algorithm>
#include <fstream>
#include <set>
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

// Starts a worker and waits until it has started its engine (its claims table exists). With `effects`, it
// also runs OrderMailer (writing to that file) and OrderWatch.
Worker start_worker(const KillRoundsSetup& where, const std::string& node, std::chrono::milliseconds lease,
                    const std::string& effects = {}) {
  std::vector<std::string> args{"work", where.store, where.model, std::to_string(partitions), node,
                                std::to_string(lease.count())};
  if (!effects.empty()) args.push_back(effects);
  Worker w(node, evs::test::spawn_projection_child(std::move(args)));
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

// Positions of the events OrderMailer and OrderWatch handle, and the order streams.
struct EffectEvents {
  std::set<std::uint64_t> positions;
  std::set<std::string> orders;
};
EffectEvents effect_events(const std::vector<evs::test::LogEvent>& log) {
  EffectEvents out;
  for (const auto& e : log) {
    if (e.type == "shop.order_placed" || e.type == "shop.order_cancelled") out.positions.insert(e.position);
    if (e.type == "shop.order_placed") out.orders.insert(e.stream);
  }
  return out;
}

// How often OrderMailer ran for each position.
std::map<std::uint64_t, int> sent(const std::string& effects) {
  std::map<std::uint64_t, int> out;
  std::ifstream in(effects);
  for (std::string line; std::getline(in, line);) ++out[std::stoull(line)];
  return out;
}

// OrderWatch instances not ended yet (not started, or waiting for a cancellation or their deadline).
std::size_t open_watches(evs::EventStore& store, const std::set<std::string>& orders) {
  shop::OrderWatch watch(store);
  std::size_t open = 0;
  for (const auto& order : orders) {
    auto state = watch.instance(order);
    if (!state && state.error().is(evs::errc::stream_not_found)) {  // not started yet
      ++open;
      continue;
    }
    REQUIRE_MESSAGE(state, order << ": " << state.error().what());
    open += state->status == evs::SagaStatus::running ? 1 : 0;
  }
  return open;
}

// With effects: waits (at most 60 s) until every order event was mailed and every order's watch ended, then
// checks that mails repeated only within the crash window: at most one per partition per killed worker.
void check_effects(const KillRoundsSetup& where, evs::EventStore& store, const std::string& effects, int kills) {
  const auto expected = effect_events(evs::test::load_log(store));
  const auto deadline = std::chrono::steady_clock::now() + 60s;
  for (;;) {
    const auto mails = sent(effects);
    std::size_t missing = 0;
    for (const auto p : expected.positions) missing += mails.contains(p) ? 0 : 1;
    const std::size_t open = open_watches(store, expected.orders);
    if (missing == 0 && open == 0) break;
    if (std::chrono::steady_clock::now() >= deadline) {
      FAIL_CHECK(missing << " order events never mailed, " << open << " watches never ended");
      for (const auto& row : where.query("SELECT c.projection, c.partition, c.owner, c.epoch, k.position FROM evs_claims c "
                                          "LEFT JOIN evs_checkpoints k ON k.projection = c.projection AND k.partition = c.partition"))
        MESSAGE(row.at(0) << " " << row.at(1) << " " << row.at(2) << " " << row.at(3) << " " << row.at(4));
      return;
    }
    std::this_thread::sleep_for(100ms);
  }
  int repeats = 0;
  for (const auto& [position, count] : sent(effects)) {
    CHECK(expected.positions.contains(position));
    repeats += count - 1;
  }
  MESSAGE("mails repeated: " << repeats << " after " << kills << " kills; watches: " << expected.orders.size());
  CHECK(repeats <= kills * static_cast<int>(partitions));
}

// Three workers; in each round the parent appends, then SIGKILLs a worker that holds a partition and starts
// a new one. Their leases run out and the others take the partitions over. With `effects`, the workers run
// OrderMailer and OrderWatch too.
void run_failover(const KillRoundsSetup& where, int rounds, const std::string& effects = {}) {
  const auto store = evs::test::open_test_store(where.store);
  shop::Generator gen(4242, 300, 40);
  evs::test::fill(*store, gen, 4000);
  const auto lease = 700ms;
  std::vector<Worker> workers;
  int started = 0;
  for (; started < 3; ++started)
    workers.push_back(start_worker(where, "node-" + std::to_string(started), lease, effects));
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
    workers.push_back(start_worker(where, "node-" + std::to_string(started++), lease, effects));
  }
  evs::test::fill(*store, gen, 1000);
  std::this_thread::sleep_for(2s);  // the killed workers' leases run out; the rest take over
  if (!effects.empty()) check_effects(where, *store, effects, rounds);
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

TEST_CASE("worker processes of a partitioned SQL projection, an effect handler and a process manager on SQLite "
          "take over the partitions of killed ones without a gap or a repeat") {
  evs::test::SqliteSetup s;
  evs::test::TempDir dir;
  run_failover(s.where, 5, (dir / "mails").string());
}

#ifdef EVS_TEST_POSTGRESQL
TEST_CASE("worker processes of one partitioned SQL projection on PostgreSQL take over the partitions of killed ones "
          "without a gap or a repeat") {
  evs::test::PgSetup s;
  run_failover(s.where, 5);
}

TEST_CASE("worker processes running a SQL projection, an effect handler and a process manager on PostgreSQL "
          "survive random kills: the read model equals a replay, effects repeat only in the crash window, every "
          "deadline fires") {
  evs::test::PgSetup s;
  evs::test::TempDir dir;
  run_failover(s.where, 6, (dir / "mails").string());
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
