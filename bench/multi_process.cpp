// append_multi_process: several processes appending to one file (each one a child of evs_bench).
#include "children.hpp"
#include "data.hpp"
#include "domain.hpp"
#include "raw.hpp"
#include "report.hpp"
#include "scenarios.hpp"

#include <evs/eventstore/sqlite_event_store.hpp>

#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <span>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

namespace bench {

// ---- append_multi_process ---------------------------------------------------------------------------------

namespace {

// Several processes append back to back to shared streams of one file (the evs import situation). Each
// child process measures the write wait of every append: from the call until it is acknowledged (evs), or
// from BEGIN IMMEDIATE until COMMIT returns (raw, whose only way to wait for another process is SQLite's
// busy handler, with the same 5 s busy timeout as evs's default).
constexpr int multi_streams = 8;

}  // namespace

// Runs in a child process: waits until `start_ns` on the (system-wide) steady clock, then appends.
int child_append_multi(const std::string& mode, const fs::path& p, std::size_t appends, std::int64_t start_ns) {
  std::vector<double> waits;
  waits.reserve(appends);
  std::size_t failures = 0;
  const auto start = steady_at(start_ns);
  if (mode == "evs") {
    evs::SqliteEventStore store(store_options(p, evs::Durability::normal));
    std::this_thread::sleep_until(start);
    for (std::size_t i = 0; i < appends; ++i) {
      const std::string stream = bench::account_name(i % multi_streams);
      evs::EventData e = bench::event_data(stream, std::int64_t(i), evs::Encoding::binary);
      const auto a0 = SteadyClock::now();
      if (!store.append(stream, evs::ExpectedVersion::any(), std::span(&e, 1))) ++failures;
      waits.push_back(std::chrono::duration<double, std::milli>(SteadyClock::now() - a0).count());
    }
  } else {
    raw::Db db(p);
    sqlite3_busy_timeout(db.handle(), 5000);
    db.exec("PRAGMA synchronous = NORMAL");
    auto begin = db.prepare("BEGIN IMMEDIATE");
    auto commit = db.prepare("COMMIT");
    auto head = db.prepare("SELECT coalesce(max(position), 0), coalesce(max(recorded_at), 0) FROM events");
    auto find_stream = db.prepare("SELECT id, version FROM streams WHERE name = ?1");
    auto insert_stream = db.prepare("INSERT INTO streams (name, category, version, updated_at) VALUES (?1, ?2, 1, ?3)");
    auto update_stream = db.prepare("UPDATE streams SET version = ?1, updated_at = ?2 WHERE id = ?3");
    auto type = db.prepare("SELECT id FROM event_types WHERE name = ?1");
    auto insert_event = db.prepare(
        "INSERT INTO events (position, stream, version, event_id, type, schema_version, encoding, recorded_at, "
        "correlation_id, causation_id, metadata, payload) VALUES (?1, ?2, ?3, ?4, ?5, 1, 0, ?6, NULL, NULL, NULL, ?7)");
    raw::IdGen ids;
    ids.state ^= std::uint64_t(getpid()) * 0x9e3779b97f4a7c15ULL;
    std::string payload;
    std::this_thread::sleep_until(start);
    for (std::size_t i = 0; i < appends; ++i) {
      const std::string stream = bench::account_name(i % multi_streams);
      const bench::Movement m = bench::movement(std::int64_t(i));
      raw::encode_movement(payload, stream, m.cents, m.seq);
      const auto a0 = SteadyClock::now();
      try {
        begin.run();
        head.step();
        const std::int64_t position = head.i64(0) + 1, at = std::max(raw::now_us(), head.i64(1));
        head.reset();
        type.bind_text(1, m.deposit ? bench::deposited_type : bench::withdrawn_type);
        if (!type.step()) throw std::runtime_error("event type missing");
        const std::int64_t type_id = type.i64(0);
        type.reset();
        find_stream.bind_text(1, stream);
        std::int64_t id = 0, version = 1;
        if (find_stream.step()) {
          id = find_stream.i64(0);
          version = find_stream.i64(1) + 1;
          find_stream.reset();
          update_stream.bind(1, version);
          update_stream.bind(2, at);
          update_stream.bind(3, id);
          update_stream.run();
        } else {
          find_stream.reset();
          insert_stream.bind_text(1, stream);
          insert_stream.bind_text(2, "acc");
          insert_stream.bind(3, at);
          insert_stream.run();
          id = sqlite3_last_insert_rowid(db.handle());
        }
        char event_id[16];
        ids.fill(event_id);
        insert_event.bind(1, position);
        insert_event.bind(2, id);
        insert_event.bind(3, version);
        insert_event.bind_blob(4, {event_id, 16});
        insert_event.bind(5, type_id);
        insert_event.bind(6, at);
        insert_event.bind_blob(7, payload);
        insert_event.run();
        commit.run();
      } catch (const std::exception&) {  // SQLITE_BUSY after the busy timeout
        ++failures;
        for (raw::Stmt* st : {&begin, &commit, &head, &find_stream, &insert_stream, &update_stream, &type, &insert_event})
          st->reset();
        if (sqlite3_get_autocommit(db.handle()) == 0) db.exec("ROLLBACK");
      }
      waits.push_back(std::chrono::duration<double, std::milli>(SteadyClock::now() - a0).count());
    }
  }
  print_waits(appends, failures, seconds_since(start), waits);
  return 0;
}

namespace {

// Starts `processes` children appending at once and collects what each measured.
std::vector<ProcessWaits> run_multi(const Config& cfg, const std::string& mode, const fs::path& p,
                                    std::size_t processes, std::size_t appends) {
  const auto start = SteadyClock::now() + std::chrono::milliseconds(300 + 50 * processes);
  const std::string cmd = shell_quote(cfg.self) + " --child-append-multi " + mode + " " + shell_quote(p.string()) +
                          " " + std::to_string(appends) + " " + std::to_string(steady_ns(start));
  std::vector<ProcessWaits> result;
  for (const std::string& out : run_children(std::vector<std::string>(processes, cmd)))
    result.push_back(parse_waits(out));
  return result;
}

}  // namespace

void scenario_append_multi_process(const Config& cfg, DataSets&) {
  const std::size_t processes = 4;
  const std::size_t appends = cfg.scale(2'000, 20);
  const fs::path p = cfg.dir / "multi.db";
  std::vector<Sample> evs_s, raw_s;
  ProcessRuns evs_runs, raw_runs;
  for (int r = 0; r < cfg.reps; ++r) {
    create_empty_store(p, evs::Durability::normal);
    evs_runs.last = run_multi(cfg, "evs", p, processes, appends);
    evs_s.push_back(waits_sample(evs_runs.last, processes * appends, evs_runs.longest_ms, evs_runs.failures));
    create_empty_store(p, evs::Durability::normal);
    {
      raw::Db db(p);  // the type rows evs would create on its first append
      db.exec("INSERT OR IGNORE INTO event_types (name) VALUES ('bench.deposited'), ('bench.withdrawn')");
    }
    raw_runs.last = run_multi(cfg, "raw", p, processes, appends);
    raw_s.push_back(waits_sample(raw_runs.last, processes * appends, raw_runs.longest_ms, raw_runs.failures));
    remove_db(p);
    std::error_code ec;
    fs::remove(p.string() + "-lock", ec);
  }
  const Summary e = summarize(evs_s), b = summarize(raw_s);
  // p50_ms: the median process's median wait; p99_ms: the worst process's p99 (the starved one).
  emit(cfg, "append_multi_process",
       Json().num("processes", int(processes)).num("appends_per_process", std::uint64_t(appends))
           .num("events_per_append", 1).num("streams", multi_streams).str("durability", "normal")
           .str("wait", "per append, call to acknowledgement; p99_ms is the worst process's p99"),
       e, b, true, e.p99_ms / b.p99_ms,
       "no failed append, no wait >= 1 s (ratio: evs worst process p99 / raw worst process p99)",
       evs_runs.failures == 0 && evs_runs.longest_ms < 1000, waits_detail(evs_runs, raw_runs));
}

}  // namespace bench
