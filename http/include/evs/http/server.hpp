// evs::http: the operations server of an evs application. One port serves
//   /metrics   Prometheus text exposition (prometheus-cpp): the store's appends, projections, sagas, claims;
//   /api/...   a JSON API (streams, events, correlation, projections, dead letters, rebuilds) for the
//              dashboard and for scripts;
//   /          the dashboard, a single page compiled into the binary.
// It runs on Boost.Beast, on the io_context of the application's ProjectionEngine (no thread or event loop of
// its own), and is embedded with one call:
//
//   evs::ProjectionEngine engine(store);
//   ... engine.add(...); engine.start();
//   auto server = evs::http::serve(engine, store, app, {.port = 7470});
//   std::printf("dashboard: %s\n", server->dashboard_url().c_str());
//
// `evs serve --db ...` runs the same server standalone on any store (projections as their databases record
// them). Every route and metric is listed in docs/operations.md.
//
// Security: it binds to 127.0.0.1 unless told otherwise. Reading needs nothing; every state-changing request
// (POST) needs "Authorization: Bearer <token>" (401 without it or with a wrong one) and is refused (403) in
// read-only mode. No cookies are used, so there is nothing for a cross-site request to ride on. Requests
// are bounded (header and body sizes, a timeout for a request to arrive in full, a connection limit); a bad
// one gets a 4xx with a short JSON error and closes nothing but its own connection.
#pragma once

#include "evs/cli/cli.hpp"

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace boost::asio {
class io_context;
}

namespace evs {
class EventStore;
class ProjectionEngine;
}  // namespace evs

namespace evs::http {

struct ServeOptions {
  std::string address = "127.0.0.1";  // the address to bind; anything but loopback is a deliberate choice
  std::uint16_t port = 7470;          // 0: any free port (Server::port() says which)
  std::string token;                  // the bearer token of state-changing requests; empty: a random one
  bool read_only = false;             // refuse every state-changing request (403), token or not
  std::size_t max_connections = 256;  // connections beyond it get 503 and are closed
  std::size_t max_header_bytes = 8 * 1024;  // larger request headers: 431
  std::size_t max_body_bytes = 64 * 1024;   // larger request bodies: 413
  // A request must arrive in full within it (a slow client's connection is closed); an idle keep-alive
  // connection is closed after it too.
  std::chrono::milliseconds timeout{10000};
  std::chrono::milliseconds cache_for{1000};  // how long /metrics and the health pages reuse their figures
  // Names the server answers to besides the loopback names (127.0.0.1, ::1, localhost) and the bound
  // address (the Host header, without its port); a request naming another gets 421, so that a web page whose
  // domain was rebound to 127.0.0.1 (DNS rebinding) cannot read the API from a browser on this machine.
  // Empty on an address that is not loopback: every name is answered.
  std::vector<std::string> allowed_hosts;
  // Databases with projection tables besides those the application's projections are configured with
  // (and the store's own SQLite file): where `evs serve --projections-db` finds checkpoints and dead letters.
  std::vector<std::string> projection_databases;
};

class Server {
 public:
  virtual ~Server() = default;  // stop()
  virtual std::uint16_t port() const = 0;
  virtual const std::string& token() const = 0;
  virtual bool read_only() const = 0;
  // "http://127.0.0.1:7470/"
  virtual std::string url() const = 0;
  // The dashboard's address with the token in its fragment ("...#token=..."), which the browser keeps to
  // itself: the page sends it only with the requests that change state. Without the token in read-only mode.
  virtual std::string dashboard_url() const = 0;
  // Stops accepting and closes every connection (a request being answered finishes first). Idempotent.
  virtual void stop() = 0;
};

// Serves `store` and the projections of `engine` on the engine's io_context (it must be running for requests
// to be answered: between engine.start() and engine.stop()). `app` names the store's location (default_db,
// for the streams and correlation queries), the projections' databases (dead letters, rebuild progress) and
// the registry that decodes payloads; it is copied. `store` and `engine` must outlive the server. Throws
// evs::Exception (invalid_argument) when the address does not parse or cannot be bound (in use, say).
std::unique_ptr<Server> serve(ProjectionEngine& engine, EventStore& store, const cli::Application& app,
                              ServeOptions options = {});
// The same without an engine, on the caller's io_context: projections are shown as their databases record
// them (checkpoints, dead letters, claims). What `evs serve` runs.
std::unique_ptr<Server> serve(boost::asio::io_context& io, EventStore& store, const cli::Application& app,
                              ServeOptions options = {});

}  // namespace evs::http
