// evs_bench: the evs benchmark driver. bench/README.md explains every scenario and keeps the latest figures.
// This file: the arguments and the scenario table; scenarios.hpp lists the files the scenarios live in.
//
// Scenarios, in the order they run (select with --scenario NAME, repeatable):
//   append_1           one ~150-byte event per append, one appender, durability FULL
//   append_concurrent  64 appender threads, distinct streams, one event per append, FULL (group commit)
//   append_batch       100 events per append, NORMAL; binary and JSON encodings (one line each)
//   load_aggregate     load an aggregate from 10k events; with snapshots, a 1M-event stream vs a 1k-event one
//   load_aggregate_upcast  load_aggregate's 10k-event load with half of the events stored as version 1 of
//                      their type (upcast on read), against the same load of all-current events
//   read_all           scan + decode the whole log (1M events); binary and JSON encodings (one line each)
//   catchup_memory     an in-memory projection catches up over 1M events
//   catchup_memory_upcast  the same catch-up with half of the events stored as version 1, against all current
//   codec_cereal       encode + decode 1M events through the cereal archives vs the codec's own path
//                      (binary and JSON; informational: why the codec keeps its direct path)
//   rebuild_sql        a SQL read model (one upsert per event) rebuilt from 1M events, with checkpoints
//   live_latency       append -> projection applied, in process, at 5k events/s offered
//   rebuild_memory     peak RSS above idle while rebuilding the SQL read model from 1M events (child process)
//   append_multi_process  4 processes appending back to back to shared streams: events/s, write waits
//   http_load          appends + a SQL projection with 32 clients polling /metrics and /api/ every 50 ms, against
//                      the same run without the server (http_load_append, http_load_projection)
//
// The PostgreSQL scenarios (tag pg: built with EVS_POSTGRESQL=ON, run on the server EVS_PG_URL names, each in
// schemas of its own, against hand-written libpq code; ./dev bench --pg starts a throwaway server):
//   pg_append_concurrent     1, 4, 16 and 64 appender threads in one process vs raw one-row transactions
//   pg_append_multi_process  16 processes x 8 appender threads vs 16 raw single-row-insert clients
//   pg_append_batch          100 and 1,000 events per append vs raw multi-row inserts
//   pg_read_all              read_all over 100k events in pages of 1,000 vs raw paged SELECT
//   pg_catchup_memory        an in-memory projection catching up over 100k events vs raw paged SELECT + decode
//   pg_rebuild_sql           a SQL read model in PostgreSQL rebuilt from 100k events vs raw paged SELECT + upserts
//   pg_live_latency          append here -> projection in another process vs raw NOTIFY/LISTEN round trip
//   pg_workers_catchup       a 4-partition SQL projection built from 100k events by 2 and 4 worker processes
//                            under claims, against 1 worker (scaling ratio)
//   pg_workers_failover      two workers, one SIGKILLed: kill -> first commit of its partitions by the other
//
// Usage: evs_bench [--quick] [--pg] [--scenario NAME]... [--reps N] [--dir DIR] [--list]
//   --quick     every scenario at 1/100 of its size, one repetition (the test suite runs this: it checks
//               that the benchmarks run, not their speed)
//   --pg        the PostgreSQL scenarios only (they need EVS_PG_URL). Without --pg and --scenario, every
//               scenario runs, the PostgreSQL ones only when EVS_PG_URL is set (otherwise they are skipped
//               with a note on stderr)
//   --reps N    repetitions per scenario (default 3); the median is reported
//   --dir DIR   where the temporary databases go (default /tmp; use a real disk, not tmpfs)
//   --keep      keep the temporary directory; --reuse DIR runs on the data sets a --keep run left there
//               (for profiling)
//
// Output: one JSON object per line on stdout, nothing else (progress goes to stderr). Every line carries the
// raw-SQLite baseline measured in the same run (hand-written SQLite C API code doing the same storage work:
// the same schema and indexes, the same pragmas, prepared statements, sensible batching) and the ratio; the
// upcast scenarios' baseline is evs itself on all-current events.
#include "data.hpp"
#include "report.hpp"
#include "scenarios.hpp"

#include <stdlib.h>

