// telemetry demo DB [--fresh] [--short]   tells the telemetry story and checks its own results (exit 1 on a mismatch)
// telemetry worker DB NODE                 works the read models as worker node NODE (the demo starts two)
// telemetry <evs tool command> ...         the embedded evs tool, e.g. `telemetry --db demo-data/telemetry.db stats`
#include "telemetry.hpp"
#include "workers.hpp"

#include <evs/cli/cli.hpp>
#include <evs/eventstore/sqlite_event_store.hpp>
#include <evs/projections/engine.hpp>

#include <sqlite3.h>

#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <map>
#include <set>
#include <string>
#include <thread>
#include <vector>

using namespace std::chrono_literals;

namespace {

// Each projection keeps its tables, checkpoint and inbox in its own file next to the event store
// (demo-data/telemetry.db -> demo-data/telemetry.minute_rollups.db): SQL projections sharing one SQLite file
// take turns on its write lock, and the slow one would hold up the others.
std::filesystem::path read_db_for(std::filesystem::path db, std::string_view projection) {
  return telemetry::projection_options(db, projection).database;
}

void remove_db(const std::filesystem::path& p) {
  for (const char* suffix : {"", "-wal", "-shm"}) std::filesystem::remove(p.string() + suffix);
}

struct Checks {
  std::vector<std::pair<std::string, bool>> items;
  bool check(bool ok, std::string what) {
    items.emplace_back(std::move(what), ok);
    if (!ok) std::printf("    !! check failed: %s\n", items.back().first.c_str());
    return ok;
  }
  int summary() const {
    int failed = 0;
    std::printf("\nSelf-check:\n");
    for (const auto& [what, ok] : items) {
      std::printf("  [%s] %s\n", ok ? " ok " : "FAIL", what.c_str());
      failed += ok ? 0 : 1;
    }
    std::printf("%zu/%zu checks passed\n", items.size() - failed, items.size());
    return failed == 0 ? 0 : 1;
  }
};

void step(int n, const char* title) { std::printf("\n[%d] %s\n", n, title); }

// Rows of a query on the read-model database, each row's columns joined by '|'. Any SQL client would do.
std::vector<std::string> query(const std::filesystem::path& db, const char* sql) {
  std::vector<std::string> rows;
  sqlite3* h = nullptr;
  if (sqlite3_open_v2(db.c_str(), &h, SQLITE_OPEN_READONLY, nullptr) == SQLITE_OK)
    sqlite3_exec(h, sql, [](void* out, int n, char** v, char**) {
      std::string row;
      for (int i = 0; i < n; ++i) row += (i ? "|" : "") + std::string(v[i] ? v[i] : "NULL");
      static_cast<std::vector<std::string>*>(out)->push_back(row);
      return 0;
    }, &rows, nullptr);
  sqlite3_close(h);
  return rows;
}

int demo(const std::filesystem::path& db, bool fresh, bool short_mode) {
  const auto latest_db = read_db_for(db, telemetry::RoverLatest::name);
  const auto rollups_db = read_db_for(db, telemetry::MinuteRollups::name);
  const auto uplink_db = read_db_for(db, telemetry::Uplink::name);
  if (fresh)
    for (const auto& p : {db, latest_db, rollups_db, uplink_db}) remove_db(p);
  if (!db.parent_path().empty()) std::filesystem::create_directories(db.parent_path());
  Checks checks;
  const std::vector<std::string> rovers = {"sojourner", "spirit", "opportunity", "zhurong"};
  const std::size_t total = 10'000;
  const auto slow_per_event = short_mode ? 100us : 400us;
  const auto outage = short_mode ? 800ms : 3000ms;

  std::printf("telemetry: %zu rovers stream readings into %s\n", rovers.size(), db.c_str());
  evs::SqliteEventStore store({.path = db, .durability = evs::Durability::normal});
  if (store.last_position().value() != 0) {
    std::fprintf(stderr, "telemetry: %s already holds events; run with --fresh\n", db.c_str());
    return 1;
  }
  telemetry::RoverLatest latest;
  telemetry::MinuteRollups rollups(slow_per_event);
  telemetry::Radio radio;
  telemetry::Uplink uplink(store, radio);
  evs::ProjectionEngine engine(store, {.threads = 3});
  engine.add(latest, telemetry::projection_options(db, telemetry::RoverLatest::name));
  engine.add(rollups, telemetry::projection_options(db, telemetry::MinuteRollups::name));
  engine.add(uplink, {.database = uplink_db,
                      .retry = {.max_attempts = 12, .initial_backoff = 50ms, .multiplier = 2.0, .max_backoff = 1s}});
  engine.start();

  // -------------------------------------------------------------------------------------------------
  step(1, "Mission control queues two commands for zhurong, whose radio link is down");
  const auto t0 = std::chrono::steady_clock::now();
  radio.link_down_until("zhurong", t0 + outage);
  const std::vector<std::string> commands = {"drive 3m north", "take panorama"};
  for (const auto& c : commands) telemetry::queue_command(store, "zhurong", c).value();
  std::printf("    queued \"%s\" and \"%s\"; the link comes back in %lld ms; the uplink retries with exponential backoff\n",
              commands[0].c_str(), commands[1].c_str(), static_cast<long long>(outage.count()));

  // -------------------------------------------------------------------------------------------------
  step(2, "The rovers leave a blackout and dump their buffered readings: 10,000 in about one second");
  std::printf("    projection minute_rollups is slow on purpose (%lld us per event); rover_latest is not\n",
              static_cast<long long>(slow_per_event.count()));
  const auto burst_start = std::chrono::steady_clock::now();
  std::uint64_t max_lag = 0;
  auto report = [&] {
    const auto stored = store.last_position().value();
    const auto l = engine.health("rover_latest").value();
    const auto r = engine.health("minute_rollups").value();
    max_lag = std::max(max_lag, r.lag_events);
    std::printf("    t=%4.1fs  head %5llu | rover_latest lag %5llu ev | minute_rollups lag %5llu ev, %4.2f s, %s\n",
                std::chrono::duration<double>(std::chrono::steady_clock::now() - burst_start).count(),
                static_cast<unsigned long long>(stored), static_cast<unsigned long long>(l.lag_events),
                static_cast<unsigned long long>(r.lag_events), r.lag_seconds, std::string(evs::to_string(r.state)).c_str());
  };
  int ticks = 0;
  const auto burst = telemetry::run_burst(
      store, {.rovers = rovers, .readings = total, .duration = 1000ms, .first_sample_ms = 1'700'000'000'000},
      [&] {
        if (++ticks % 2 == 0) report();
      });
  std::printf("    burst: %zu appends acknowledged in %.2f s = %.0f appends/s, in %llu commits (%.1f appends per commit: group commit)\n",
              burst.acknowledged, burst.seconds, burst.acknowledged / burst.seconds,
              static_cast<unsigned long long>(burst.transactions),
              burst.transactions ? double(burst.acknowledged) / double(burst.transactions) : 0.0);
  checks.check(burst.acknowledged == total && burst.failed == 0, "all 10,000 appends acknowledged");

  // -------------------------------------------------------------------------------------------------
  step(3, "The slow projection falls behind, then catches up (pull model: memory stays bounded)");
  const auto head = store.last_position().value();
  const auto catchup_start = std::chrono::steady_clock::now();
  // Watch it catch up (health is cheap to read), then confirm with read-your-writes.
  while (engine.health("minute_rollups")->position < head &&
         std::chrono::steady_clock::now() - catchup_start < 60s) {
    std::this_thread::sleep_for(250ms);
    report();
  }
  checks.check(bool(engine.wait_for("rover_latest", head, 10s)), "rover_latest reaches the head");
  const bool caught_up = bool(engine.wait_for("minute_rollups", head, 10s));
  std::printf("    minute_rollups caught up %.1f s after the burst; its largest lag seen was %llu events\n",
              std::chrono::duration<double>(std::chrono::steady_clock::now() - catchup_start).count(),
              static_cast<unsigned long long>(max_lag));
  checks.check(caught_up, "minute_rollups catches up with the head");
  checks.check(max_lag > 0, "minute_rollups was seen lagging during the burst");

  // -------------------------------------------------------------------------------------------------
  step(4, "Everything is stored: counted, gap-free, per-rover streams contiguous");
  std::size_t readings = 0;
  std::uint64_t expect_position = 1;
  bool gap_free = true;
  for (std::uint64_t from = 1;;) {
    auto batch = store.read_all(from, 2000).value();
    if (batch.events.empty()) break;
    for (const auto& e : batch.events) {
      gap_free = gap_free && e.position == expect_position++;
      readings += e.type == evs::event_info_v<telemetry::ReadingRecorded>.name ? 1 : 0;
    }
    from = batch.next_position;
  }
  bool contiguous = true;
  std::uint64_t versions = 0;
  for (const auto& rover : rovers) {
    const auto events = store.read_stream(telemetry::rover_stream(rover)).value();
    for (std::size_t i = 0; i < events.size(); ++i) contiguous = contiguous && events[i].version == i + 1;
    versions += events.size();
  }
  std::printf("    %zu readings in the log, positions 1..%llu without a gap; %llu events across the %zu rover streams\n",
              readings, static_cast<unsigned long long>(expect_position - 1), static_cast<unsigned long long>(versions), rovers.size());
  checks.check(readings == total && versions == total, "10,000 readings stored");
  checks.check(gap_free, "global positions are gap-free");
  checks.check(contiguous, "every rover stream's versions are contiguous from 1");

  // -------------------------------------------------------------------------------------------------
  step(5, "The read models");
  std::printf("    rover_latest (rover|seq|temperature_c|battery_pct|readings):\n");
  for (const auto& row : query(latest_db, "SELECT rover, seq, temperature_c, round(battery_pct, 1), readings FROM rover_latest ORDER BY rover"))
    std::printf("      %s\n", row.c_str());
  std::printf("    rover_minutes, first rows (rover|minute on the rover clock, UTC|readings|min|max):\n");
  for (const auto& row : query(rollups_db, "SELECT rover, strftime('%Y-%m-%d %H:%M', minute * 60, 'unixepoch'), readings, min_temperature_c, max_temperature_c FROM rover_minutes ORDER BY rover, minute LIMIT 4"))
    std::printf("      %s\n", row.c_str());
  const auto sums = query(rollups_db, "SELECT sum(readings), sum(sum_temperature_c), count(*) FROM rover_minutes");
  const auto latest_sum = query(latest_db, "SELECT sum(readings) FROM rover_latest");
  std::int64_t rolled = 0, latest_count = 0, minutes = 0;
  double rolled_temp = 0;
  if (!sums.empty()) std::sscanf(sums[0].c_str(), "%ld|%lf|%ld", &rolled, &rolled_temp, &minutes);
  if (!latest_sum.empty()) latest_count = std::atol(latest_sum[0].c_str());
  std::printf("    %ld minute rows hold %ld readings, temperature sum %.2f (sent: %.2f)\n", minutes, rolled, rolled_temp,
              burst.temperature_sum);
  checks.check(rolled == static_cast<std::int64_t>(total), "the per-minute rollups sum to 10,000 readings");
  checks.check(std::abs(rolled_temp - burst.temperature_sum) < 0.01, "the rollups' temperature sum equals the readings'");
  checks.check(latest_count == static_cast<std::int64_t>(total), "rover_latest counted every reading");

  // -------------------------------------------------------------------------------------------------
  step(6, "Commands to zhurong: retried while the link was down, delivered once when it came back");
  const auto deadline = std::chrono::steady_clock::now() + 30s;
  while ((radio.deliveries(commands[0]) == 0 || radio.deliveries(commands[1]) == 0) && std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(10ms);
  const auto uplink_head = store.last_position().value();
  checks.check(bool(engine.wait_for("uplink", uplink_head, 10s)), "the uplink handler reaches the head");
  for (const auto& a : radio.attempts())
    std::printf("    +%5lld ms  %-16s %s\n",
                static_cast<long long>(std::chrono::duration_cast<std::chrono::milliseconds>(a.at - t0).count()),
                a.command.c_str(), a.delivered ? "delivered" : "no carrier (retry later)");
  const auto trail = store.read_stream(telemetry::uplink_stream("zhurong")).value();
  std::size_t delivered_events = 0;
  for (const auto& e : trail) delivered_events += e.type == evs::event_info_v<telemetry::CommandDelivered>.name ? 1 : 0;
  for (const auto& c : commands)
    checks.check(radio.deliveries(c) == 1, "\"" + c + "\" delivered exactly once");
  checks.check(radio.attempts().size() > commands.size(), "delivery was retried while the link was down");
  checks.check(delivered_events == commands.size(), "one CommandDelivered per command in uplink-zhurong");
  checks.check(engine.health("uplink")->dead_letters == 0, "no command was parked as a dead letter");
  engine.stop();

  // -------------------------------------------------------------------------------------------------
  step(7, "Two worker processes take the read models over; one crashes, the other takes its partitions");
  auto claims = [&](const char* when) {
    for (const auto& [name, file] : {std::pair{"rover_latest", latest_db}, std::pair{"minute_rollups", rollups_db}}) {
      std::string held;
      const auto rows = telemetry::claims_of(file, name);
      for (std::size_t p = 0; p < rows.size(); ++p) held += "  partition " + std::to_string(p) + ": " + rows[p];
      std::printf("    %s %-15s%s\n", when, name, held.c_str());
    }
  };
  std::vector<telemetry::WorkerProcess> workers = {telemetry::start_worker(db, "worker-a"),
                                                   telemetry::start_worker(db, "worker-b")};
  const auto spread_deadline = std::chrono::steady_clock::now() + 15s;
  auto holders = [&] {
    std::set<std::string> owners;
    for (const auto& [name, file] : {std::pair{"rover_latest", latest_db}, std::pair{"minute_rollups", rollups_db}})
      for (const auto& row : telemetry::claims_of(file, name)) owners.insert(row.substr(0, row.find('|')));
    return owners;
  };
  while (holders().size() < 2 && std::chrono::steady_clock::now() < spread_deadline) std::this_thread::sleep_for(20ms);
  claims("claims (owner|epoch):");
  checks.check(holders() == std::set<std::string>{"worker-a", "worker-b"}, "the two workers share the partitions");
  const std::size_t more = 2'000;
  const auto second = telemetry::run_burst(
      store, {.rovers = rovers, .readings = more, .duration = 300ms, .first_sample_ms = 1'700'003'600'000});
  telemetry::kill_worker(workers[0], false);
  const auto killed = std::chrono::steady_clock::now();
  const auto head2 = store.last_position().value();
  std::printf("    %zu more readings appended (head %llu); worker-a SIGKILLed with work in hand\n", second.acknowledged,
              static_cast<unsigned long long>(head2));
  auto reached = [&](const std::filesystem::path& file, const char* name) {
    const auto rows = query(file, (std::string("SELECT count(*), min(position) FROM evs_checkpoints WHERE projection = '") +
                                   name + "'").c_str());
    std::size_t n = 0;
    unsigned long long at = 0;
    return !rows.empty() && std::sscanf(rows[0].c_str(), "%zu|%llu", &n, &at) == 2 &&
           n == telemetry::projection_partitions && at >= head2;
  };
  // Taken over: worker-b holds every partition of both (worker-a's claims ran out), and has committed the
  // new readings in all of them.
  auto taken_over = [&] {
    for (const auto& [name, file] : {std::pair{"rover_latest", latest_db}, std::pair{"minute_rollups", rollups_db}}) {
      const auto rows = telemetry::claims_of(file, name);
      if (rows.size() != telemetry::projection_partitions) return false;
      for (const auto& row : rows)
        if (row.rfind("worker-b|", 0) != 0) return false;
    }
    return true;
  };
  while (!(taken_over() && reached(latest_db, "rover_latest") && reached(rollups_db, "minute_rollups")) &&
         std::chrono::steady_clock::now() - killed < 60s)
    std::this_thread::sleep_for(20ms);
  std::printf("    worker-b holds everything and committed it %.1f s after the crash (lease %lld ms: the crashed "
              "worker's claims ran out, then it took them)\n",
              std::chrono::duration<double>(std::chrono::steady_clock::now() - killed).count(),
              static_cast<long long>(telemetry::worker_lease.count()));
  claims("claims now:");
  checks.check(holders() == std::set<std::string>{"worker-b"}, "worker-b holds every partition after the crash");
  const auto totals = query(rollups_db, "SELECT sum(readings) FROM rover_minutes");
  const auto latest_totals = query(latest_db, "SELECT sum(readings) FROM rover_latest");
  const auto expected = std::to_string(total + more);
  checks.check(!totals.empty() && totals[0] == expected,
               "the rollups count " + expected + " readings: nothing lost or counted twice across the crash");
  checks.check(!latest_totals.empty() && latest_totals[0] == expected, "rover_latest counts " + expected + " readings");
  telemetry::kill_worker(workers[1], true);
  return checks.summary();
}

}  // namespace

int main(int argc, char** argv) {
  if (argc == 4 && std::strcmp(argv[1], "worker") == 0) return telemetry::run_worker(argv[2], argv[3]);
  if (argc >= 2 && std::strcmp(argv[1], "demo") == 0) {
    if (argc < 3) {
      std::fprintf(stderr, "usage: telemetry demo DB [--fresh] [--short]\n");
      return 2;
    }
    bool fresh = false, short_mode = false;
    for (int i = 3; i < argc; ++i) {
      if (std::strcmp(argv[i], "--fresh") == 0) fresh = true;
      else if (std::strcmp(argv[i], "--short") == 0) short_mode = true;
      else {
        std::fprintf(stderr, "telemetry: unknown option %s\n", argv[i]);
        return 2;
      }
    }
    return demo(argv[2], fresh, short_mode);
  }
  // Everything else is the evs tool with the telemetry events and read models registered.
  std::filesystem::path db = "telemetry.db";
  for (int i = 1; i < argc; ++i) {
    if (std::strcmp(argv[i], "--db") == 0 && i + 1 < argc) db = argv[i + 1];
    else if (std::strncmp(argv[i], "--db=", 5) == 0) db = argv[i] + 5;
  }
  telemetry::RoverLatest latest;
  telemetry::MinuteRollups rollups;
  evs::cli::Application app{"telemetry", db};
  app.projections.push_back({&latest, telemetry::projection_options(db, telemetry::RoverLatest::name)});
  app.projections.push_back({&rollups, telemetry::projection_options(db, telemetry::MinuteRollups::name)});
  return evs::cli::run(app, argc, argv);
}
