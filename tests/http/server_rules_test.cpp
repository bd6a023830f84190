// What every route shares: the metrics' values, the token rules, and bad requests that must get a 4xx
// and leave the server serving everyone else.
#include "http_rig.hpp"

#include <fstream>
#include <regex>
#include <sstream>
#include <thread>

namespace {

using namespace std::chrono_literals;

using httptest::parse;
using httptest::Rig;
using evs::test::RawConnection;

// name{labels} -> value, from the text exposition.
std::map<std::string, double> parse_metrics(const std::string& text) {
  std::map<std::string, double> out;
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) {
    if (line.empty() || line[0] == '#') continue;
    const auto space = line.rfind(' ');
    REQUIRE_MESSAGE(space != std::string::npos, "malformed line: " << line);
    out[line.substr(0, space)] = std::stod(line.substr(space + 1));
  }
  return out;
}

double metric(const std::map<std::string, double>& m, const std::string& key) {
  const auto it = m.find(key);
  REQUIRE_MESSAGE(it != m.end(), "no sample " << key);
  return it->second;
}

void write_file(const std::string& path, const std::string& content) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << content;
  REQUIRE(out.good());
}

std::string status_line(const std::string& response) { return response.substr(0, response.find("\r\n")); }

}  // namespace

TEST_CASE("http metrics: the exposition parses and its values are the engine's health and the store's appends") {
  evs::test::TempDir dir;
  Rig rig((dir / "events.db").string(), (dir / "read.db").string());
  // Appends through the store after the server started: 5 of 2 events, and one that conflicts.
  for (int i = 0; i < 5; ++i)
    REQUIRE(rig.store().append("more-" + std::to_string(i), evs::ExpectedVersion::no_stream(),
                               std::vector{httptest::deposit(1), httptest::deposit(2)}));
  REQUIRE_FALSE(rig.store().append("more-0", evs::ExpectedVersion::no_stream(), std::vector{httptest::deposit(3)}));
  const std::uint64_t head = rig.store().last_position().value();
  REQUIRE(rig.engine().wait_for("totals", head, 30s));
  REQUIRE(rig.engine().wait_for("mailer", head, 30s));
  std::this_thread::sleep_for(1100ms);  // past the figures' cache (ServeOptions::cache_for)

  const auto reply = rig.get("/metrics");
  REQUIRE(reply.status == 200);
  CHECK(reply.content_type.starts_with("text/plain; version=0.0.4"));
  const auto m = parse_metrics(reply.body);
  CHECK(metric(m, "evs_store_head_position") == static_cast<double>(head));
  CHECK(metric(m, "evs_appends_total") == 6);
  CHECK(metric(m, "evs_append_failures_total") == 1);
  CHECK(metric(m, "evs_events_appended_total") == 10);
  CHECK(metric(m, "evs_append_latency_seconds_count") == 6);
  CHECK(metric(m, "evs_append_latency_seconds_sum") > 0);
  CHECK(metric(m, "evs_commit_group_appends_sum") == 6);
  CHECK(metric(m, "evs_append_latency_seconds_bucket{le=\"+Inf\"}") == 6);

  const auto totals = rig.engine().health("totals").value();
  const auto mailer = rig.engine().health("mailer").value();
  CHECK(metric(m, "evs_projection_position{projection=\"totals\"}") == static_cast<double>(totals.position));
  CHECK(metric(m, "evs_projection_position{projection=\"totals\"}") == static_cast<double>(head));
  CHECK(metric(m, "evs_projection_lag_events{projection=\"totals\"}") == 0);
  CHECK(metric(m, "evs_projection_state{projection=\"totals\",state=\"live\"}") == 1);
  CHECK(metric(m, "evs_projection_state{projection=\"totals\",state=\"failed\"}") == 0);
  CHECK(metric(m, "evs_projection_events_processed_total{projection=\"totals\"}") == static_cast<double>(totals.processed));
  CHECK(metric(m, "evs_projection_dead_letters{projection=\"mailer\"}") == 1);
  CHECK(metric(m, "evs_projection_errors_total{projection=\"mailer\"}") == static_cast<double>(mailer.errors));
  CHECK(mailer.errors >= 1);
  CHECK(metric(m, "evs_projection_partition_checkpoint{partition=\"0\",projection=\"totals\"}") ==
        static_cast<double>(head));
  // Labels name projections, partitions and states, never a stream or an event.
  CHECK(reply.body.find("stream=") == std::string::npos);
  CHECK(reply.body.find("acc-1") == std::string::npos);
}