#include <cstdlib>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <iterator>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace bench {
namespace {

struct Scenario {
  const char* name;
  void (*run)(const Config&, DataSets&);  // null: a PostgreSQL scenario of a build without EVS_POSTGRESQL
  void (*prepare)(DataSets&);  // builds the data sets it reads (before its peak RSS is measured), or null
  bool pg = false;             // tag pg: needs a PostgreSQL server (EVS_PG_URL)
};

#ifdef EVS_BENCH_POSTGRESQL
constexpr bool pg_built = true;
#define EVS_BENCH_PG(f) f
#else
constexpr bool pg_built = false;
#define EVS_BENCH_PG(f) nullptr
#endif

void needs_load(DataSets& d) { d.load_db(); }
void needs_log(DataSets& d) { d.log(evs::Encoding::binary); }
void needs_versioned_load(DataSets& d) { d.versioned_load_db(); }
void needs_versioned_logs(DataSets& d) {
  d.versioned_log(true);
  d.versioned_log(false);
}
void needs_logs(DataSets& d) {
  d.log(evs::Encoding::binary);
  d.log(evs::Encoding::json);
}

constexpr Scenario scenarios[] = {
    {"append_1", scenario_append_1, nullptr},
    {"append_concurrent", scenario_append_concurrent, nullptr},
    {"append_batch", scenario_append_batch, nullptr},
    {"load_aggregate", scenario_load_aggregate, needs_load},
    {"load_aggregate_upcast", scenario_load_aggregate_upcast, needs_versioned_load},
    {"read_all", scenario_read_all, needs_logs},
    {"catchup_memory", scenario_catchup_memory, needs_log},
    {"catchup_memory_upcast", scenario_catchup_memory_upcast, needs_versioned_logs},
    {"codec_cereal", scenario_codec_cereal, nullptr},
    {"rebuild_sql", scenario_rebuild_sql, needs_log},
    {"live_latency", scenario_live_latency, nullptr},
    {"rebuild_memory", scenario_rebuild_memory, needs_log},
    {"append_multi_process", scenario_append_multi_process, nullptr},
#ifdef EVS_BENCH_HTTP
    {"http_load", scenario_http_load, nullptr},
#endif
    {"pg_append_concurrent", EVS_BENCH_PG(scenario_pg_append_concurrent), nullptr, true},
    {"pg_append_multi_process", EVS_BENCH_PG(scenario_pg_append_multi_process), nullptr, true},
    {"pg_append_batch", EVS_BENCH_PG(scenario_pg_append_batch), nullptr, true},
    {"pg_read_all", EVS_BENCH_PG(scenario_pg_read_all), nullptr, true},
    {"pg_catchup_memory", EVS_BENCH_PG(scenario_pg_catchup_memory), nullptr, true},
    {"pg_rebuild_sql", EVS_BENCH_PG(scenario_pg_rebuild_sql), nullptr, true},
    {"pg_live_latency", EVS_BENCH_PG(scenario_pg_live_latency), nullptr, true},
    {"pg_workers_catchup", EVS_BENCH_PG(scenario_pg_workers_catchup), nullptr, true},
    {"pg_workers_failover", EVS_BENCH_PG(scenario_pg_workers_failover), nullptr, true},
};

// A child process's entry (--child-...): its arguments after the flag, or -1 if `a` is no child flag.
int run_child(std::string_view a, int argc, char** argv, int i) {
  const auto has = [&](int n) {
    if (i + n >= argc) throw std::invalid_argument(std::string(a) + " needs " + std::to_string(n) + " arguments");
  };
  if (a == "--child-rebuild-memory") {
    has(3);
    return child_rebuild_memory(argv[i + 1], argv[i + 2], argv[i + 3]);
  }
  if (a == "--child-append-multi") {
    has(4);
    return child_append_multi(argv[i + 1], argv[i + 2], std::stoul(argv[i + 3]), std::stoll(argv[i + 4]));
  }
#ifdef EVS_BENCH_POSTGRESQL
  if (a == "--child-pg-append-multi") {
    has(7);
    return child_pg_append_multi(argv[i + 1], argv[i + 2], argv[i + 3], std::stoul(argv[i + 4]),
                                 std::stoul(argv[i + 5]), std::stoul(argv[i + 6]), std::stoll(argv[i + 7]));
  }
  if (a == "--child-pg-live") {
    has(4);
    return child_pg_live(argv[i + 1], argv[i + 2], argv[i + 3], std::stoul(argv[i + 4]));
  }
  if (a == "--child-pg-worker") {
    has(5);
    return child_pg_worker(argv[i + 1], argv[i + 2], argv[i + 3], argv[i + 4], std::stoll(argv[i + 5]));
  }
#endif
  return -1;
}

int usage(const char* why) {
  std::fprintf(stderr,
               "evs_bench: %s\nusage: evs_bench [--quick] [--pg] [--scenario NAME]... [--reps N] [--dir DIR] [--list]\n",
               why);
  return 2;
}

}  // namespace
}  // namespace bench

