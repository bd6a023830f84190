// `rebuild` and `replay` driven through a real embedded-app binary, against a live projection.
#include "../support/child_process.hpp"
#include "cli_support.hpp"
#include "../support/temp_dir.hpp"
#include "rebuild_support.hpp"

#include <evs/eventstore/sqlite_event_store.hpp>
#include <evs/projections/engine.hpp>

#include <doctest/doctest.h>
#include <rapidjson/document.h>
#include <sqlite3.h>

#include <csignal>
#include <map>
#include <sys/wait.h>
#include <thread>
#include <unistd.h>

namespace {

struct Run {
  int exit_code = -1;
  std::string out;
};

// Runs rebuild_app with `args`, the read model path and extra environment.
// With `kill_when_exists`: SIGKILLs the app as soon as that file exists (the rebuild's shadow copy: it is
// halfway), however fast the machine.
Run run_app(const std::vector<std::string>& args, const std::string& read_model, bool doubled = false,
            std::optional<std::string> kill_when_exists = std::nullopt) {
  std::vector<std::pair<std::string, std::string>> env{{"EVS_TEST_READ_MODEL", read_model}};
  if (doubled) env.emplace_back("EVS_TEST_TOTALS_DOUBLE", "1");
  const auto child = evs::test::spawn_child(EVS_REBUILD_APP, args, env, /*merge_stderr=*/true);
  if (kill_when_exists) {
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
    while (!std::filesystem::exists(*kill_when_exists) && std::chrono::steady_clock::now() < deadline)
      std::this_thread::sleep_for(std::chrono::microseconds(200));
    kill(child.pid, SIGKILL);
  }
  Run run;
  run.out = evs::test::read_to_end(child.out);
  run.exit_code = evs::test::wait_child(child.pid);
  return run;
}

// Runs rebuild_app with stdout and stderr apart.
clitest::Output run_split(const std::vector<std::string>& args, const std::string& read_model, bool doubled = false,
                          const std::string& partitions = {}) {
  std::vector<std::pair<std::string, std::string>> env{{"EVS_TEST_READ_MODEL", read_model}};
  if (doubled) env.emplace_back("EVS_TEST_TOTALS_DOUBLE", "1");
  if (!partitions.empty()) env.emplace_back("EVS_TEST_PARTITIONS", partitions);
  return clitest::run(EVS_REBUILD_APP, args, {}, env);
}

// Runs the live projection over the log up to `until` (it then stops there, as a live copy that is behind).
void run_live(evs::EventStore& store, const std::string& read_model, std::uint64_t until) {
  rebuildtest::Totals totals;
  evs::ProjectionEngine live(store);
  evs::ProjectionOptions options;
  options.database = read_model;
  options.until_position = until;
  live.add(totals, options);
  live.start();
  REQUIRE(live.wait_for("totals", until, std::chrono::seconds(60)));
  live.stop();
}

// Full contents of the totals table, or empty if there is none.
std::map<std::string, std::pair<std::int64_t, std::int64_t>> read_totals(const std::string& path) {
  std::map<std::string, std::pair<std::int64_t, std::int64_t>> out;
  sqlite3* db = nullptr;
  REQUIRE(sqlite3_open_v2(path.c_str(), &db, SQLITE_OPEN_READONLY, nullptr) == SQLITE_OK);
  sqlite3_stmt* st = nullptr;
  if (sqlite3_prepare_v2(db, "SELECT stream, cents, n FROM totals", -1, &st, nullptr) == SQLITE_OK) {
    while (sqlite3_step(st) == SQLITE_ROW)
      out[reinterpret_cast<const char*>(sqlite3_column_text(st, 0))] = {sqlite3_column_int64(st, 1),
                                                                       sqlite3_column_int64(st, 2)};
  }
  sqlite3_finalize(st);
  sqlite3_close(db);
  return out;
}

using rebuildtest::expected_totals;
using rebuildtest::fill;

}  // namespace

