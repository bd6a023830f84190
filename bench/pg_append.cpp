// The PostgreSQL append scenarios: pg_append_concurrent (1 to 64 appender threads in one process) and
// pg_append_batch, each against hand-written libpq inserts (raw_pg.hpp) measured in the same run.
#include "pg_common.hpp"
#include "raw_pg.hpp"
#include "report.hpp"
#include "scenarios.hpp"
#include "workloads.hpp"

#include <optional>
#include <string>
#include <vector>

namespace bench {

namespace {

// One client, `appends` single-event appends round-robin over 10 streams, each its own transaction
// (autocommit, one statement).
Sample raw_pg_append_one(const std::string& url, const std::string& schema, std::size_t appends) {
  rawpg::Appender app(url, schema);
  std::vector<std::string> names;
  for (std::size_t s = 0; s < 10; ++s) names.push_back(bench::account_name(s));
  std::vector<double> lat;
  lat.reserve(appends);
  const auto t0 = SteadyClock::now();
  for (std::size_t i = 0; i < appends; ++i) {
    const auto a0 = SteadyClock::now();
    app.append(names[i % names.size()], std::int64_t(i / names.size()), 1);
    lat.push_back(std::chrono::duration<double, std::milli>(SteadyClock::now() - a0).count());
  }
  Sample s{appends, seconds_since(t0)};
  with_latencies(s, std::move(lat));
  return s;
}

// One client, `appends` appends of `per_append` events round-robin over 100 streams (as append_batches),
// each one multi-row statement in its own transaction.
Sample raw_pg_append_batch(const std::string& url, const std::string& schema, std::size_t appends,
                           std::size_t per_append) {
  rawpg::Appender app(url, schema);
  constexpr std::size_t streams = 100;
  std::vector<std::string> names;
  for (std::size_t s = 0; s < streams; ++s) names.push_back(bench::account_name(s));
  std::vector<double> lat;
  const auto t0 = SteadyClock::now();
  for (std::size_t i = 0; i < appends; ++i) {
    const auto a0 = SteadyClock::now();
    app.append(names[i % streams], std::int64_t((i / streams) * per_append), per_append);
    lat.push_back(std::chrono::duration<double, std::milli>(SteadyClock::now() - a0).count());
  }
  Sample s{appends * per_append, seconds_since(t0)};
  with_latencies(s, std::move(lat));
  return s;
}

// One client, `groups` transactions each appending one event to every one of `streams` streams (one
// statement, none of evs's checks): the ceiling of group commit on this server for groups of that size.
Sample raw_pg_append_groups(const std::string& url, const std::string& schema, std::size_t streams,
                            std::size_t groups) {
  rawpg::Appender app(url, schema);
  std::vector<std::string> names;
  for (std::size_t s = 0; s < streams; ++s) names.push_back(bench::account_name(s));
  app.append_group(names, 0);  // prepared and the types interned before the clock starts, as evs warms up
  const auto t0 = SteadyClock::now();
  for (std::size_t g = 1; g <= groups; ++g) app.append_group(names, std::int64_t(g));
  return Sample{groups * streams, seconds_since(t0)};
}

}  // namespace

void scenario_pg_append_concurrent(const Config& cfg, DataSets&) {
  PgSchema evs_schema(cfg, "append_concurrent"), raw_schema(cfg, "append_concurrent_raw");
  const std::size_t raw_appends = cfg.scale(500, 5);
  struct Line {
    std::size_t appenders;
    bool threaded;
  };
  // Threads calling append(), then the 64 appenders again in coroutine style (as append_concurrent on SQLite).
  for (const Line line : {Line{1, true}, Line{4, true}, Line{16, true}, Line{64, true}, Line{64, false}}) {
    // About 500 appends with one appender, 3,200 with 64.
    const std::size_t per_appender = cfg.scale(std::max<std::size_t>(50, 500 / line.appenders), 1);
    const bool targeted = line.appenders == 64;
    std::vector<Sample> evs_s, raw_s, ceiling_s;
    for (int r = 0; r < cfg.reps; ++r) {
      evs_schema.reset();
      {
        evs::PgEventStore store(evs_schema.options());
        warm_up_appends(store, "warm-up");
        evs_s.push_back(line.threaded ? append_threads(store, line.appenders, per_appender)
                                      : append_chained(store, line.appenders, per_appender));
      }
      raw_schema.create_empty_store();
      raw_s.push_back(raw_pg_append_one(cfg.pg_url, raw_schema.name(), raw_appends));
      if (targeted) {
        raw_schema.create_empty_store();
        ceiling_s.push_back(raw_pg_append_groups(cfg.pg_url, raw_schema.name(), line.appenders, per_appender));
      }
    }
    const Summary e = summarize(evs_s), b = summarize(raw_s);
    const double ratio = e.rate / b.rate;
    Json detail;
    if (targeted) {
      const Summary c = summarize(ceiling_s);
      detail.obj("ceiling", Json()
                                .str("what", "raw libpq, one client, one event to each of 64 streams per transaction "
                                             "(one multi-row statement, none of evs's checks)")
                                .num("events_per_s", c.rate)
                                .num("ratio_to_baseline", c.rate / b.rate)
                                .num("evs_share", e.rate / c.rate));
    }
    emit(cfg, "pg_append_concurrent",
         Json().num("events_per_append", 1).num("appenders", std::uint64_t(line.appenders))
             .str("appender", line.threaded ? "thread calling append(), own stream"
                                            : "coroutine style: append_async() chained from its callback, own stream")
             .num("appends_per_appender", std::uint64_t(per_appender))
             .num("writers", std::uint64_t(evs::PgOptions{}.writers)).str("synchronous_commit", "on")
             .str("baseline", "raw libpq, one client, one row per transaction (autocommit, one statement)"),
         e, b, true, ratio,
         targeted ? ">= 10x raw one-row-per-transaction inserts from one client (group commit)"
                  : "informational (the target applies to 64 appenders)",
         targeted ? std::optional<bool>(ratio >= 10) : std::nullopt, detail);
  }
}

void scenario_pg_append_batch(const Config& cfg, DataSets&) {
  PgSchema evs_schema(cfg, "append_batch"), raw_schema(cfg, "append_batch_raw");
  const std::size_t events = cfg.scale(20'000, 2'000);
  for (const std::size_t per_append : {100, 1000}) {
    const std::size_t appends = events / per_append;
    std::vector<Sample> evs_s, raw_s;
    for (int r = 0; r < cfg.reps; ++r) {
      evs_schema.reset();
      {
        evs::PgEventStore store(evs_schema.options());
        evs_s.push_back(append_batches(store, appends, per_append, evs::Encoding::binary));
      }
      raw_schema.create_empty_store();
      raw_s.push_back(raw_pg_append_batch(cfg.pg_url, raw_schema.name(), appends, per_append));
    }
    const Summary e = summarize(evs_s), b = summarize(raw_s);
    const double ratio = e.rate / b.rate;
    emit(cfg, "pg_append_batch",
         Json().num("events_per_append", std::uint64_t(per_append)).num("appends", std::uint64_t(appends))
             .str("encoding", "binary").str("synchronous_commit", "on")
             .str("baseline", "raw libpq, one multi-row INSERT per transaction (autocommit, one statement)"),
         e, b, true, ratio, ">= 0.6x raw multi-row inserts", ratio >= 0.6);
  }
}

}  // namespace bench