int main(int argc, char** argv) {
  using namespace bench;
  Config cfg;
  cfg.dir = fs::temp_directory_path();
  std::error_code ec;
  cfg.self = fs::canonical("/proc/self/exe", ec).string();
  if (cfg.self.empty()) cfg.self = argv[0];
  if (const char* url = std::getenv("EVS_PG_URL")) cfg.pg_url = url;
  std::vector<std::string> chosen;
  bool keep = false, pg_only = false;
  for (int i = 1; i < argc; ++i) {
    const std::string_view a = argv[i];
    const auto value = [&]() -> std::string {
      if (i + 1 >= argc) throw std::invalid_argument(std::string(a) + " needs a value");
      return argv[++i];
    };
    try {
      if (a.starts_with("--child-")) {
        // A measured side running as a child process: its failure goes to stderr and its exit status.
        try {
          const int status = run_child(a, argc, argv, i);
          if (status >= 0) return status;
        } catch (const std::exception& e) {
          std::fprintf(stderr, "evs_bench %s: %s\n", argv[i], e.what());
          return 1;
        }
        return usage(("unknown argument " + std::string(a)).c_str());
      }
      if (a == "--quick") cfg.quick = true;
      else if (a == "--pg") pg_only = true;
      else if (a == "--scenario") chosen.push_back(value());
      else if (a == "--reps") cfg.reps = std::max(1, std::stoi(value()));
      else if (a == "--dir") cfg.dir = value();
      else if (a == "--keep") keep = true;  // keep the temporary databases (for profiling)
      else if (a == "--reuse") {
        cfg.dir = value();
        cfg.reuse = true;
      }
      else if (a == "--list") {
        for (const Scenario& s : scenarios) std::printf("%s\n", s.name);
        return 0;
      } else {
        return usage(("unknown argument " + std::string(a)).c_str());
      }
    } catch (const std::exception& e) {
      return usage(e.what());
    }
  }
  if (cfg.quick) cfg.reps = 1;
  for (const std::string& name : chosen)
    if (std::none_of(std::begin(scenarios), std::end(scenarios), [&](const Scenario& s) { return name == s.name; }))
      return usage(("unknown scenario " + name + " (see --list)").c_str());

  // Which scenarios run: the chosen ones, else the pg-tagged ones with --pg, else all (the PostgreSQL ones
  // when they can run, with a note when not).
  const auto is_chosen = [&](const Scenario& s) {
    return std::find(chosen.begin(), chosen.end(), s.name) != chosen.end();
  };
  const bool pg_asked = pg_only || std::any_of(std::begin(scenarios), std::end(scenarios),
                                               [&](const Scenario& s) { return s.pg && is_chosen(s); });
  if (pg_asked && !pg_built)
    return usage("the PostgreSQL scenarios are not built: configure with -DEVS_POSTGRESQL=ON (./dev bench --pg does)");
  if (pg_asked && cfg.pg_url.empty())
    return usage("the PostgreSQL scenarios need EVS_PG_URL (./dev bench --pg starts a throwaway server)");
  const auto selected = [&](const Scenario& s) {
    if (!chosen.empty()) return is_chosen(s) && (!pg_only || s.pg);
    if (pg_only) return s.pg;
    return !s.pg || (s.run && !cfg.pg_url.empty());
  };
  if (chosen.empty() && !pg_only && (!pg_built || cfg.pg_url.empty()))
    progress("PostgreSQL scenarios (pg_*) skipped: %s",
             pg_built ? "EVS_PG_URL is not set (./dev bench --pg starts a throwaway server)"
                      : "built without EVS_POSTGRESQL (./dev bench --pg builds them and starts a server)");

  std::string tmpl = (cfg.dir / "evs-bench-XXXXXX").string();
  if (cfg.reuse) {
    tmpl = cfg.dir.string();
    keep = true;
  } else if (!mkdtemp(tmpl.data())) {
    std::fprintf(stderr, "evs_bench: cannot create a directory under %s\n", cfg.dir.c_str());
    return 1;
  }
  cfg.dir = tmpl;
  int status = 0;
  {
    DataSets data{cfg};
    for (const Scenario& s : scenarios) {
      if (!selected(s)) continue;
      progress("%s ...", s.name);
      const auto t0 = SteadyClock::now();
      try {
        if (s.prepare) s.prepare(data);
        reset_peak_rss();
        s.run(cfg, data);
      } catch (const std::exception& e) {
        std::fprintf(stderr, "evs_bench: %s failed: %s\n", s.name, e.what());
        status = 1;
      }
      progress("%s done in %.1f s", s.name, seconds_since(t0));
    }
  }
  if (keep) progress("kept %s", cfg.dir.c_str());
  else fs::remove_all(cfg.dir, ec);
  return status;
}