// The append scenarios: append_1, append_concurrent, append_batch; and the shared append workloads
// (workloads.hpp).
#include "data.hpp"
#include "domain.hpp"
#include "raw.hpp"
#include "report.hpp"
#include "scenarios.hpp"
#include "workloads.hpp"

#include <evs/eventstore/sqlite_event_store.hpp>

#include <atomic>
#include <condition_variable>
#include <functional>
#include <mutex>
#include <span>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

namespace bench {

// ---- append_1 ---------------------------------------------------------------------------------------------

namespace {

// One appender, one event per append, synchronous=FULL, round-robin over 10 streams with exact versions.
Sample evs_append_one(const fs::path& p, std::size_t appends) {
  evs::SqliteEventStore store(store_options(p, evs::Durability::full));
  std::vector<std::string> names;
  for (int s = 0; s < 10; ++s) names.push_back(bench::account_name(std::size_t(s)));
  std::vector<double> lat;
  lat.reserve(appends);
  const auto t0 = SteadyClock::now();
  for (std::size_t i = 0; i < appends; ++i) {
    const auto a0 = SteadyClock::now();
    const std::string& stream = names[i % names.size()];
    const std::uint64_t version = i / names.size();
    evs::EventData e = bench::event_data(stream, std::int64_t(version), evs::Encoding::binary);
    store.append(stream, evs::ExpectedVersion::exact(version), std::span(&e, 1)).value();
    lat.push_back(std::chrono::duration<double, std::milli>(SteadyClock::now() - a0).count());
  }
  Sample s{appends, seconds_since(t0)};
  with_latencies(s, std::move(lat));
  return s;
}

Sample raw_append_one(const fs::path& p, std::size_t appends) {
  raw::Appender app(p, true);
  std::vector<std::string> names;
  for (int s = 0; s < 10; ++s) names.push_back(bench::account_name(std::size_t(s)));
  std::vector<double> lat;
  lat.reserve(appends);
  const auto t0 = SteadyClock::now();
  for (std::size_t i = 0; i < appends; ++i) {
    const auto a0 = SteadyClock::now();
    app.append(names[i % names.size()], std::int64_t(i / names.size()), 1, false);
    lat.push_back(std::chrono::duration<double, std::milli>(SteadyClock::now() - a0).count());
  }
  Sample s{appends, seconds_since(t0)};
  with_latencies(s, std::move(lat));
  return s;
}

}  // namespace

void scenario_append_1(const Config& cfg, DataSets&) {
  const std::size_t appends = cfg.scale(300, 5);
  const fs::path p = cfg.dir / "append1.db";
  std::vector<Sample> evs_s, raw_s;
  for (int r = 0; r < cfg.reps; ++r) {
    remove_db(p);
    evs_s.push_back(evs_append_one(p, appends));
    create_empty_store(p, evs::Durability::full);
    raw_s.push_back(raw_append_one(p, appends));
    remove_db(p);
  }
  const Summary e = summarize(evs_s), b = summarize(raw_s);
  const double ratio = e.rate / b.rate;
  emit(cfg, "append_1",
       Json().num("events_per_append", 1).num("appenders", 1).str("durability", "full").num("payload_bytes",
                                                                                            std::int64_t(149)),
       e, b, true, ratio, ">= 0.7x raw one-row-per-transaction inserts (FULL)", ratio >= 0.7);
}

// ---- append_concurrent ------------------------------------------------------------------------------------

void scenario_append_concurrent(const Config& cfg, DataSets&) {
  const std::size_t threads = 64;
  const std::size_t per_thread = cfg.quick ? 1 : 25;
  const std::size_t raw_appends = cfg.scale(300, 5);
  const fs::path p = cfg.dir / "concurrent.db";
  for (const bool threaded : {false, true}) {
    std::vector<Sample> evs_s, raw_s;
    for (int r = 0; r < cfg.reps; ++r) {
      remove_db(p);
      if (threaded) {
        evs::SqliteEventStore store(store_options(p, evs::Durability::full));
        evs_s.push_back(append_threads(store, threads, per_thread));
      } else {
        evs::SqliteEventStore store(store_options(p, evs::Durability::full));
        evs_s.push_back(append_chained(store, threads, per_thread));
      }
      create_empty_store(p, evs::Durability::full);
      raw_s.push_back(raw_append_one(p, raw_appends));
      remove_db(p);
    }
    const Summary e = summarize(evs_s), b = summarize(raw_s);
    const double ratio = e.rate / b.rate;
    emit(cfg, "append_concurrent",
         Json().num("events_per_append", 1).num("appenders", int(threads))
             .str("appender", threaded ? "thread calling append()" : "coroutine style: append_async() chained from its callback")
             .num("appends_per_appender", std::uint64_t(per_thread)).str("durability", "full")
             .str("baseline", "raw one-row-per-transaction, one appender, FULL"),
         e, b, true, ratio, ">= 10x raw one-row-per-transaction FULL rate (group commit)", ratio >= 10);
  }
}

// ---- append_batch -----------------------------------------------------------------------------------------

namespace {

Sample raw_append_batch(const fs::path& p, std::size_t appends, std::size_t per_append, bool json) {
  raw::Appender app(p, false);
  constexpr std::size_t streams = 100;
  std::vector<std::string> names;
  for (std::size_t s = 0; s < streams; ++s) names.push_back(bench::account_name(s));
  std::vector<double> lat;
  const auto t0 = SteadyClock::now();
  for (std::size_t i = 0; i < appends; ++i) {
    const auto a0 = SteadyClock::now();
    app.append(names[i % streams], std::int64_t((i / streams) * per_append), per_append, json);
    lat.push_back(std::chrono::duration<double, std::milli>(SteadyClock::now() - a0).count());
  }
  Sample s{appends * per_append, seconds_since(t0)};
  with_latencies(s, std::move(lat));
  return s;
}

}  // namespace

void scenario_append_batch(const Config& cfg, DataSets&) {
  const std::size_t per_append = 100;
  const std::size_t appends = cfg.scale(1'000, 10);
  const fs::path p = cfg.dir / "batch.db";
  for (const evs::Encoding enc : {evs::Encoding::binary, evs::Encoding::json}) {
    const bool json = enc == evs::Encoding::json;
    std::vector<Sample> evs_s, raw_s;
    for (int r = 0; r < cfg.reps; ++r) {
      remove_db(p);
      {
        evs::SqliteEventStore store(store_options(p, evs::Durability::normal));
        evs_s.push_back(append_batches(store, appends, per_append, enc));
      }
      create_empty_store(p, evs::Durability::normal);
      raw_s.push_back(raw_append_batch(p, appends, per_append, json));
      remove_db(p);
    }
    const Summary e = summarize(evs_s), b = summarize(raw_s);
    const double ratio = e.rate / b.rate;
    emit(cfg, "append_batch",
         Json().num("events_per_append", int(per_append)).str("durability", "normal").str("encoding",
                                                                                         json ? "json" : "binary"),
         e, b, true, ratio,
         json ? "informational (JSON encoding; the target applies to binary)" : ">= 0.6x raw batched inserts (NORMAL)",
         json ? std::nullopt : std::optional<bool>(ratio >= 0.6));
  }
}

// ---- the shared workloads (workloads.hpp) ------------------------------------------------------------------

Sample append_threads(evs::EventStore& store, std::size_t threads, std::size_t per_thread, std::size_t first_stream,
                      std::vector<double>* waits_ms) {
  std::vector<std::vector<double>> lat(threads);
  std::atomic<bool> go{false};
  std::atomic<std::size_t> ready{0};
  std::vector<std::thread> pool;
  std::atomic<int> failures{0};
  for (std::size_t t = 0; t < threads; ++t) {
    pool.emplace_back([&, t] {
      const std::string stream = bench::account_name(first_stream + t);
      lat[t].reserve(per_thread);
      ++ready;
      while (!go.load()) std::this_thread::yield();
      for (std::size_t i = 0; i < per_thread; ++i) {
        const auto a0 = SteadyClock::now();
        evs::EventData e = bench::event_data(stream, std::int64_t(i), evs::Encoding::binary);
        if (!store.append(stream, evs::ExpectedVersion::exact(i), std::span(&e, 1))) ++failures;
        lat[t].push_back(std::chrono::duration<double, std::milli>(SteadyClock::now() - a0).count());
      }
    });
  }
  while (ready.load() < threads) std::this_thread::yield();
  const auto t0 = SteadyClock::now();
  go = true;
  for (auto& th : pool) th.join();
  Sample s{threads * per_thread, seconds_since(t0)};
  if (failures) throw std::runtime_error("concurrent appends failed");
  std::vector<double> all;
  for (auto& v : lat) all.insert(all.end(), v.begin(), v.end());
  if (waits_ms) *waits_ms = all;
  with_latencies(s, std::move(all));
  return s;
}

Sample append_chained(evs::EventStore& store, std::size_t appenders, std::size_t per_appender,
                      std::size_t first_stream, std::vector<double>* waits_ms) {
  struct Appender {
    std::string stream;
    std::size_t next = 0;
    SteadyClock::time_point started;
  };
  std::vector<Appender> state(appenders);
  for (std::size_t t = 0; t < appenders; ++t) state[t].stream = bench::account_name(first_stream + t);
  std::mutex m;
  std::condition_variable cv;
  std::size_t running = appenders;
  int failures = 0;
  std::vector<double> lat;
  std::function<void(std::size_t)> issue = [&](std::size_t t) {
    Appender& a = state[t];
    evs::EventData e = bench::event_data(a.stream, std::int64_t(a.next), evs::Encoding::binary);
    a.started = SteadyClock::now();
    store.append_async(a.stream, evs::ExpectedVersion::exact(a.next), std::span(&e, 1),
                       [&, t](evs::Result<evs::AppendResult> r) {
                         Appender& b = state[t];
                         {
                           std::lock_guard lock(m);
                           lat.push_back(std::chrono::duration<double, std::milli>(SteadyClock::now() - b.started).count());
                           if (!r) ++failures;
                         }
                         if (++b.next < per_appender) {
                           issue(t);
                         } else {
                           std::lock_guard lock(m);
                           if (--running == 0) cv.notify_all();
                         }
                       });
  };
  const auto t0 = SteadyClock::now();
  for (std::size_t t = 0; t < appenders; ++t) issue(t);
  {
    std::unique_lock lock(m);
    cv.wait(lock, [&] { return running == 0; });
  }
  Sample s{appenders * per_appender, seconds_since(t0)};
  if (failures) throw std::runtime_error("chained appends failed");
  if (waits_ms) *waits_ms = lat;
  with_latencies(s, std::move(lat));
  return s;
}

Sample append_batches(evs::EventStore& store, std::size_t appends, std::size_t per_append, evs::Encoding enc) {
  constexpr std::size_t streams = 100;
  std::vector<std::string> names;
  for (std::size_t s = 0; s < streams; ++s) names.push_back(bench::account_name(s));
  std::vector<double> lat;
  const auto t0 = SteadyClock::now();
  for (std::size_t i = 0; i < appends; ++i) {
    const auto a0 = SteadyClock::now();
    const std::string& stream = names[i % streams];
    const std::uint64_t version = (i / streams) * per_append;
    std::vector<evs::EventData> batch;
    batch.reserve(per_append);
    for (std::size_t k = 0; k < per_append; ++k)
      batch.push_back(bench::event_data(stream, std::int64_t(version + k), enc));
    store.append(stream, evs::ExpectedVersion::exact(version), batch).value();
    lat.push_back(std::chrono::duration<double, std::milli>(SteadyClock::now() - a0).count());
  }
  Sample s{appends * per_append, seconds_since(t0)};
  with_latencies(s, std::move(lat));
  return s;
}

}  // namespace bench
