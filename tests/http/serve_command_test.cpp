// `evs serve`: the standalone server on any store, its output, its arguments, and its stop on SIGTERM.
#include "http_rig.hpp"

#include "../support/child_process.hpp"

#include <evs/eventstore/sqlite_event_store.hpp>

#include <csignal>
#include <regex>
#include <thread>

namespace {

using namespace std::chrono_literals;

using httptest::parse;

struct Served {
  evs::test::ChildProcess child;
  std::uint16_t port = 0;
  std::string token;
  std::string output;
};

// Starts `evs serve` and reads its first lines: the address, the dashboard's address, the token.
Served start_serve(std::vector<std::string> args) {
  Served s{evs::test::spawn_child(EVS_CLI_BINARY, std::move(args), {}, true)};
  const std::regex url("http://127\\.0\\.0\\.1:([0-9]+)/");
  const std::regex token("token \\(for requests that change state\\): ([0-9a-f]+)");
  for (int i = 0; i < 4; ++i) {
    const auto line = evs::test::read_line_within(s.child.out, 20s);
    REQUIRE_MESSAGE(line.has_value(), "evs serve printed: " << s.output);
    s.output += *line + "\n";
    std::smatch m;
    if (s.port == 0 && std::regex_search(*line, m, url)) s.port = static_cast<std::uint16_t>(std::stoi(m[1]));
    if (std::regex_search(*line, m, token)) s.token = m[1];
    if (line->starts_with("token") || line->starts_with("read-only")) break;
  }
  REQUIRE_MESSAGE(s.port != 0, s.output);
  return s;
}

int stop(Served& s) {
  ::kill(s.child.pid, SIGTERM);
  return evs::test::wait_child(s.child.pid);
}

int run_evs(std::vector<std::string> args, std::string& output) {
  auto child = evs::test::spawn_child(EVS_CLI_BINARY, std::move(args), {}, true);
  output = evs::test::read_to_end(child.out);
  return evs::test::wait_child(child.pid);
}

}  // namespace

TEST_CASE("evs serve: a standalone server shows the stored projections and dead letters, and stops on SIGTERM") {
  evs::test::TempDir dir;
  const auto db = (dir / "events.db").string(), read_db = (dir / "read.db").string();
  std::uint64_t head = 0;
  {
    httptest::Rig rig(db, read_db);  // leaves a store, checkpoints and one parked dead letter behind
    head = rig.head();
  }
  auto s = start_serve({"serve", "--db", db, "--port", "0", "--projections-db", read_db});
  CHECK(s.output.find("dashboard: http://127.0.0.1:" + std::to_string(s.port) + "/#token=" + s.token) !=
        std::string::npos);
  const auto projections = parse(evs::test::http_get(s.port, "/api/projections").body);
  std::map<std::string, std::pair<std::string, std::uint64_t>> seen;
  for (const auto& p : projections["projections"].GetArray())
    seen[p["name"].GetString()] = {p["state"].GetString(), p["position"].GetUint64()};
  CHECK(seen["totals"] == std::pair<std::string, std::uint64_t>{"stored", head});
  CHECK(seen["mailer"] == std::pair<std::string, std::uint64_t>{"stored", head});
  const auto overview = parse(evs::test::http_get(s.port, "/api/overview").body);
  CHECK(overview["head"].GetUint64() == head);
  // It opened the store read-only, and still sees what another process appends afterwards.
  {
    evs::SqliteEventStore writer({db, evs::Durability::normal});
    REQUIRE(writer.append("late-1", evs::ExpectedVersion::any(), std::vector{httptest::deposit(9)}));
  }
  std::uint64_t now = 0;
  for (int i = 0; i < 100 && now != head + 1; ++i) {
    now = parse(evs::test::http_get(s.port, "/api/overview").body)["head"].GetUint64();
    if (now != head + 1) std::this_thread::sleep_for(50ms);
  }
  CHECK(now == head + 1);
  CHECK(evs::test::http_get(s.port, "/api/streams/late-1").status == 200);
  // The binary knows no event types: payloads are shown undecoded, with the reason.
  const auto event = parse(evs::test::http_get(s.port, "/api/events/1").body);
  CHECK(event.HasMember("payload_base64"));
  CHECK(event.HasMember("payload_problem"));
  // Its token, printed at start, changes state; none does not.
  CHECK(evs::test::http_request(s.port, "POST", "/api/dead-letters/mailer/1/skip").status == 401);
  CHECK(evs::test::http_request(s.port, "POST", "/api/dead-letters/mailer/1/skip",
                                {{"Authorization", "Bearer " + s.token}})
            .status == 200);
  CHECK(stop(s) == 0);

  auto ro = start_serve({"serve", "--db", db, "--port", "0", "--read-only", "--projections-db", read_db});
  CHECK(ro.output.find("read-only: requests that change state are refused") != std::string::npos);
  CHECK(evs::test::http_request(ro.port, "POST", "/api/dead-letters/mailer/1/retry").status == 403);
  CHECK(stop(ro) == 0);
}

TEST_CASE("evs serve: bad arguments and unusable stores are refused with a clear message") {
  evs::test::TempDir dir;
  std::string out;
  CHECK(run_evs({"serve", "--db", (dir / "missing.db").string(), "--port", "0"}, out) == 1);
  CHECK(out.find("no such file") != std::string::npos);
  CHECK(run_evs({"serve", "--db", (dir / "missing.db").string(), "--port", "70000"}, out) == 2);
  CHECK(run_evs({"serve", "--db", (dir / "missing.db").string(), "--port", "x"}, out) == 2);
  {
    httptest::Rig rig((dir / "events.db").string(), (dir / "read.db").string());
    CHECK(run_evs({"serve", "--db", (dir / "events.db").string(), "--address", "not-an-address"}, out) == 1);
    CHECK(out.find("'not-an-address' is not an IP address") != std::string::npos);
    // The port the rig's server holds is in use.
    CHECK(run_evs({"serve", "--db", (dir / "events.db").string(), "--port", std::to_string(rig.port())}, out) == 1);
    CHECK(out.find("cannot listen on 127.0.0.1:" + std::to_string(rig.port())) != std::string::npos);
  }
}
