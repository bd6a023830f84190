// The server's network side on Boost.Beast: a listener and one session per connection, each on its own
// strand of the given io_context. Requests are answered by the Router; this file enforces the limits
// (header and body size, the timeout, the connection cap) and the server's lifetime.
#include "evs/http/server.hpp"

#include "exchange.hpp"
#include "router.hpp"
#include "site.hpp"

#include "evs/core/error.hpp"
#include "evs/projections/engine.hpp"

#include <boost/asio/dispatch.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>

#include <sodium.h>

#include <atomic>
#include <map>
#include <thread>

namespace evs::http {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace bhttp = boost::beast::http;
using tcp = asio::ip::tcp;

namespace {

class Session;

// What the listener and the sessions share. The Site and the Router belong to the Server; a handler uses
// them only between enter() and leave(), and enter() refuses once the server is stopping, so after stop()
// has waited for the handlers inside, nothing touches them again.
struct Shared {
  Shared(Site& s, Router& r) : site(s), router(r), options(s.options()) {}
  Site& site;
  Router& router;
  const ServeOptions options;  // a copy: sessions read it also after the server is gone
  std::atomic<bool> stopping{false};
  std::atomic<int> inside{0};
  std::atomic<std::size_t> connections{0};
  std::mutex mutex;
  std::map<const Session*, std::weak_ptr<Session>> sessions;

  bool enter() {
    inside.fetch_add(1);
    if (!stopping.load()) return true;
    inside.fetch_sub(1);
    return false;
  }
  void leave() { inside.fetch_sub(1); }
};

class Session : public std::enable_shared_from_this<Session> {
 public:
  Session(tcp::socket socket, std::shared_ptr<Shared> shared)
      : stream_(std::move(socket)), shared_(std::move(shared)) {}

  ~Session() {
    shared_->connections.fetch_sub(1);
    std::lock_guard lock(shared_->mutex);
    shared_->sessions.erase(this);
  }

  // `reject`: over the connection limit; answer 503 and close.
  void start(bool reject) {
    {
      std::lock_guard lock(shared_->mutex);
      shared_->sessions[this] = weak_from_this();
    }
    asio::dispatch(stream_.get_executor(), [self = shared_from_this(), reject] {
      if (self->shared_->stopping.load()) return self->close();  // accepted while stop() was closing the rest
      if (reject)
        self->send(error_response(503, "too many connections; try again later"), 11, false);
      else
        self->read();
    });
  }

  // From any thread: closes the connection on its strand, or here when the io_context is not running (no
  // handler of it can run then).
  void close_from_outside(bool io_stopped) {
    if (io_stopped) return close();
    asio::post(stream_.get_executor(), [self = shared_from_this()] { self->close(); });
  }

 private:
  const ServeOptions& options() const { return shared_->options; }

  void read() {
    parser_.emplace();
    parser_->header_limit(static_cast<std::uint32_t>(options().max_header_bytes));
    parser_->body_limit(options().max_body_bytes);
    stream_.expires_after(options().timeout);
    bhttp::async_read(stream_, buffer_, *parser_,
                      [self = shared_from_this()](beast::error_code ec, std::size_t) { self->on_read(ec); });
  }

  void on_read(beast::error_code ec) {
    if (ec == bhttp::error::end_of_stream || ec == beast::error::timeout || ec == asio::error::operation_aborted ||
        ec == asio::error::connection_reset || ec == asio::error::eof)
      return close();  // the client left, or was too slow (tcp_stream closed the socket on the timeout)
    if (ec == bhttp::error::header_limit)
      return send(error_response(431, "request header too large"), 11, false);
    if (ec == bhttp::error::body_limit) return send(error_response(413, "request body too large"), 11, false);
    if (ec) {
      if (ec.category() == bhttp::make_error_code(bhttp::error::bad_target).category())
        return send(error_response(400, "malformed request: " + ec.message()), 11, false);
      return close();
    }
    const auto& req = parser_->get();
    const bool keep_alive = req.keep_alive();
    if (!shared_->enter()) return close();
    Response response;
    {
      struct Leave {
        Shared& s;
        ~Leave() { s.leave(); }
      } leave{*shared_};
      response = answer(shared_->router, req);
    }
    send(std::move(response), req.version(), keep_alive);
  }

  void send(Response response, unsigned version, bool keep_alive) {
    auto res = std::make_shared<BeastResponse>(to_beast(response, version, keep_alive));
    stream_.expires_after(options().timeout);
    bhttp::async_write(stream_, *res, [self = shared_from_this(), res, keep_alive](beast::error_code ec, std::size_t) {
      if (ec || !keep_alive || self->shared_->stopping.load()) return self->close();
      self->read();
    });
  }

  void close() {
    beast::error_code ec;
    stream_.socket().shutdown(tcp::socket::shutdown_both, ec);
    stream_.socket().close(ec);
  }

  beast::tcp_stream stream_;
  beast::flat_buffer buffer_;
  std::optional<bhttp::request_parser<bhttp::string_body>> parser_;
  std::shared_ptr<Shared> shared_;
};

class Listener : public std::enable_shared_from_this<Listener> {
 public:
  Listener(asio::io_context& io, tcp::acceptor acceptor, std::shared_ptr<Shared> shared)
      : io_(io), acceptor_(std::move(acceptor)), shared_(std::move(shared)) {}

