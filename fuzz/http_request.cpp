// libFuzzer target: the operations server's request handling (evs::http) on arbitrary bytes. Beast parses
// them as one HTTP request with the server's limits; a parsed request goes through the router and every
// route it names, on a real SQLite store with streams, checkpoints and a parked dead letter (the token is
// "fuzz", so state-changing requests can succeed too). The answer must be a valid status with a JSON error
// for every 4xx/5xx, never a crash, a hang or an exception out of the router.
#include "fuzz_target.hpp"
#include "scratch_dir.hpp"

#include "exchange.hpp"
#include "router.hpp"
#include "site.hpp"

#include <evs/eventstore/sqlite_event_store.hpp>
#include <evs/projections/engine.hpp>

#include <boost/asio/buffer.hpp>
#include <boost/beast/http/parser.hpp>

#include <cstdio>
#include <cstdlib>
#include <stdexcept>

namespace {

struct Note {
  std::string text;
};
BOOST_DESCRIBE_STRUCT(Note, (), (text))
EVS_EVENT(Note, "fuzz.note", 1)

// Parks every note it is given (one attempt): the dead letters the routes can list, show, retry and skip.
struct Refuser : evs::EffectHandler<Refuser, Note> {
  static constexpr std::string_view name = "refuser";
  void handle(const Note&) { throw std::runtime_error("refused"); }
};

struct World {
  evs_fuzz::ScratchDir dir;
  std::string db = (dir.path() / "store.db").string();
  std::string read_db = (dir.path() / "read.db").string();
  evs::SqliteEventStore store{evs::SqliteOptions{.path = db, .durability = evs::Durability::normal}};
  Refuser refuser;
  std::unique_ptr<evs::http::Site> site;
  std::unique_ptr<evs::http::Router> router;

  World() {
    for (int i = 0; i < 6; ++i) {
      evs::AppendEventOptions o;
      o.metadata.correlation_id = "c-" + std::to_string(i % 2);
      const auto stream = (i % 3 == 0 ? "note-" : "odd stream/") + std::to_string(i);
      if (!store.append_event(stream, evs::ExpectedVersion::any(), Note{"n" + std::to_string(i)}, o)) std::abort();
    }
    evs::ProjectionOptions options{.database = read_db};
    options.retry.max_attempts = 1;
    {
      evs::ProjectionEngine engine(store);
      engine.add(refuser, options);
      engine.start();
      if (!engine.wait_for("refuser", store.last_position().value(), std::chrono::seconds(30))) std::abort();
      engine.stop();
    }
    evs::cli::Application app{"fuzz", db};
    app.projections = {{&refuser, options}};
    evs::http::ServeOptions serve;
    serve.token = "fuzz";
    serve.cache_for = std::chrono::milliseconds(0);
    site = std::make_unique<evs::http::Site>(store, nullptr, app, serve);
    router = std::make_unique<evs::http::Router>(*site);
  }
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  static World world;
  namespace bhttp = boost::beast::http;
  bhttp::request_parser<bhttp::string_body> parser;
  parser.header_limit(8 * 1024);
  parser.body_limit(64 * 1024);
  parser.eager(true);
  boost::beast::error_code ec;
  std::size_t used = 0;
  while (!ec && !parser.is_done() && used < size) {
    const std::size_t n = parser.put(boost::asio::buffer(data + used, size - used), ec);
    if (n == 0 && !ec) break;  // needs more than there is
    used += n;
  }
  if (ec || !parser.is_done()) return 0;  // the server answers these 400/413/431 or waits for more
  const evs::http::Response r = evs::http::answer(*world.router, parser.get());
  if (r.status < 200 || r.status > 599 || (r.status >= 400 && r.body.rfind("{\"error\":", 0) != 0)) {
    std::fprintf(stderr, "http fuzz: answer %d: %s\n", r.status, r.body.substr(0, 200).c_str());
    std::abort();
  }
  (void)evs::http::to_beast(r, parser.get().version(), parser.get().keep_alive());
  return 0;
}
