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
//
// Usage: evs_bench [--quick] [--scenario NAME]... [--reps N] [--dir DIR] [--list]
//   --quick     every scenario at 1/100 of its size, one repetition (the test suite runs this: it checks
//               that the benchmarks run, not their speed)
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
  void (*run)(const Config&, DataSets&);
  void (*prepare)(DataSets&);  // builds the data sets it reads (before its peak RSS is measured), or null
};

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
};

int usage(const char* why) {
  std::fprintf(stderr, "evs_bench: %s\nusage: evs_bench [--quick] [--scenario NAME]... [--reps N] [--dir DIR] [--list]\n",
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
  std::vector<std::string> chosen;
  bool keep = false;
  for (int i = 1; i < argc; ++i) {
    const std::string_view a = argv[i];
    const auto value = [&]() -> std::string {
      if (i + 1 >= argc) throw std::invalid_argument(std::string(a) + " needs a value");
      return argv[++i];
    };
    try {
      if (a == "--quick") cfg.quick = true;
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
      } else if (a == "--child-rebuild-memory" && i + 3 < argc) {
        return child_rebuild_memory(argv[i + 1], argv[i + 2], argv[i + 3]);
      } else if (a == "--child-append-multi" && i + 4 < argc) {
        return child_append_multi(argv[i + 1], argv[i + 2], std::stoul(argv[i + 3]), std::stoll(argv[i + 4]));
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
      if (!chosen.empty() && std::find(chosen.begin(), chosen.end(), s.name) == chosen.end()) continue;
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