// pg_live_latency: append in this process, a projection in another process (a child of evs_bench) sees it;
// against the raw round trip of an insert that NOTIFYs and a LISTENing client that selects the new rows.
#include "children.hpp"
#include "pg_common.hpp"
#include "raw_pg.hpp"
#include "report.hpp"
#include "scenarios.hpp"

#include <evs/projections/engine.hpp>

#include <poll.h>

#include <cstdio>
#include <cstdlib>
#include <optional>
#include <span>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

namespace bench {

namespace {

constexpr auto live_deadline = std::chrono::seconds(60);

// The child's output: {"applied_ns":[t0,t1,...]}, the steady-clock time each event (by seq) was applied.
void print_applied(const std::vector<SteadyClock::time_point>& applied) {
  std::string out = "{\"applied_ns\":[";
  for (std::size_t i = 0; i < applied.size(); ++i) out += (i ? "," : "") + std::to_string(steady_ns(applied[i]));
  std::printf("%s]}\n", out.c_str());
}

std::vector<SteadyClock::time_point> parse_applied(const std::string& out, std::size_t n) {
  const auto at = out.find("\"applied_ns\":[");
  if (at == std::string::npos) throw std::runtime_error("live child printed no applied_ns: " + out);
  const char* p = out.c_str() + at + 14;
  std::vector<SteadyClock::time_point> applied;
  while (applied.size() < n) {
    char* end = nullptr;
    const long long ns = std::strtoll(p, &end, 10);
    if (end == p) throw std::runtime_error("live child: short applied_ns");
    applied.push_back(steady_at(ns));
    p = end + 1;
  }
  return applied;
}

void ready() {
  std::printf("ready\n");
  std::fflush(stdout);
}

// The evs side of the child: a projection engine with a Probe on its own store object.
void follow_evs(const std::string& url, const std::string& schema, std::size_t n) {
  evs::PgEventStore store(pg_options(url, schema));
  bench::Probe probe(n);
  evs::ProjectionEngine engine(store);
  engine.add(probe);
  engine.start();
  engine.wait_for(bench::Probe::name, store.last_position().value(), std::chrono::seconds(10)).value();
  ready();
  const auto deadline = SteadyClock::now() + live_deadline;
  while (probe.count.load(std::memory_order_acquire) < n) {
    if (SteadyClock::now() > deadline) throw std::runtime_error("live child: the projection did not see every event");
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  engine.stop();
  print_applied(probe.applied);
}

// The raw side of the child: LISTEN evs_bench; on each notification, select the rows after the last one seen,
// decode them and mark them applied.
void follow_raw(const std::string& url, const std::string& schema, std::size_t n) {
  rawpg::Conn db(url);
  db.exec("SET search_path = " + rawpg::ident(schema));
  db.exec("LISTEN evs_bench");
  db.prepare("new_rows", "SELECT position, payload FROM events WHERE position > $1 ORDER BY position");
  rawpg::Params params(1);
  std::vector<SteadyClock::time_point> applied(n);
  std::size_t seen = 0;
  std::int64_t after = 0;
  raw::MovementView m;
  ready();
  const auto deadline = SteadyClock::now() + live_deadline;
  while (seen < n) {
    if (SteadyClock::now() > deadline) throw std::runtime_error("live child: raw reader did not see every event");
    pollfd fd{PQsocket(db.handle()), POLLIN, 0};
    if (poll(&fd, 1, 100) < 0) throw std::runtime_error("live child: poll failed");
    if (!PQconsumeInput(db.handle())) throw std::runtime_error(std::string("live child: ") + PQerrorMessage(db.handle()));
    bool woken = false;
    while (PGnotify* note = PQnotifies(db.handle())) {
      PQfreemem(note);
      woken = true;
    }
    if (!woken) continue;
    params.clear();
    params.int64(after);
    const rawpg::Result r = db.run("new_rows", params);
    for (int i = 0; i < r.rows(); ++i) {
      if (!raw::decode_movement(r.bytes(i, 1), m)) throw std::runtime_error("live child: bad payload");
      if (m.seq >= 0 && std::size_t(m.seq) < n) applied[std::size_t(m.seq)] = SteadyClock::now();
      after = r.i64(i, 0);
      ++seen;
    }
  }
  print_applied(applied);
}

// Offers `n` single-event appends at `rate` per second (open loop) while a child follows; latency per event:
// from the append call here to the child having applied it.
Sample live(const Config& cfg, const std::string& mode, PgSchema& schema, std::size_t n, double rate) {
  schema.create_empty_store();
  std::optional<evs::PgEventStore> store;
  std::optional<rawpg::Appender> app;
  if (mode == "evs") store.emplace(schema.options());
  else app.emplace(cfg.pg_url, schema.name());
  Child child(shell_quote(cfg.self) + " --child-pg-live " + mode + " " + shell_quote(cfg.pg_url) + " " +
              shell_quote(schema.name()) + " " + std::to_string(n));
  if (const std::string line = child.line(); line != "ready")
    throw std::runtime_error("live child: expected ready, got " + line);
  std::vector<SteadyClock::time_point> sent(n);
  const std::string stream = bench::account_name(0);
  const auto period = std::chrono::duration_cast<SteadyClock::duration>(std::chrono::duration<double>(1.0 / rate));
  const auto t0 = SteadyClock::now();
  for (std::size_t i = 0; i < n; ++i) {
    std::this_thread::sleep_until(t0 + period * i);
    sent[i] = SteadyClock::now();
    if (store) {
      evs::EventData e = bench::event_data(stream, std::int64_t(i), evs::Encoding::binary);
      store->append(stream, evs::ExpectedVersion::any(), std::span(&e, 1)).value();
    } else {
      app->append(stream, std::int64_t(i), 1, true);
    }
  }
  const auto applied = parse_applied(child.finish(), n);
  Sample out{n, seconds_since(t0)};
  std::vector<double> lat;
  for (std::size_t i = 0; i < n; ++i)
    lat.push_back(std::chrono::duration<double, std::milli>(applied[i] - sent[i]).count());
  with_latencies(out, std::move(lat));
  return out;
}

}  // namespace

int child_pg_live(const std::string& mode, const std::string& url, const std::string& schema, std::size_t n) {
  if (mode == "evs") follow_evs(url, schema, n);
  else if (mode == "raw") follow_raw(url, schema, n);
  else throw std::invalid_argument("--child-pg-live: mode is evs or raw");
  return 0;
}

void scenario_pg_live_latency(const Config& cfg, DataSets&) {
  const double rate = 500;
  const std::size_t n = cfg.quick ? 50 : 1'000;  // 2 s at 500/s
  PgSchema evs_schema(cfg, "live_latency"), raw_schema(cfg, "live_latency_raw");
  std::vector<Sample> evs_s, raw_s;
  for (int r = 0; r < cfg.reps; ++r) {
    evs_s.push_back(live(cfg, "evs", evs_schema, n, rate));
    raw_s.push_back(live(cfg, "raw", raw_schema, n, rate));
  }
  const Summary e = summarize(evs_s), b = summarize(raw_s);
  emit(cfg, "pg_live_latency",
       Json().num("offered_events_per_s", rate).num("events_per_append", 1).str("synchronous_commit", "on")
           .str("follower", "a MemoryProjection in another process (its own PgEventStore object)")
           .str("baseline", "raw libpq: the insert NOTIFYs in its transaction; a LISTENing client in another "
                            "process selects the rows after the last one seen and decodes them"),
       e, b, true, e.p99_ms / b.p99_ms,
       "informational: p99 reported (ratio: evs p99 / raw NOTIFY round trip p99)", std::nullopt);
}

}  // namespace bench
