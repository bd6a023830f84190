// http_load: the operations server under load while the engine appends and projects. The same workload runs
// without the server and with it, interleaved: 8 appender threads append 40,000 single-event appends to a
// SQLite store (durability NORMAL) while a SQL projection follows; with the server, 32 clients on keep-alive
// connections each poll /metrics and four /api/ routes every 50 ms (a room of dashboards and a scraper).
// Reported: the append rate and the projection's rate with the server against without it (target: within
// 10%), and the clients' requests, errors and latencies.
#include "data.hpp"
#include "domain.hpp"
#include "scenarios.hpp"

#include <evs/eventstore/sqlite_event_store.hpp>
#include <evs/http/server.hpp>
#include <evs/projections/engine.hpp>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>

#include <atomic>
#include <mutex>
#include <thread>

namespace bench {

namespace {

namespace bhttp = boost::beast::http;
using tcp = boost::asio::ip::tcp;

constexpr int appenders = 8;
constexpr int clients = 32;
constexpr auto poll_interval = std::chrono::milliseconds(50);
const char* const routes[] = {"/metrics", "/api/projections", "/api/overview", "/api/streams?limit=50",
                              "/api/dead-letters"};

struct ClientFigures {
  std::atomic<std::uint64_t> requests{0}, errors{0};
  std::mutex mutex;
  std::vector<double> latencies_ms;
};

// One dashboard: a keep-alive connection polling every route each interval until `stop`.
void poll(std::uint16_t port, const std::atomic<bool>& stop, ClientFigures& f) {
  boost::asio::io_context io;
  boost::beast::tcp_stream stream(io);
  boost::beast::flat_buffer buffer;
  bool connected = false;
  std::vector<double> mine;
  while (!stop) {
    for (const char* route : routes) {
      const auto t0 = SteadyClock::now();
      try {
        if (!connected) {
          stream.connect(tcp::endpoint(boost::asio::ip::make_address("127.0.0.1"), port));
          connected = true;
        }
        bhttp::request<bhttp::empty_body> req{bhttp::verb::get, route, 11};
        req.set(bhttp::field::host, "127.0.0.1");
        bhttp::write(stream, req);
        bhttp::response<bhttp::string_body> res;
        bhttp::read(stream, buffer, res);
        if (res.result_int() != 200) ++f.errors;
        if (!res.keep_alive()) {
          boost::beast::error_code ec;
          stream.socket().close(ec);
          connected = false;
        }
      } catch (const std::exception&) {
        ++f.errors;
        boost::beast::error_code ec;
        stream.socket().close(ec);
        connected = false;
      }
      ++f.requests;
      mine.push_back(seconds_since(t0) * 1000.0);
    }
    std::this_thread::sleep_for(poll_interval);
  }
  std::lock_guard lock(f.mutex);
  f.latencies_ms.insert(f.latencies_ms.end(), mine.begin(), mine.end());
}

struct RunFigures {
  Sample appended;   // events appended over the append phase
  Sample projected;  // events projected from the start until the projection reached the head
};

RunFigures run(const Config& cfg, bool with_server, ClientFigures* figures) {
  const fs::path p = cfg.dir / "http-load.db", rm = cfg.dir / "http-load-read.db";
  remove_db(p);
  remove_db(rm);
  const std::size_t per_appender = cfg.scale(5000, 20);
  RunFigures out;
  {
    evs::SqliteEventStore store(store_options(p, evs::Durability::normal));
    BalanceTable table;
    evs::ProjectionEngine engine(store);
    const evs::ProjectionOptions options{.database = rm};
    engine.add(table, options);
    engine.start();
    std::unique_ptr<evs::http::Server> server;
    std::atomic<bool> stop{false};
    std::vector<std::thread> pollers;
    if (with_server) {
      evs::cli::Application app{"evs_bench", p};
      app.projections = {{&table, options}};
      server = evs::http::serve(engine, store, app, {.port = 0});
      for (int c = 0; c < clients; ++c) pollers.emplace_back(poll, server->port(), std::cref(stop), std::ref(*figures));
      std::this_thread::sleep_for(std::chrono::milliseconds(200));  // the clients are connected and polling
    }
    const auto t0 = SteadyClock::now();
    std::vector<std::thread> threads;
    for (int a = 0; a < appenders; ++a)
      threads.emplace_back([&, a] {
        const std::string account = "acc-" + std::to_string(a);
        for (std::size_t i = 0; i < per_appender; ++i) {
          const evs::EventData e = event_data(account, static_cast<std::int64_t>(i), evs::Encoding::binary);
          store.append(account, evs::ExpectedVersion::any(), std::span(&e, 1)).value();
        }
      });
    for (auto& t : threads) t.join();
    const std::uint64_t events = per_appender * appenders;
    out.appended = {events, seconds_since(t0)};
    engine.wait_for(BalanceTable::name, store.last_position().value(), std::chrono::minutes(10)).value();
    out.projected = {events, seconds_since(t0)};
    stop = true;
    for (auto& t : pollers) t.join();
    if (server) server->stop();
    engine.stop();
  }
  remove_db(p);
  remove_db(rm);
  return out;
}

}  // namespace

void scenario_http_load(const Config& cfg, DataSets&) {
  std::vector<Sample> append_with, append_without, project_with, project_without;
  ClientFigures figures;
  for (int r = 0; r < cfg.reps; ++r) {
    const RunFigures without = run(cfg, false, nullptr);
    const RunFigures with = run(cfg, true, &figures);
    append_without.push_back(without.appended);
    project_without.push_back(without.projected);
    append_with.push_back(with.appended);
    project_with.push_back(with.projected);
  }
  const Summary aw = summarize(append_with), ab = summarize(append_without);
  const Summary pw = summarize(project_with), pb = summarize(project_without);
  const std::uint64_t errors = figures.errors;
  Json params;
  params.num("appenders", appenders).num("events_per_append", 1).str("durability", "normal")
      .num("clients", clients).num("poll_interval_ms", int(poll_interval.count()))
      .str("routes", "/metrics /api/projections /api/overview /api/streams /api/dead-letters")
      .str("baseline", "the same run without the server (evs, same run)");
  Json detail;
  detail.num("requests", std::uint64_t(figures.requests)).num("request_errors", errors)
      .num("request_p50_ms", percentile(figures.latencies_ms, 50)).num("request_p99_ms", percentile(figures.latencies_ms, 99));
  const double append_ratio = aw.rate / ab.rate, project_ratio = pw.rate / pb.rate;
  emit(cfg, "http_load_append", Json(params).str("measured", "events appended per second"), aw, ab, false,
       append_ratio, ">= 0.9 of the run without the server, no request errors", append_ratio >= 0.9 && errors == 0,
       detail);
  emit(cfg, "http_load_projection", Json(params).str("measured", "events projected per second (start to caught up)"),
       pw, pb, false, project_ratio, ">= 0.9 of the run without the server, no request errors",
       project_ratio >= 0.9 && errors == 0, detail);
}

}  // namespace bench
