#include <evs/core/event.hpp>
#include <evs/eventstore/sqlite_event_store.hpp>

#include <cstdio>

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
  std::printf("consumer: stored ping %lld at position %llu\n", static_cast<long long>(ping.n),
              static_cast<unsigned long long>(r->last_position));
  return ping.n == 7 ? 0 : 1;
}