TEST_CASE("http metrics: counters keep growing by what is new when the engine is stopped and started again") {
  evs::test::TempDir dir;
  Rig rig((dir / "events.db").string(), (dir / "read.db").string());
  std::this_thread::sleep_for(1100ms);  // past the figures' cache (ServeOptions::cache_for)
  const double before = metric(parse_metrics(rig.get("/metrics").body),
                               "evs_projection_events_processed_total{projection=\"totals\"}");
  REQUIRE(before == static_cast<double>(rig.engine().health("totals")->processed));
  REQUIRE(before > 0);

  rig.engine().stop();
  rig.engine().start();
  // More new events than the first run's total: the new run's total passes the last one counted before
  // the next scrape.
  const int more = static_cast<int>(before) + 5;
  for (int i = 0; i < more; ++i)
    REQUIRE(rig.store().append("after-" + std::to_string(i), evs::ExpectedVersion::no_stream(),
                               std::vector{httptest::deposit(1)}));
  REQUIRE(rig.engine().wait_for("totals", rig.store().last_position().value(), 30s));
  const auto health = rig.engine().health("totals").value();
  CHECK(health.run == 2);
  REQUIRE(health.processed == static_cast<std::uint64_t>(more));
  std::this_thread::sleep_for(1100ms);
  const auto m = parse_metrics(rig.get("/metrics").body);
  CHECK(metric(m, "evs_projection_events_processed_total{projection=\"totals\"}") == before + more);
}

TEST_CASE("http metrics: a database that cannot be read is counted, and the rest is still served") {
  evs::test::TempDir dir;
  const std::string extra = (dir / "extra.db").string();
  write_file(extra, "");  // an empty file: SQLite reads it as an empty database
  evs::http::ServeOptions options;
  options.projection_databases = {extra};
  Rig rig((dir / "events.db").string(), (dir / "read.db").string(), options);
  std::this_thread::sleep_for(1100ms);  // past the figures' cache (ServeOptions::cache_for)
  const auto good = parse_metrics(rig.get("/metrics").body);
  CHECK(metric(good, "evs_metrics_scrape_errors_total") == 0);
  const double position = metric(good, "evs_projection_position{projection=\"totals\"}");

  write_file(extra, std::string(4096, 'x'));  // no longer a database
  REQUIRE(rig.store().append("late-1", evs::ExpectedVersion::no_stream(), std::vector{httptest::deposit(1)}));
  const std::uint64_t head = rig.store().last_position().value();
  REQUIRE(rig.engine().wait_for("totals", head, 30s));
  std::this_thread::sleep_for(1100ms);
  const auto reply = rig.get("/metrics");
  REQUIRE(reply.status == 200);
  const auto bad = parse_metrics(reply.body);
  CHECK(metric(bad, "evs_metrics_scrape_errors_total") == 1);
  CHECK(metric(bad, "evs_store_head_position") == static_cast<double>(head));
  CHECK(metric(bad, "evs_appends_total") == 1);
  // The projections' figures keep their last values.
  CHECK(metric(bad, "evs_projection_position{projection=\"totals\"}") == position);
  const auto api = rig.get("/api/projections");
  CHECK(api.status == 500);
  CHECK(parse(api.body)["error"].IsString());

  write_file(extra, "");  // readable again: the next scrape is whole
  std::this_thread::sleep_for(1100ms);
  const auto again = parse_metrics(rig.get("/metrics").body);
  CHECK(metric(again, "evs_metrics_scrape_errors_total") == 1);
  CHECK(metric(again, "evs_projection_position{projection=\"totals\"}") == static_cast<double>(head));
}

