// A deliberately broken program for upcast_test: an old version of an event without its upcaster. It must
// stop at its first dispatched event, before decoding anything, naming the missing link.
#include <evs/core/dispatch.hpp>

#include <cstdio>

namespace broken {
struct E { int a = 0; int b = 0; };
EVS_EVENT(E, "broken.e", 2, a, b)
namespace v1 {
struct E { int a = 0; };
EVS_EVENT(E, "broken.e", 1, a)
}  // namespace v1
}  // namespace broken

int main() {
  std::puts("main ran");
  std::fflush(stdout);
  evs::RecordedEvent e;
  const evs::EventData d = evs::make_event_data(broken::E{1, 2});
  e.type = d.type;
  e.schema_version = d.schema_version;
  e.payload = d.payload;
  auto r = evs::dispatch_event<broken::E>(e, "main", [](const broken::E&) { std::puts("dispatched"); });
  return r ? 0 : 1;
}
