// pg_append_multi_process: 16 writer processes appending to one PostgreSQL store (each a child of evs_bench),
// against 16 raw libpq clients (child processes too) doing single-row inserts.
#include "children.hpp"
#include "pg_common.hpp"
#include "raw_pg.hpp"
#include "report.hpp"
#include "scenarios.hpp"
#include "workloads.hpp"

#include <optional>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

namespace bench {

namespace {

constexpr std::size_t multi_processes = 16;
constexpr std::size_t appenders_per_process = 8;
// The evs children read nothing: one reader connection each keeps 16 processes well inside max_connections.
constexpr std::size_t child_readers = 1;

}  // namespace

// Runs in a child process: waits until `start_ns` on the (system-wide) steady clock, then appends. evs: 8
// threads, each `appends` single-event appends to its own stream, through `writers` writer connections;
// evs-chained: the same 8 appenders in coroutine style (append_chained); raw:
// one connection, `appends` single-row inserts to its own stream, one transaction each. Prints its waits
// (print_waits). ceiling: one connection, `appends` transactions each appending one event to each of 8 streams
// in one statement with none of evs's checks (what the server alone does with evs's group sizes).
int child_pg_append_multi(const std::string& mode, const std::string& url, const std::string& schema,
                          std::size_t process, std::size_t appends, std::size_t writers, std::int64_t start_ns) {
  const auto start = steady_at(start_ns);
  std::vector<double> waits;
  std::size_t total = 0;
  if (mode == "evs" || mode == "evs-chained") {
    evs::PgOptions o = pg_options(url, schema);
    o.readers = child_readers;
    o.writers = writers;
    evs::PgEventStore store(o);
    warm_up_appends(store, "warm-up-" + std::to_string(process));
    std::this_thread::sleep_until(start);
    const std::size_t first = process * appenders_per_process;
    if (mode == "evs") append_threads(store, appenders_per_process, appends, first, &waits);
    else append_chained(store, appenders_per_process, appends, first, &waits);
    total = appenders_per_process * appends;
  } else if (mode == "raw") {
    rawpg::Appender app(url, schema);
    const std::string stream = bench::account_name(process);
    waits.reserve(appends);
    std::this_thread::sleep_until(start);
    for (std::size_t i = 0; i < appends; ++i) {
      const auto a0 = SteadyClock::now();
      app.append(stream, std::int64_t(i), 1);
      waits.push_back(std::chrono::duration<double, std::milli>(SteadyClock::now() - a0).count());
    }
    total = appends;
  } else if (mode == "ceiling") {
    rawpg::Appender app(url, schema);
    std::vector<std::string> streams;
    for (std::size_t a = 0; a < appenders_per_process; ++a)
      streams.push_back(bench::account_name(process * appenders_per_process + a));
    app.append_group(streams, 0);  // prepared before the start, as the evs children warm up
    waits.reserve(appends);
    std::this_thread::sleep_until(start);
    for (std::size_t i = 1; i <= appends; ++i) {
      const auto a0 = SteadyClock::now();
      app.append_group(streams, std::int64_t(i));
      waits.push_back(std::chrono::duration<double, std::milli>(SteadyClock::now() - a0).count());
    }
    total = appenders_per_process * appends;
  } else {
    throw std::invalid_argument("--child-pg-append-multi: mode is evs, evs-chained, raw or ceiling");
  }
  print_waits(total, 0, seconds_since(start), waits);
  return 0;
}

namespace {

std::vector<ProcessWaits> run_pg_multi(const Config& cfg, const std::string& mode, const std::string& schema,
                                       std::size_t appends, std::size_t writers) {
  // Time for every child to start and connect before the common start.
  const auto start = SteadyClock::now() + std::chrono::milliseconds(500 + 100 * multi_processes);
  std::vector<std::string> commands;
  for (std::size_t p = 0; p < multi_processes; ++p)
    commands.push_back(shell_quote(cfg.self) + " --child-pg-append-multi " + mode + " " + shell_quote(cfg.pg_url) +
                       " " + shell_quote(schema) + " " + std::to_string(p) + " " + std::to_string(appends) + " " +
                       std::to_string(writers) + " " + std::to_string(steady_ns(start)));
  std::vector<ProcessWaits> result;
  for (const std::string& out : run_children(commands)) result.push_back(parse_waits(out));
  return result;
}

}  // namespace

void scenario_pg_append_multi_process(const Config& cfg, DataSets&) {
  PgSchema evs_schema(cfg, "append_multi_process"), raw_schema(cfg, "append_multi_process_raw");
  const std::size_t evs_appends = cfg.scale(1000, 2);  // per appender: 16 x 8 x 1,000 = 128,000 events
  const std::size_t raw_appends = cfg.scale(4000, 4);  // per client: 16 x 4,000 = 64,000 events
  // evs's default number of writer connections per process (the target), and one writer with deeper groups.
  const std::size_t default_writers = evs::PgOptions{}.writers;
  struct Line {
    std::size_t writers;
    bool threaded;
  };
  // Threads calling append(), then the same appenders in coroutine style (as pg_append_concurrent).
  std::vector<Line> lines{{default_writers, true}, {default_writers, false}};
  if (default_writers != 1) lines.push_back({1, true});
  for (const Line line : lines) {
    const std::size_t writers = line.writers;
    const bool targeted = writers == default_writers;
    std::vector<Sample> evs_s, raw_s, ceiling_s;
    ProcessRuns evs_runs, raw_runs, ceiling_runs;
    for (int r = 0; r < cfg.reps; ++r) {
      evs_schema.create_empty_store();  // so that the children only open it
      evs_runs.last = run_pg_multi(cfg, line.threaded ? "evs" : "evs-chained", evs_schema.name(), evs_appends, writers);
      evs_s.push_back(waits_sample(evs_runs.last, multi_processes * appenders_per_process * evs_appends,
                                   evs_runs.longest_ms, evs_runs.failures));
      raw_schema.create_empty_store();
      raw_runs.last = run_pg_multi(cfg, "raw", raw_schema.name(), raw_appends, 0);
      raw_s.push_back(waits_sample(raw_runs.last, multi_processes * raw_appends, raw_runs.longest_ms,
                                   raw_runs.failures));
      if (targeted) {
        raw_schema.create_empty_store();
        ceiling_runs.last = run_pg_multi(cfg, "ceiling", raw_schema.name(), evs_appends, 0);
        ceiling_s.push_back(waits_sample(ceiling_runs.last, multi_processes * appenders_per_process * evs_appends,
                                         ceiling_runs.longest_ms, ceiling_runs.failures));
      }
    }
    const Summary e = summarize(evs_s), b = summarize(raw_s);
    const double ratio = e.rate / b.rate;
    Json detail = waits_detail(evs_runs, raw_runs);
    if (targeted) {
      const Summary c = summarize(ceiling_s);
      detail.obj("ceiling", Json()
                                .str("what", "16 raw libpq client processes, one connection each, one event to each "
                                             "of 8 streams per transaction (one multi-row statement, none of evs's "
                                             "checks)")
                                .num("events_per_s", c.rate)
                                .num("ratio_to_baseline", c.rate / b.rate)
                                .num("evs_share", e.rate / c.rate));
    }
    emit(cfg, "pg_append_multi_process",
         Json().num("processes", std::uint64_t(multi_processes))
             .num("appenders_per_process", std::uint64_t(appenders_per_process))
             .str("appender", line.threaded ? "thread calling append(), own stream"
                                            : "coroutine style: append_async() chained from its callback, own stream")
             .num("appends_per_appender", std::uint64_t(evs_appends)).num("events_per_append", 1)
             .num("writers_per_process", std::uint64_t(writers)).str("synchronous_commit", "on")
             .str("wait", "per append, call to acknowledgement; p99_ms is the worst process's p99")
             .str("baseline", "16 raw libpq client processes, one connection each, " + std::to_string(raw_appends) +
                                  " single-row inserts each (autocommit, one statement)"),
         e, b, true, ratio,
         targeted ? ">= 2x raw single-row inserts from 16 clients"
                  : "informational (one writer connection per process; the target applies to the default)",
         targeted ? std::optional<bool>(ratio >= 2) : std::nullopt, detail);
  }
}

}  // namespace bench