TEST_CASE("rebuild swaps in a rebuilt read model while the live projection keeps serving and following") {
  evs::test::TempDir dir;
  const std::string events = (dir / "events.db").string();
  const std::string read_model = (dir / "read.db").string();
  evs::SqliteEventStore store({events, evs::Durability::normal});
  fill(store, 20000);

  rebuildtest::LiveTotals live(store, read_model);
  REQUIRE(live.wait_for(store.last_position().value()));
  CHECK(read_totals(read_model) == expected_totals(store));

  // Corrupt the live read model behind the projection's back: the rebuild must repair it.
  {
    sqlite3* db = nullptr;
    REQUIRE(sqlite3_open(read_model.c_str(), &db) == SQLITE_OK);
    sqlite3_busy_timeout(db, 5000);
    REQUIRE(sqlite3_exec(db, "UPDATE totals SET cents = 0", nullptr, nullptr, nullptr) == SQLITE_OK);
    sqlite3_close(db);
  }
  // Appends continue during the rebuild.
  rebuildtest::BackgroundDeposits writer(store);
  auto run = run_app({"--db", events, "rebuild", "totals"}, read_model);
  writer.stop();
  INFO(run.out);
  CHECK(run.exit_code == 0);
  CHECK(run.out.find("swapped in the rebuilt totals") != std::string::npos);

  // The live engine continues from the swapped-in state: after the final appends, the read model equals a
  // clean replay of the whole log, with no event lost or applied twice.
  REQUIRE(live.wait_for(fill(store, 100, 7)));
  CHECK(read_totals(read_model) == expected_totals(store));
  live.engine.stop();
  CHECK_FALSE(std::filesystem::exists(read_model + ".rebuild-totals"));
}

TEST_CASE("a rebuild killed halfway leaves the live read model untouched, and a second rebuild completes") {
  evs::test::TempDir dir;
  const std::string events = (dir / "events.db").string();
  const std::string read_model = (dir / "read.db").string();
  evs::SqliteEventStore store({events, evs::Durability::normal});
  fill(store, 150000);
  run_live(store, read_model, 100000);  // the live copy is deliberately behind: a rebuild would change it
  const auto before = read_totals(read_model);
  REQUIRE_FALSE(before.empty());

  auto killed = run_app({"--db", events, "rebuild", "totals"}, read_model, false, read_model + ".rebuild-totals");
  CHECK(killed.exit_code == -SIGKILL);
  CHECK(read_totals(read_model) == before);

  auto second = run_app({"--db", events, "rebuild", "totals"}, read_model);
  INFO(second.out);
  CHECK(second.exit_code == 0);
  CHECK(read_totals(read_model) == expected_totals(store));
}

TEST_CASE("a dry run reports the differences a changed projection would make, and swaps nothing") {
  evs::test::TempDir dir;
  const std::string events = (dir / "events.db").string();
  const std::string read_model = (dir / "read.db").string();
  evs::SqliteEventStore store({events, evs::Durability::normal});
  fill(store, 3000);
  REQUIRE(run_app({"--db", events, "rebuild", "totals"}, read_model).exit_code == 0);
  const auto live = read_totals(read_model);

  auto same = run_app({"--db", events, "rebuild", "totals", "--dry-run"}, read_model);
  INFO(same.out);
  CHECK(same.exit_code == 0);
  CHECK(same.out.find("equals the live one") != std::string::npos);

  auto changed = run_app({"--db", events, "rebuild", "totals", "--dry-run"}, read_model, /*doubled=*/true);
  INFO(changed.out);
  CHECK(changed.exit_code == 3);
  CHECK(changed.out.find("totals") != std::string::npos);
  CHECK(changed.out.find("DIFFERENT") != std::string::npos);
  CHECK(changed.out.find("differs from the live one") != std::string::npos);
  CHECK(read_totals(read_model) == live);
}

