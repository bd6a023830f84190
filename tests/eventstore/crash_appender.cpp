// Child process for crash_test: appends from several threads to a SQLite store with FULL durability and
// prints one line per acknowledged append to stdout, flushed at once:
//   <stream> <stream_version> <first_position> <last_position> <event id of the last event>
// It runs until killed.
#include <evs/core/envelope.hpp>
#include <evs/eventstore/sqlite_event_store.hpp>

#include <cstdio>
#include <mutex>
#include <random>
#include <string>
#include <thread>
#include <vector>

int main(int argc, char** argv) {
  if (argc != 3) {
    std::fprintf(stderr, "usage: crash_appender DB SEED\n");
    return 2;
  }
  evs::SqliteOptions o;
  o.path = argv[1];
  o.durability = evs::Durability::full;
  evs::SqliteEventStore store(o);
  std::mutex out;
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      std::mt19937 rng(static_cast<unsigned>(std::stoul(argv[2]) * 31 + t));
      for (;;) {
        const std::string stream = "crash-" + std::to_string(rng() % 16);
        std::vector<evs::EventData> batch(1 + rng() % 3);
        for (auto& e : batch) {
          e.type = "crash.tick";
          e.payload = std::string(100 + rng() % 100, 'p');
        }
        auto r = store.append(stream, evs::ExpectedVersion::any(), batch);
        if (!r) {
          std::fprintf(stderr, "append failed: %s\n", r.error().what().c_str());
          std::_Exit(3);
        }
        std::lock_guard lock(out);
        std::printf("%s %llu %llu %llu %s\n", stream.c_str(), static_cast<unsigned long long>(r->stream_version),
                    static_cast<unsigned long long>(r->first_position),
                    static_cast<unsigned long long>(r->last_position), batch.back().event_id.to_string().c_str());
        std::fflush(stdout);
      }
    });
  }
  for (auto& th : threads) th.join();
}
