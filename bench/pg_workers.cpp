// pg_workers_catchup and pg_workers_failover: worker processes (children of evs_bench) run one SQL projection
// with 4 partitions under claims (ProjectionOptions::node) on PostgreSQL.
//   catch-up: 1, 2 and 4 workers build the read model from a 100k-event log; events/s, and the scaling ratio
//             against one worker measured in the same run;
//   failover: two caught-up workers, one SIGKILLed: the time from the kill to the first commit, by the new
//             owner, of a partition the killed worker held (its lease has to run out first).
#include "children.hpp"
#include "domain.hpp"
#include "pg_common.hpp"
#include "raw_pg.hpp"
#include "report.hpp"
#include "scenarios.hpp"
#include "workloads.hpp"

#include <evs/projections/engine.hpp>

#include <csignal>
#include <cstdio>
#include <map>
#include <memory>
#include <stdexcept>
#include <string>
#include <thread>
#include <utility>
#include <vector>

namespace bench {

namespace {

constexpr std::size_t partitions = 4;


}  // namespace

int child_pg_worker(const std::string& url, const std::string& log, const std::string& model, const std::string& node,
                    std::int64_t lease_ms) {
  sigset_t term;
  sigemptyset(&term);
  sigaddset(&term, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &term, nullptr);  // before any thread starts: they all inherit it
  evs::PgEventStore store(pg_options(url, log));
  BalanceTable table;
  evs::ProjectionEngine engine(store);
  evs::ProjectionOptions o;
  o.database = pg_location(url, model);
  o.partitions = partitions;
  o.node = node;
  o.lease = std::chrono::milliseconds(lease_ms);
  engine.add(table, o);
  engine.start();
  std::printf("ready %d\n", static_cast<int>(getpid()));
  std::fflush(stdout);
  int signal = 0;
  sigwait(&term, &signal);
  const auto health = engine.health(BalanceTable::name).value();
  engine.stop();
  std::printf("{\"fenced\":%llu}\n", static_cast<unsigned long long>(health.fenced));
  return 0;
}

namespace {

// A worker process and its pid (from its "ready" line); killed if still running when dropped (a failed run).
struct Worker {
  std::unique_ptr<Child> child;
  pid_t pid = -1;
  std::string node;
  Worker() = default;
  Worker(Worker&&) = default;
  Worker& operator=(Worker&&) = default;
  ~Worker() {
    if (child && pid > 0) kill(pid, SIGKILL);
  }
};

Worker start_worker(const Config& cfg, const std::string& log, const PgSchema& model, const std::string& node,
                    std::chrono::milliseconds lease) {
  Worker w;
  w.node = node;
  w.child = std::make_unique<Child>("exec " + shell_quote(cfg.self) + " --child-pg-worker " + shell_quote(cfg.pg_url) + " " +
                                    shell_quote(log) + " " + shell_quote(model.name()) + " " + shell_quote(node) + " " +
                                    std::to_string(lease.count()));
  const std::string ready = w.child->line();
  if (ready.rfind("ready ", 0) != 0) throw std::runtime_error("pg worker did not start: " + ready);
  w.pid = static_cast<pid_t>(std::stol(ready.substr(6)));
  return w;
}

void stop(Worker& w) {
  kill(w.pid, SIGTERM);
  (void)std::exchange(w.child, nullptr)->finish();
}

// Each partition's stored checkpoint and owner (an empty map until the tables exist).
struct PartitionState {
  std::int64_t position = 0;
  std::string owner;
};
std::map<std::int64_t, PartitionState> partitions_of(rawpg::Conn& db, const std::string& model) {
  std::map<std::int64_t, PartitionState> out;
  const std::string s = rawpg::ident(model);
  try {
    rawpg::Params none(0);
    const rawpg::Result r = db.query(
        ("SELECT k.partition::bigint, k.position, coalesce(c.owner, '') FROM " + s + ".evs_checkpoints k LEFT JOIN " +
         s + ".evs_claims c ON c.projection = k.projection AND c.partition = k.partition WHERE k.projection = "
             "'balance_table'")
            .c_str(),
        none);
    for (int i = 0; i < r.rows(); ++i) out[r.i64(i, 0)] = {r.i64(i, 1), std::string(r.bytes(i, 2))};
  } catch (const std::exception&) {  // not created yet
    (void)db.query("ROLLBACK", rawpg::Params(0));
  }
  return out;
}

bool caught_up(const std::map<std::int64_t, PartitionState>& state, std::uint64_t head) {
  if (state.size() != partitions) return false;
  for (const auto& [p, s] : state)
    if (s.position < static_cast<std::int64_t>(head)) return false;
  return true;
}

// `workers` processes build the read model from scratch; returns the time until every partition's
// checkpoint reached `head` (the processes' start included).
Sample catch_up_with(const Config& cfg, const std::string& log, PgSchema& model, std::uint64_t head, std::size_t events,
                     std::size_t workers) {
  model.reset();
  rawpg::Conn db(cfg.pg_url);
  const auto t0 = SteadyClock::now();
  std::vector<Worker> running;
  for (std::size_t i = 0; i < workers; ++i)
    running.push_back(start_worker(cfg, log, model, "node-" + std::to_string(i), std::chrono::seconds(2)));
  while (!caught_up(partitions_of(db, model.name()), head)) std::this_thread::sleep_for(std::chrono::milliseconds(5));
  const double seconds = seconds_since(t0);
  for (auto& w : running) stop(w);
  return {events, seconds};
}

}  // namespace

void scenario_pg_workers_catchup(const Config& cfg, DataSets&) {
  const std::size_t events = cfg.scale(100'000, 2'000);
  PgSchema log(cfg, "workers_log"), model(cfg, "workers_model");
  const std::uint64_t head = build_pg_log(log, events);
  std::map<std::size_t, std::vector<Sample>> samples;
  for (int r = 0; r < cfg.reps; ++r)
    for (const std::size_t workers : {1, 2, 4}) {
      progress("pg_workers_catchup: %zu worker(s), repetition %d", workers, r + 1);
      samples[workers].push_back(catch_up_with(cfg, log.name(), model, head, events, workers));
    }
  const Summary one = summarize(samples[1]);
  for (const std::size_t workers : {2, 4}) {
    const Summary s = summarize(samples[workers]);
    emit(cfg, "pg_workers_catchup",
         Json().num("log_events", std::uint64_t(events)).num("partitions", std::uint64_t(partitions))
             .num("workers", std::uint64_t(workers))
             .str("baseline", "the same catch-up by 1 worker process (evs, same run)"),
         s, one, false, s.rate / one.rate, "reported (scaling against 1 worker)", std::nullopt);
  }
}

void scenario_pg_workers_failover(const Config& cfg, DataSets&) {
  const auto lease = std::chrono::milliseconds(1000);
  PgSchema log(cfg, "failover_log"), model(cfg, "failover_model");
  const std::uint64_t head = build_pg_log(log, cfg.scale(10'000, 1'000));
  evs::PgEventStore store(log.options());
  std::vector<Sample> first, all;
  for (int r = 0; r < cfg.reps; ++r) {
    model.reset();
    rawpg::Conn db(cfg.pg_url);
    Worker a = start_worker(cfg, log.name(), model, "node-a", lease);
    Worker b = start_worker(cfg, log.name(), model, "node-b", lease);
    std::uint64_t at = head;
    // Both caught up and holding two partitions each.
    for (;;) {
      const auto state = partitions_of(db, model.name());
      std::size_t held_by_a = 0;
      for (const auto& [p, s] : state) held_by_a += s.owner == "node-a" ? 1 : 0;
      if (caught_up(state, at) && held_by_a == 2) break;
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    std::vector<std::int64_t> victims;
    for (const auto& [p, s] : partitions_of(db, model.name()))
      if (s.owner == "node-a") victims.push_back(p);
    kill(a.pid, SIGKILL);
    const auto killed = SteadyClock::now();
    try {
      (void)std::exchange(a.child, nullptr)->finish();
    } catch (const std::exception&) {  // killed: expected
    }
    // New work for every partition, so the new owner has something to commit.
    for (std::size_t i = 0; i < 40; ++i) {
      const evs::EventData e = event_data(account_name(i), 1000 + r, evs::Encoding::binary);
      at = store.append(account_name(i), evs::ExpectedVersion::any(), {&e, 1}).value().last_position;
    }
    std::optional<double> first_commit;
    for (;;) {
      const auto state = partitions_of(db, model.name());
      std::size_t done = 0;
      for (const std::int64_t p : victims) {
        const auto it = state.find(p);
        if (it != state.end() && it->second.owner == "node-b" && it->second.position >= static_cast<std::int64_t>(at)) ++done;
      }
      if (done > 0 && !first_commit) first_commit = seconds_since(killed);
      if (done == victims.size()) break;
      if (seconds_since(killed) > 60) throw std::runtime_error("pg_workers_failover: no takeover within 60 s");
      std::this_thread::sleep_for(std::chrono::milliseconds(2));
    }
    const double everything = seconds_since(killed);
    stop(b);
    Sample f{1, *first_commit}, e{1, everything};
    with_latencies(f, {*first_commit * 1000});
    with_latencies(e, {everything * 1000});
    first.push_back(f);
    all.push_back(e);
  }
  const Summary f = summarize(first), e = summarize(all);
  emit(cfg, "pg_workers_failover",
       Json().num("lease_ms", std::int64_t(lease.count())).num("partitions", std::uint64_t(partitions))
           .str("baseline", "every partition of the killed worker committed by the new owner (evs, same run)"),
       f, e, true, f.p50_ms / std::max(1.0, double(lease.count())), "reported (kill to first commit by the new owner)",
       std::nullopt);
}

}  // namespace bench