TEST_CASE("replay --until builds the read model as of a position into a separate file") {
  evs::test::TempDir dir;
  const std::string events = (dir / "events.db").string();
  const std::string read_model = (dir / "read.db").string();
  evs::SqliteEventStore store({events, evs::Durability::normal});
  fill(store, 2000);
  const std::string target = (dir / "as-of-1234.db").string();
  auto run = run_app({"--db", events, "replay", "totals", "--until", "1234", "--target", target}, read_model);
  INFO(run.out);
  CHECK(run.exit_code == 0);
  CHECK(read_totals(target) == expected_totals(store, 1234));
  CHECK_FALSE(std::filesystem::exists(read_model));  // the live read model was not created or touched

  auto beyond = run_app({"--db", events, "replay", "totals", "--until", "999999"}, read_model);
  CHECK(beyond.exit_code == 1);
  auto bad = run_app({"--db", events, "replay", "totals", "--until", "yesterday"}, read_model);
  CHECK(bad.exit_code == 2);
  auto unknown = run_app({"--db", events, "rebuild", "nope"}, read_model);
  CHECK(unknown.exit_code == 2);  // bad usage: the application defines no projection of that name
}

TEST_CASE("a dry run compares at the live read model's position: a live copy that is behind is not reported") {
  evs::test::TempDir dir;
  const std::string events = (dir / "events.db").string();
  const std::string read_model = (dir / "read.db").string();
  evs::SqliteEventStore store({events, evs::Durability::normal});
  fill(store, 3000);
  run_live(store, read_model, 2000);  // the live copy is at 2000 of 3000, and correct there
  const auto live = read_totals(read_model);

  auto same = run_split({"--db", events, "rebuild", "totals", "--dry-run"}, read_model);
  INFO(same.out);
  INFO(same.err);
  CHECK(same.code == 0);
  CHECK(clitest::contains(same.out, "dry run at position 2000: the rebuilt read model equals the live one"));

  auto changed = run_split({"--db", events, "--json", "rebuild", "totals", "--dry-run"}, read_model, /*doubled=*/true);
  INFO(changed.out);
  CHECK(changed.code == 3);
  const auto lines = clitest::parse_json_lines(changed.out);
  REQUIRE(lines.size() == 2);
  CHECK(std::string(lines[0]["table"].GetString()) == "totals");
  CHECK_FALSE(lines[0]["same"].GetBool());
  CHECK(lines[1]["position"].GetUint64() == 2000);
  CHECK_FALSE(lines[1]["same"].GetBool());
  CHECK(read_totals(read_model) == live);
  CHECK_FALSE(std::filesystem::exists(read_model + ".dryrun-totals"));
}

TEST_CASE("with --json, rebuild and replay print only JSON on stdout, progress goes to stderr") {
  evs::test::TempDir dir;
  const std::string events = (dir / "events.db").string();
  const std::string read_model = (dir / "read.db").string();
  evs::SqliteEventStore store({events, evs::Durability::normal});
  fill(store, 2000);
  const std::vector<std::vector<std::string>> commands = {
      {"--db", events, "--json", "rebuild", "totals"},
      {"--db", events, "--json", "rebuild", "totals", "--dry-run"},
      {"--db", events, "--json", "replay", "totals", "--until", "1000"},
  };
  for (const auto& args : commands) {
    auto r = run_split(args, read_model);
    INFO(r.out);
    INFO(r.err);
    CHECK(r.code == 0);
    CHECK_FALSE(r.out.empty());
    for (const auto& line : clitest::lines(r.out)) (void)clitest::parse_json(line);
    CHECK((clitest::contains(r.err, "1000/1000") || clitest::contains(r.err, "2000/2000")));
  }
}