TEST_CASE("http tokens: reading needs none, changing state needs the bearer token, read-only refuses it") {
  evs::test::TempDir dir;
  SUBCASE("a generated token") {
    Rig rig((dir / "events.db").string(), (dir / "read.db").string());
    const std::string token = rig.server().token();
    CHECK(token.size() >= 32);
    CHECK(rig.server().dashboard_url() == rig.server().url() + "#token=" + token);
    CHECK(rig.get("/api/dead-letters").status == 200);
    const auto none = rig.post("/api/dead-letters/mailer/1/skip", "");
    CHECK(none.status == 401);
    CHECK(parse(none.body)["error"].GetString() ==
          std::string("this request changes state: send Authorization: Bearer <token>"));
    CHECK(rig.post("/api/dead-letters/mailer/1/skip", token + "x").status == 401);
    CHECK(rig.post("/api/dead-letters/mailer/1/skip", token.substr(1)).status == 401);
    CHECK(evs::test::http_request(rig.port(), "POST", "/api/dead-letters/mailer/1/skip",
                                  {{"Authorization", "Basic " + token}})
              .status == 401);
    // Nothing changed by the refused requests; the right token changes it.
    CHECK(rig.json("/api/dead-letters/mailer/1")["status"].GetString() == std::string("parked"));
    CHECK(rig.post("/api/dead-letters/mailer/1/skip", token).status == 200);
    CHECK(rig.json("/api/dead-letters/mailer/1")["status"].GetString() == std::string("skipped"));
    // A state-changing route does not answer GET, and a read route does not answer POST.
    CHECK(rig.get("/api/dead-letters/mailer/1/skip").status == 405);
    CHECK(rig.post("/api/overview", token).status == 405);
  }
  SUBCASE("a given token, and read-only mode") {
    Rig rig((dir / "events.db").string(), (dir / "read.db").string(), {.token = "s3cret-token", .read_only = true});
    CHECK(rig.server().token() == "s3cret-token");
    CHECK(rig.server().dashboard_url() == rig.server().url());  // no token to hand out
    const auto refused = rig.post("/api/dead-letters/mailer/1/retry", "s3cret-token");
    CHECK(refused.status == 403);
    CHECK(rig.json("/api/overview")["read_only"].GetBool());
    CHECK(rig.json("/api/dead-letters/mailer/1")["status"].GetString() == std::string("parked"));
  }
}

TEST_CASE("http bad requests get a 4xx with a JSON error, and the server keeps serving") {
  evs::test::TempDir dir;
  evs::http::ServeOptions options;
  options.max_header_bytes = 1024;
  options.max_body_bytes = 512;
  options.timeout = 500ms;
  options.max_connections = 6;
  Rig rig((dir / "events.db").string(), (dir / "read.db").string(), options);
  const auto raw = [&](const std::string& bytes) {
    RawConnection c(rig.port());
    c.send(bytes);
    const auto answer = c.read_until_closed(5s);
    REQUIRE_MESSAGE(answer.has_value(), "the server kept the connection open after: " << bytes.substr(0, 60));
    return *answer;
  };

  SUBCASE("oversized header") {
    const auto r = raw("GET /api/overview HTTP/1.1\r\nHost: x\r\nX-Big: " + std::string(4000, 'a') + "\r\n\r\n");
    CHECK(status_line(r) == "HTTP/1.1 431 Request Header Fields Too Large");
    CHECK(r.find("{\"error\":\"request header too large\"}") != std::string::npos);
  }
  SUBCASE("oversized body") {
    const auto r = raw("POST /api/dead-letters/mailer/1/skip HTTP/1.1\r\nHost: x\r\nContent-Length: 5000\r\n\r\n" +
                       std::string(5000, 'b'));
    CHECK(status_line(r) == "HTTP/1.1 413 Payload Too Large");
  }
  SUBCASE("not HTTP") {
    CHECK(status_line(raw("HELLO THERE\r\n\r\n")).starts_with("HTTP/1.1 400"));
    CHECK(status_line(raw("GET nopath HTTP/1.1\r\nHost: x\r\n\r\n")).starts_with("HTTP/1.1 400"));
  }
  SUBCASE("unknown routes, traversal, malformed escapes and arguments") {
    for (const char* target : {"/api/nope", "/nope", "/api/streams/a/b/c", "/assets/../../../etc/passwd",
                               "/assets/..%2F..%2F..%2Fetc%2Fpasswd", "/assets/%2e%2e/%2e%2e/etc/passwd",
                               "/assets/missing.js"}) {
      const auto r = rig.get(target);
      INFO(target);
      CHECK(r.status == 404);
      CHECK(r.body.find("root:") == std::string::npos);
      CHECK(parse(r.body).HasMember("error"));
    }
    CHECK(rig.get("/api/streams/%zz").status == 400);
    const auto bad = rig.get("/api/streams?limit=abc");
    CHECK(bad.status == 400);
    CHECK(parse(bad.body)["error"].GetString() == std::string("limit: 'abc' is not a non-negative integer"));
    CHECK(rig.get("/api/streams?limit=100000").status == 400);
    const auto del = evs::test::http_request(rig.port(), "DELETE", "/api/overview");
    CHECK(del.status == 405);
    CHECK(del.headers.at("allow") == "GET");
  }
  SUBCASE("the dashboard's files are served with their types") {
    const auto index = rig.get("/");
    CHECK(index.status == 200);
    CHECK(index.content_type == "text/html; charset=utf-8");
    CHECK(index.body.find("/assets/app.js") != std::string::npos);
    CHECK(index.headers.at("content-security-policy").find("default-src 'self'") != std::string::npos);
    CHECK(rig.get("/assets/app.js").content_type == "text/javascript; charset=utf-8");
    CHECK(rig.get("/assets/style.css").content_type == "text/css; charset=utf-8");
    CHECK(index.headers.at("x-content-type-options") == "nosniff");
  }
  SUBCASE("a slow client is cut off at the timeout and blocks nobody meanwhile") {
    RawConnection slow(rig.port());
    slow.send("GET /api/overview HTTP/1.1\r\nHost: x\r\n");  // never finishes its header
    const auto started = std::chrono::steady_clock::now();
    CHECK(rig.get("/api/overview").status == 200);
    CHECK(std::chrono::steady_clock::now() - started < 400ms);
    const auto closed = slow.read_until_closed(5s);
    CHECK(closed.has_value());  // closed by the server
  }
  SUBCASE("connections beyond the limit get 503; the server serves again once they are gone") {
    {
      std::vector<std::unique_ptr<RawConnection>> idle;
      for (int i = 0; i < 6; ++i) idle.push_back(std::make_unique<RawConnection>(rig.port()));
      std::this_thread::sleep_for(100ms);  // accepted
      const auto over = raw("GET /api/overview HTTP/1.1\r\nHost: x\r\n\r\n");
      CHECK(status_line(over) == "HTTP/1.1 503 Service Unavailable");
    }
    std::this_thread::sleep_for(200ms);
    CHECK(rig.get("/api/overview").status == 200);
  }
  SUBCASE("keep-alive: several requests on one connection") {
    RawConnection c(rig.port());
    c.send("GET /api/overview HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"
           "GET /api/rebuilds HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n");
    const auto both = c.read_until_closed(5s);
    REQUIRE(both.has_value());
    CHECK(std::regex_search(*both, std::regex("HTTP/1.1 200 OK[^]*HTTP/1.1 200 OK")));
  }
  // After all that, the server still answers.
  CHECK(rig.get("/api/overview").status == 200);
}

