// A store with a few streams, an engine running a SQL projection (totals) and an effect handler (mailer)
// that parks one event, and an evs::http server on them: what the server tests look at. The same rig runs
// on a SQLite file and on PostgreSQL schemas.
#pragma once

#include "../support/mailer.hpp"
#include "../support/temp_dir.hpp"
#include "../support/test_events.hpp"
#include "../tools/totals_projection.hpp"
#include "http_client.hpp"

#include <evs/eventstore/open_store.hpp>
#include <evs/http/server.hpp>
#include <evs/projections/engine.hpp>

#include <doctest/doctest.h>
#include <rapidjson/document.h>

#include <atomic>
#include <memory>
#include <stdexcept>
#include <string>
#include <thread>

namespace httptest {

using namespace std::chrono_literals;

using evs::test::Mailer;

inline evs::EventData deposit(std::int64_t cents, std::string memo = {}, std::string correlation = {}) {
  evs::EventData e = testdomain::deposit(cents, std::move(memo));
  e.metadata.correlation_id = std::move(correlation);
  return e;
}

inline rapidjson::Document parse(const std::string& body) {
  rapidjson::Document d;
  d.Parse(body.c_str(), body.size());
  REQUIRE_MESSAGE(!d.HasParseError(), "not JSON: " << body.substr(0, 300));
  return d;
}

// The streams: acc-1 (2 events, correlation c-1 on the first), acc-2 (1, c-1), acc-3 (the bad deposit,
// c-2), "odd stream/é" (1), bulk-00..bulk-19 (1 each).
constexpr int bulk_streams = 20;
constexpr int stream_count = 4 + bulk_streams;

class Rig {
 public:
  Rig(const std::string& location, const std::string& read_db, evs::http::ServeOptions options = {})
      : location_(location), store_(evs::open_store(location)) {
    const auto append = [&](const std::string& stream, std::vector<evs::EventData> events) {
      const auto r = store_->append(stream, evs::ExpectedVersion::any(), events);
      REQUIRE(r);
      head_ = r->last_position;
    };
    append("acc-1", {deposit(100, "", "c-1"), deposit(50)});
    append("acc-2", {deposit(7, "", "c-1")});
    append("acc-3", {deposit(5, "bad", "c-2")});
    append("odd stream/\xc3\xa9", {deposit(1)});
    for (int i = 0; i < bulk_streams; ++i)
      append((i < 10 ? "bulk-0" : "bulk-") + std::to_string(i), {deposit(i + 1)});
    // PostgreSQL's readers stop at the oldest transaction open on the server (other tests write to it too):
    // wait until the log readers see the last append, as the API will.
    for (int i = 0; i < 3000 && store_->last_position().value() < head_; ++i)
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    REQUIRE(store_->last_position().value() == head_);

    engine_ = std::make_unique<evs::ProjectionEngine>(*store_);
    evs::ProjectionOptions sql{.database = read_db};
    evs::ProjectionOptions effect{.database = read_db};
    effect.retry.max_attempts = 1;
    engine_->add(totals, sql);
    engine_->add(mailer, effect);
    engine_->start();
    REQUIRE(engine_->wait_for("totals", head_, 30s));
    REQUIRE(engine_->wait_for("mailer", head_, 30s));

    app_ = evs::cli::Application{"rig", location};
    app_.projections = {{&totals, sql}, {&mailer, effect}};
    options.port = 0;
    server_ = evs::http::serve(*engine_, *store_, app_, options);
  }
  ~Rig() {
    if (server_) server_->stop();
    if (engine_) engine_->stop();
  }

  evs::EventStore& store() { return *store_; }
  evs::ProjectionEngine& engine() { return *engine_; }
  evs::http::Server& server() { return *server_; }
  std::uint16_t port() const { return server_->port(); }
  std::uint64_t head() const { return head_; }
  const std::string& location() const { return location_; }

  evs::test::HttpReply get(const std::string& target) { return evs::test::http_get(port(), target); }
  evs::test::HttpReply post(const std::string& target, const std::string& token) {
    std::map<std::string, std::string> headers;
    if (!token.empty()) headers["Authorization"] = "Bearer " + token;
    return evs::test::http_request(port(), "POST", target, headers);
  }
  // GET that must answer 200 with JSON.
  rapidjson::Document json(const std::string& target) {
    const auto r = get(target);
    INFO(target << " -> " << r.status << " " << r.body.substr(0, 300));
    REQUIRE(r.status == 200);
    REQUIRE(r.content_type == "application/json");
    return parse(r.body);
  }

  rebuildtest::Totals totals;
  Mailer mailer;

 private:
  std::string location_;
  std::unique_ptr<evs::EventStore> store_;
  std::unique_ptr<evs::ProjectionEngine> engine_;
  evs::cli::Application app_;
  std::unique_ptr<evs::http::Server> server_;
  std::uint64_t head_ = 0;
};

}  // namespace httptest