TEST_CASE("replay --until takes RFC 3339 times with fractions and zones, and refuses anything else") {
  evs::test::TempDir dir;
  const std::string events = (dir / "events.db").string();
  const std::string read_model = (dir / "read.db").string();
  {
    evs::SqliteEventStore store({events, evs::Durability::normal});
    fill(store, 20);
  }
  // Event n recorded at 2026-11-22T15:00:00Z + (n - 1) * 100 ms.
  {
    sqlite3* db = nullptr;
    REQUIRE(sqlite3_open(events.c_str(), &db) == SQLITE_OK);
    REQUIRE(sqlite3_exec(db, "UPDATE events SET recorded_at = 1795359600000000 + (position - 1) * 100000", nullptr,
                         nullptr, nullptr) == SQLITE_OK);
    sqlite3_close(db);
  }
  const auto replayed_until = [&](const std::string& until) -> std::int64_t {
    auto r = run_split({"--db", events, "replay", "totals", "--until", until}, read_model);
    INFO(until);
    INFO(r.err);
    if (r.code != 0) return -r.code;
    const auto at = r.out.find("as of position ");  // "totals as of position N is in FILE"
    REQUIRE(at != std::string::npos);
    return std::stoll(r.out.substr(at + 15));
  };
  CHECK(replayed_until("2026-11-22T15:00:00Z") == 1);
  CHECK(replayed_until("2026-11-22T15:00:00.35Z") == 4);
  CHECK(replayed_until("2026-11-22T15:00:00.350001Z") == 4);
  CHECK(replayed_until("2026-11-22T15:00:00.4Z") == 5);
  CHECK(replayed_until("2026-11-22T16:00:00.35+01:00") == 4);
  CHECK(replayed_until("2026-11-22T14:30:01.05-00:30") == 11);  // 15:00:01.05Z
  CHECK(replayed_until("2026-11-22t15:00:00.999z") == 10);
  CHECK(replayed_until("2026-11-22 15:00:01.5") == 16);  // no zone: UTC
  CHECK(replayed_until("2026-11-22T14:59:59.999999Z") == 0);
  CHECK(replayed_until("7") == 7);

  for (const char* bad : {"2026-11-22T15:00:00junk", "2026-11-22T15:00:00.Z", "2026-11-22T15:00:00+1", "2026-11-22",
                          "2026-13-01T00:00:00Z", "2026-02-30T00:00:00Z", "2026-11-22T24:00:00Z", "yesterday", "12abc",
                          "-5", "99999999999999999999999", "2026-11-22T15:00:00Z "}) {
    CAPTURE(bad);
    auto r = run_split({"--db", events, "replay", "totals", "--until", bad}, read_model);
    CHECK(r.code == 2);
    CHECK(r.out.empty());
    CHECK(clitest::contains(r.err, "--until"));
  }
}

// The documented way to change a projection's partition count (docs/projections.md, "Several nodes"): stop it,
// rebuild it with the new count, start it with the new count. Nothing is skipped or applied twice.
TEST_CASE("rebuilding with another partition count changes it without skipping or repeating an event") {
  evs::test::TempDir dir;
  const std::string events = (dir / "events.db").string();
  const std::string read_model = (dir / "read.db").string();
  evs::SqliteEventStore store({events, evs::Durability::normal});
  fill(store, 3000);
  run_live(store, read_model, store.last_position().value());  // 1 partition
  fill(store, 500, 3);  // not yet projected

  rebuildtest::Totals totals;
  evs::ProjectionOptions options;
  options.database = read_model;
  options.partitions = 3;
  {
    evs::ProjectionEngine refused(store);
    refused.add(totals, options);
    CHECK_THROWS_WITH_AS(refused.start(), doctest::Contains("rebuild it to change the partition count"), evs::Exception);
  }
  auto run = run_split({"--db", events, "rebuild", "totals"}, read_model, false, "3");
  CAPTURE(run.err);
  REQUIRE(run.code == 0);

  evs::ProjectionEngine engine(store);
  engine.add(totals, options);
  engine.start();
  REQUIRE(engine.wait_for("totals", fill(store, 200, 5), std::chrono::seconds(60)));
  engine.stop();
  CHECK(read_totals(read_model) == expected_totals(store));
}
