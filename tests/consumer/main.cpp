#include <evs/core/event.hpp>
#include <evs/eventstore/sqlite_event_store.hpp>

#include <cstdio>

#ifdef EVS_CONSUMER_HTTP
#include <boost/asio/io_context.hpp>
#include <evs/http/server.hpp>
#endif

namespace consumer {
struct Pinged { std::int64_t n = 0; };
BOOST_DESCRIBE_STRUCT(Pinged, (), (n))
EVS_EVENT(Pinged, "consumer.pinged", 1)
}  // namespace consumer

int main(int argc, char** argv) {
  if (argc != 2) return 2;
  evs::SqliteEventStore store(evs::SqliteOptions{argv[1]});
  evs::EventData e;
  e.type = std::string(evs::event_info_v<consumer::Pinged>.name);
  e.payload = evs::encode(consumer::Pinged{7}, evs::Encoding::binary);
  auto r = store.append("ping-1", evs::ExpectedVersion::any(), std::vector{e});
  if (!r) return 1;
  auto back = store.read_stream("ping-1").value();
  auto ping = evs::decode<consumer::Pinged>(back.back().payload, back.back().encoding).value();
#ifdef EVS_CONSUMER_HTTP
  boost::asio::io_context io;
  auto server = evs::http::serve(io, store, evs::cli::Application{"consumer", argv[1]}, {.port = 0});
  if (server->port() == 0) return 1;
  server->stop();
#endif
  std::printf("consumer: stored ping %lld at position %llu\n", static_cast<long long>(ping.n),
              static_cast<unsigned long long>(r->last_position));
  return ping.n == 7 ? 0 : 1;
}