TEST_CASE("http host names: on loopback only loopback names are answered (no DNS rebinding), or the allowed ones") {
  evs::test::TempDir dir;
  const auto with_host = [](std::uint16_t port, const std::string& host) {
    return evs::test::http_request(port, "GET", "/api/overview", {{"Host", host}});
  };
  SUBCASE("loopback") {
    Rig rig((dir / "events.db").string(), (dir / "read.db").string());
    const std::string port = std::to_string(rig.port());
    for (const std::string& host : std::vector<std::string>{"127.0.0.1", "127.0.0.1:" + port, "localhost:" + port,
                                                           "LOCALHOST", "[::1]:" + port})
      CHECK_MESSAGE(with_host(rig.port(), host).status == 200, host);
    const auto rebound = with_host(rig.port(), "attacker.example:" + port);
    CHECK(rebound.status == 421);
    CHECK(std::string(parse(rebound.body)["error"].GetString()).find("attacker.example") != std::string::npos);
    CHECK(with_host(rig.port(), "").status == 421);
  }
  SUBCASE("allowed names") {
    Rig rig((dir / "events.db").string(), (dir / "read.db").string(), {.allowed_hosts = {"dash.example"}});
    CHECK(with_host(rig.port(), "dash.example:7470").status == 200);
    CHECK(with_host(rig.port(), "127.0.0.1").status == 200);  // the printed address keeps working
    CHECK(with_host(rig.port(), "other.example").status == 421);
  }
}

TEST_CASE("http server: stop() closes the listener and the open connections also while the engine is stopped") {
  evs::test::TempDir dir;
  Rig rig((dir / "events.db").string(), (dir / "read.db").string());
  const std::uint16_t port = rig.port();
  RawConnection idle(port);  // answered once, then kept alive
  idle.send("GET /api/overview HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n");
  CHECK_FALSE(idle.read_until_closed(300ms).has_value());

  rig.engine().stop();  // the engine's io_context stops: no handler of the server runs from here
  rig.server().stop();
  CHECK_THROWS(RawConnection(port));  // nothing listens
  CHECK(idle.read_until_closed(2s).has_value());

  rig.engine().start();  // what the stopped server left in the io_context runs, and finds it stopped
  std::this_thread::sleep_for(200ms);
  CHECK_THROWS(RawConnection(port));
  CHECK(rig.engine().health("totals").value().state != evs::ProjectionState::failed);
}
