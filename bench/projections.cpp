// The projection scenarios: rebuild_sql, live_latency, rebuild_memory (its measurement runs in a child
// process).
#include "children.hpp"
#include "data.hpp"
#include "domain.hpp"
#include "raw.hpp"
#include "report.hpp"
#include "scenarios.hpp"

#include <evs/eventstore/sqlite_event_store.hpp>
#include <evs/projections/engine.hpp>

#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <mutex>
#include <span>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

namespace bench {

// ---- rebuild_sql ------------------------------------------------------------------------------------------

namespace {

Sample evs_rebuild(evs::SqliteEventStore& store, const fs::path& rm, std::uint64_t head) {
  remove_db(rm);
  bench::BalanceTable table;
  evs::ProjectionEngine engine(store);
  evs::ProjectionOptions o;
  o.database = rm;
  engine.add(table, o);
  const auto t0 = SteadyClock::now();
  engine.start();
  engine.wait_for(bench::BalanceTable::name, head, std::chrono::minutes(30)).value();
  const double s = seconds_since(t0);
  engine.stop();
  return {head, s};
}

// Scan + batched upserts: the same upsert per event, 500 events per transaction, each transaction also
// storing a checkpoint row; read model file in WAL mode with synchronous=NORMAL (as evs's projection db).
Sample raw_rebuild(const fs::path& log, const fs::path& rm) {
  remove_db(rm);
  raw::Db src(log, true);
  const auto kinds = raw::type_kinds(src);
  raw::Db dst(rm);
  dst.exec("PRAGMA journal_mode = WAL");
  dst.exec("PRAGMA synchronous = NORMAL");
  dst.exec(bench::balances_ddl);
  dst.exec(
      "CREATE TABLE IF NOT EXISTS checkpoints(projection TEXT PRIMARY KEY, position INTEGER NOT NULL, "
      "updated_at INTEGER NOT NULL) WITHOUT ROWID");
  auto scan = src.prepare("SELECT position, type, payload FROM events ORDER BY position");
  auto upsert = dst.prepare(bench::balances_upsert);
  auto checkpoint = dst.prepare(
      "INSERT INTO checkpoints(projection, position, updated_at) VALUES('balance_table', ?1, ?2) "
      "ON CONFLICT(projection) DO UPDATE SET position = excluded.position, updated_at = excluded.updated_at");
  auto begin = dst.prepare("BEGIN IMMEDIATE");
  auto commit = dst.prepare("COMMIT");
  constexpr std::size_t batch = 500;
  std::uint64_t n = 0;
  std::int64_t position = 0;
  raw::MovementView m;
  const auto t0 = SteadyClock::now();
  src.exec("BEGIN");
  begin.run();
  while (scan.step()) {
    position = scan.i64(0);
    const bool deposit = kinds.at(scan.i64(1));
    if (!raw::decode_movement(scan.blob(2), m)) throw std::runtime_error("raw rebuild: bad payload");
    upsert.bind_text(1, m.account);
    upsert.bind(2, deposit ? m.cents : -m.cents);
    upsert.run();
    if (++n % batch == 0) {
      checkpoint.bind(1, position);
      checkpoint.bind(2, raw::now_us());
      checkpoint.run();
      commit.run();
      begin.run();
    }
  }
  checkpoint.bind(1, position);
  checkpoint.bind(2, raw::now_us());
  checkpoint.run();
  commit.run();
  scan.reset();
  src.exec("COMMIT");
  return {n, seconds_since(t0)};
}

}  // namespace

void scenario_rebuild_sql(const Config& cfg, DataSets& data) {
  const fs::path p = data.log(evs::Encoding::binary);
  const fs::path rm = cfg.dir / "readmodel.db";
  evs::SqliteEventStore store(store_options(p, evs::Durability::normal));
  const std::uint64_t head = store.last_position().value();
  std::vector<Sample> evs_s, raw_s;
  for (int r = 0; r < cfg.reps; ++r) {
    evs_s.push_back(evs_rebuild(store, rm, head));
    raw_s.push_back(raw_rebuild(p, rm));
  }
  remove_db(rm);
  const Summary e = summarize(evs_s), b = summarize(raw_s);
  const double ratio = e.rate / b.rate;
  emit(cfg, "rebuild_sql",
       Json().num("log_events", head).num("batch", 500).str("read_model_durability", "normal")
           .str("baseline", "raw scan + batched upserts (500 per transaction, with a checkpoint row)"),
       e, b, false, ratio, ">= 0.5x raw scan + batched upserts", ratio >= 0.5);
}

// ---- live_latency -----------------------------------------------------------------------------------------

namespace {

// Offers `n` single-event appends at `rate` per second (open loop) and measures append start -> applied.
Sample evs_live(const fs::path& p, std::size_t n, double rate) {
  remove_db(p);
  evs::SqliteEventStore store(store_options(p, evs::Durability::normal));
  bench::Probe probe(n);
  evs::ProjectionEngine engine(store);
  engine.add(probe);
  engine.start();
  std::this_thread::sleep_for(std::chrono::milliseconds(50));  // let it reach the (empty) head
  std::vector<SteadyClock::time_point> sent(n);
  const std::string stream = bench::account_name(0);
  const auto period = std::chrono::duration_cast<SteadyClock::duration>(std::chrono::duration<double>(1.0 / rate));
  const auto t0 = SteadyClock::now();
  std::uint64_t last = 0;
  for (std::size_t i = 0; i < n; ++i) {
    std::this_thread::sleep_until(t0 + period * i);
    evs::EventData e = bench::event_data(stream, std::int64_t(i), evs::Encoding::binary);
    sent[i] = SteadyClock::now();
    last = store.append(stream, evs::ExpectedVersion::any(), std::span(&e, 1)).value().last_position;
  }
  engine.wait_for(bench::Probe::name, last, std::chrono::seconds(30)).value();
  const double s = seconds_since(t0);
  engine.stop();
  std::vector<double> lat;
  for (std::size_t i = 0; i < n; ++i)
    lat.push_back(std::chrono::duration<double, std::milli>(probe.applied[i] - sent[i]).count());
  Sample out{n, s};
  with_latencies(out, std::move(lat));
  return out;
}

// The same by hand: the appender commits a row and signals a condition variable; a reader thread with its
// own connection wakes, selects the new rows, decodes them and marks them applied.
Sample raw_live(const fs::path& p, std::size_t n, double rate) {
  create_empty_store(p, evs::Durability::normal);
  std::vector<SteadyClock::time_point> sent(n), applied(n);
  std::mutex m;
  std::condition_variable cv;
  std::int64_t committed = 0;
  bool done = false;
  raw::Appender app(p, false);  // first, as a writer would be: the reader then shares its -shm
  std::thread reader([&] {
    raw::Db db(p, true);
    auto st = db.prepare("SELECT payload FROM events WHERE position > ?1 ORDER BY position");
    std::int64_t seen = 0;
    raw::MovementView mv;
    for (;;) {
      std::int64_t upto;
      {
        std::unique_lock lock(m);
        cv.wait(lock, [&] { return committed > seen || done; });
        if (committed <= seen) return;
        upto = committed;
      }
      st.bind(1, seen);
      while (st.step()) {
        if (!raw::decode_movement(st.blob(0), mv)) throw std::runtime_error("raw live: bad payload");
        if (mv.seq >= 0 && std::size_t(mv.seq) < n) applied[std::size_t(mv.seq)] = SteadyClock::now();
        ++seen;
      }
      st.reset();
      (void)upto;
    }
  });
  const std::string stream = bench::account_name(0);
  const auto period = std::chrono::duration_cast<SteadyClock::duration>(std::chrono::duration<double>(1.0 / rate));
  const auto t0 = SteadyClock::now();
  for (std::size_t i = 0; i < n; ++i) {
    std::this_thread::sleep_until(t0 + period * i);
    sent[i] = SteadyClock::now();
    app.append(stream, std::int64_t(i), 1, false);
    {
      std::lock_guard lock(m);
      committed = app.position();
    }
    cv.notify_one();
  }
  {
    std::lock_guard lock(m);
    done = true;
  }
  cv.notify_one();
  reader.join();
  const double s = seconds_since(t0);
  std::vector<double> lat;
  for (std::size_t i = 0; i < n; ++i)
    lat.push_back(std::chrono::duration<double, std::milli>(applied[i] - sent[i]).count());
  Sample out{n, s};
  with_latencies(out, std::move(lat));
  return out;
}

}  // namespace

void scenario_live_latency(const Config& cfg, DataSets&) {
  const double rate = 5000;
  const std::size_t n = cfg.quick ? 250 : 10'000;  // 2 s at 5k/s
  const fs::path p = cfg.dir / "live.db";
  std::vector<Sample> evs_s, raw_s;
  for (int r = 0; r < cfg.reps; ++r) {
    evs_s.push_back(evs_live(p, n, rate));
    remove_db(p);
    raw_s.push_back(raw_live(p, n, rate));
    remove_db(p);
  }
  const Summary e = summarize(evs_s), b = summarize(raw_s);
  emit(cfg, "live_latency",
       Json().num("offered_events_per_s", rate).str("durability", "normal").num("events_per_append", 1),
       e, b, true, e.p99_ms / b.p99_ms, "p99 <= 2 ms (ratio: evs p99 / raw p99)", e.p99_ms <= 2.0);
}

// ---- rebuild_memory ---------------------------------------------------------------------------------------

// Runs in a child process (a fresh address space): prints {"idle_kib","peak_kib","seconds","events"}.
int child_rebuild_memory(const std::string& mode, const fs::path& log, const fs::path& rm) {
  remove_db(rm);
  std::int64_t idle = 0;
  Sample s;
  if (mode == "evs") {
    evs::SqliteEventStore store(store_options(log, evs::Durability::normal));
    const std::uint64_t head = store.last_position().value();
    bench::BalanceTable table;
    evs::ProjectionEngine engine(store);
    evs::ProjectionOptions o;
    o.database = rm;
    engine.add(table, o);
    idle = status_kib("VmRSS");
    reset_peak_rss();
    const auto t0 = SteadyClock::now();
    engine.start();
    engine.wait_for(bench::BalanceTable::name, head, std::chrono::minutes(30)).value();
    s = {head, seconds_since(t0)};
    engine.stop();
  } else {
    idle = status_kib("VmRSS");
    reset_peak_rss();
    s = raw_rebuild(log, rm);
  }
  const std::int64_t peak = status_kib("VmHWM");
  remove_db(rm);
  std::printf("%s\n", Json().num("idle_kib", idle).num("peak_kib", peak).num("seconds", s.seconds)
                          .num("events", s.events).text().c_str());
  return 0;
}

namespace {

struct ChildResult {
  double idle_mib = NAN, peak_mib = NAN, seconds = NAN;
  std::uint64_t events = 0;
};

ChildResult run_child(const Config& cfg, const std::string& mode, const fs::path& log, const fs::path& rm) {
  const std::string out = Child(shell_quote(cfg.self) + " --child-rebuild-memory " + mode + " " +
                                shell_quote(log.string()) + " " + shell_quote(rm.string()))
                              .finish();
  ChildResult r;
  r.idle_mib = json_field(out, "idle_kib") / 1024.0;
  r.peak_mib = json_field(out, "peak_kib") / 1024.0;
  r.seconds = json_field(out, "seconds");
  r.events = std::uint64_t(json_field(out, "events"));
  return r;
}

}  // namespace

void scenario_rebuild_memory(const Config& cfg, DataSets& data) {
  const fs::path p = data.log(evs::Encoding::binary);
  const fs::path rm = cfg.dir / "readmodel-child.db";
  std::vector<double> evs_growth, raw_growth, evs_idle, evs_peak, raw_idle, raw_peak;
  std::vector<Sample> evs_s, raw_s;
  const int reps = cfg.reps;
  for (int r = 0; r < reps; ++r) {
    const ChildResult e = run_child(cfg, "evs", p, rm);
    const ChildResult b = run_child(cfg, "raw", p, rm);
    evs_growth.push_back(e.peak_mib - e.idle_mib);
    raw_growth.push_back(b.peak_mib - b.idle_mib);
    evs_idle.push_back(e.idle_mib);
    evs_peak.push_back(e.peak_mib);
    raw_idle.push_back(b.idle_mib);
    raw_peak.push_back(b.peak_mib);
    evs_s.push_back({e.events, e.seconds});
    raw_s.push_back({b.events, b.seconds});
  }
  const Summary e = summarize(evs_s), b = summarize(raw_s);
  const double growth = median(evs_growth), base_growth = median(raw_growth);
  Json params;
  params.num("log_events", e.events).str("rebuild", "rebuild_sql's read model, in a child process");
  Json detail;
  detail.num("idle_rss_mib", median(evs_idle)).num("child_peak_rss_mib", median(evs_peak))
      .num("rss_growth_mib", growth).num("baseline_idle_rss_mib", median(raw_idle))
      .num("baseline_peak_rss_mib", median(raw_peak)).num("baseline_rss_growth_mib", base_growth);
  emit(cfg, "rebuild_memory", params, e, b, false, growth / base_growth,
       "<= 64 MiB peak RSS above idle (ratio: evs growth / raw growth)", growth <= 64.0, detail);
}

}  // namespace bench