  void accept() {
    acceptor_.async_accept(asio::make_strand(io_), [self = shared_from_this()](beast::error_code ec, tcp::socket s) {
      if (ec == asio::error::operation_aborted || self->shared_->stopping.load()) return;
      if (ec) {
        // Out of descriptors, say: the connection waits in the backlog; try again shortly instead of spinning.
        self->retry_.expires_after(std::chrono::milliseconds(50));
        self->retry_.async_wait([self](beast::error_code) {
          if (!self->shared_->stopping.load()) self->accept();
        });
        return;
      }
      const std::size_t before = self->shared_->connections.fetch_add(1);
      const bool reject = before >= self->shared_->options.max_connections;
      std::make_shared<Session>(std::move(s), self->shared_)->start(reject);
      self->accept();
    });
  }

  // From any thread. When the io_context is not running (its engine stopped), nothing posted would run:
  // the acceptor is closed here, which is safe since no handler of it can run meanwhile.
  void close() {
    if (io_.stopped()) {
      beast::error_code ec;
      acceptor_.close(ec);
      return;
    }
    asio::post(acceptor_.get_executor(), [self = shared_from_this()] {
      beast::error_code ec;
      self->acceptor_.close(ec);
      self->retry_.cancel();
    });
  }

 private:
  asio::io_context& io_;
  tcp::acceptor acceptor_;
  asio::steady_timer retry_{acceptor_.get_executor()};
  std::shared_ptr<Shared> shared_;
};

std::string random_token() {
  unsigned char bytes[24];
  randombytes_buf(bytes, sizeof bytes);
  char hex[sizeof bytes * 2 + 1];
  sodium_bin2hex(hex, sizeof hex, bytes, sizeof bytes);
  return hex;
}

class BeastServer final : public Server {
 public:
  BeastServer(asio::io_context& io, EventStore& store, ProjectionEngine* engine, const cli::Application& app,
              ServeOptions options)
      : io_(io) {
    if (sodium_init() < 0) throw Exception(errc::io_error, "serve: libsodium could not be initialized");
    if (options.token.empty()) options.token = random_token();
    beast::error_code ec;
    const auto address = asio::ip::make_address(options.address, ec);
    if (ec) throw Exception(errc::invalid_argument, "serve: '" + options.address + "' is not an IP address");
    site_ = std::make_unique<Site>(store, engine, app, options);
    router_ = std::make_unique<Router>(*site_);
    shared_ = std::make_shared<Shared>(*site_, *router_);
    tcp::acceptor acceptor(asio::make_strand(io));
    const tcp::endpoint endpoint(address, options.port);
    acceptor.open(endpoint.protocol(), ec);
    if (!ec) acceptor.set_option(asio::socket_base::reuse_address(true), ec);
    if (!ec) acceptor.bind(endpoint, ec);
    if (!ec) acceptor.listen(asio::socket_base::max_listen_connections, ec);
    if (ec)
      throw Exception(errc::invalid_argument, "serve: cannot listen on " + options.address + ":" +
                                                  std::to_string(options.port) + ": " + ec.message());
    port_ = acceptor.local_endpoint().port();
    host_ = address.is_v6() ? "[" + options.address + "]" : options.address;
    listener_ = std::make_shared<Listener>(io, std::move(acceptor), shared_);
    listener_->accept();
  }

  ~BeastServer() override { stop(); }

  std::uint16_t port() const override { return port_; }
  const std::string& token() const override { return site_->options().token; }
  bool read_only() const override { return site_->options().read_only; }
  std::string url() const override { return "http://" + host_ + ":" + std::to_string(port_) + "/"; }
  std::string dashboard_url() const override { return read_only() ? url() : url() + "#token=" + token(); }

  void stop() override {
    if (shared_->stopping.exchange(true)) return;
    listener_->close();
    std::vector<std::shared_ptr<Session>> open;
    {
      std::lock_guard lock(shared_->mutex);
      for (auto& [key, weak] : shared_->sessions)
        if (auto s = weak.lock()) open.push_back(std::move(s));
    }
    for (auto& s : open) s->close_from_outside(io_.stopped());
    // A request being answered finishes before the Site goes away with this object.
    while (shared_->inside.load() > 0) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }

 private:
  asio::io_context& io_;
  std::unique_ptr<Site> site_;
  std::unique_ptr<Router> router_;
  std::shared_ptr<Shared> shared_;
  std::shared_ptr<Listener> listener_;
  std::uint16_t port_ = 0;
  std::string host_;
};

}  // namespace

std::unique_ptr<Server> serve(ProjectionEngine& engine, EventStore& store, const cli::Application& app,
                              ServeOptions options) {
  return std::make_unique<BeastServer>(engine.io_context(), store, &engine, app, std::move(options));
}

std::unique_ptr<Server> serve(asio::io_context& io, EventStore& store, const cli::Application& app,
                              ServeOptions options) {
  return std::make_unique<BeastServer>(io, store, nullptr, app, std::move(options));
}

}  // namespace evs::http
