// Child process for multi_process_writers_test: appends to a shared SQLite store as fast as it can and
// prints one line per acknowledged append to stdout, flushed at once:
//   ack <stream> <stream_version> <first_position> <last_position> <event id>,<event id>,...
// Any failure other than an expected version conflict prints `error <code> <message>` and exits with 3.
// It runs until killed. Modes:
//   sync      two threads, synchronous appends (ExpectedVersion::any) back to back to shared streams
//   async     one thread keeping up to eight append_async calls in flight on shared streams
//   expected  two threads appending to shared counters with the exact version they last read, re-reading
//             after a conflict
// DB: a SQLite path, or any location evs::open_store takes (a postgresql:// URL). Durability: full or normal,
// BUSY_MS: SqliteOptions::busy_timeout in milliseconds (both SQLite only).
#include <evs/core/envelope.hpp>
#include <evs/eventstore/open_store.hpp>
#include <evs/eventstore/sqlite_event_store.hpp>

#include <memory>

#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <mutex>
#include <random>
#include <string>
#include <thread>
#include <vector>

namespace {

std::mutex out_mutex;

void print_ack(const std::string& stream, const evs::AppendResult& r, const std::vector<evs::EventData>& batch) {
  std::string ids;
  for (const auto& e : batch) ids += (ids.empty() ? "" : ",") + e.event_id.to_string();
  std::lock_guard lock(out_mutex);
  std::printf("ack %s %llu %llu %llu %s\n", stream.c_str(), static_cast<unsigned long long>(r.stream_version),
              static_cast<unsigned long long>(r.first_position), static_cast<unsigned long long>(r.last_position),
              ids.c_str());
  std::fflush(stdout);
}

[[noreturn]] void fail(const evs::Error& e) {
  std::lock_guard lock(out_mutex);
  std::printf("error %d %s\n", e.code.value(), e.message.c_str());
  std::fflush(stdout);
  std::_Exit(3);
}

std::vector<evs::EventData> make_batch(std::mt19937& rng) {
  std::vector<evs::EventData> batch(1 + rng() % 3);
  for (auto& e : batch) {
    e.type = "multi.tick";
    e.payload = std::string(50 + rng() % 150, 'p');
  }
  return batch;
}

void sync_appender(evs::EventStore& store, unsigned seed) {
  std::mt19937 rng(seed);
  for (;;) {
    const std::string stream = "shared-" + std::to_string(rng() % 8);
    const auto batch = make_batch(rng);
    auto r = store.append(stream, evs::ExpectedVersion::any(), batch);
    if (!r) fail(r.error());
    print_ack(stream, *r, batch);
  }
}

void async_appender(evs::EventStore& store, unsigned seed) {
  std::mt19937 rng(seed);
  std::mutex mutex;
  std::condition_variable cv;
  int in_flight = 0;
  for (;;) {
    {
      std::unique_lock lock(mutex);
      cv.wait(lock, [&] { return in_flight < 8; });
      ++in_flight;
    }
    const std::string stream = "shared-" + std::to_string(rng() % 8);
    auto batch = make_batch(rng);
    store.append_async(stream, evs::ExpectedVersion::any(), batch, [&, stream, batch](evs::Result<evs::AppendResult> r) {
      if (!r) fail(r.error());
      print_ack(stream, *r, batch);
      std::lock_guard lock(mutex);
      --in_flight;
      cv.notify_one();
    });
  }
}

void expected_appender(evs::EventStore& store, unsigned seed) {
  std::mt19937 rng(seed);
  for (;;) {
    const std::string stream = "counter-" + std::to_string(rng() % 4);
    const auto batch = make_batch(rng);
    for (;;) {
      auto version = store.stream_version(stream);
      if (!version) fail(version.error());
      auto r = store.append(stream, evs::ExpectedVersion::exact(*version), batch);
      if (r) {
        print_ack(stream, *r, batch);
        break;
      }
      if (!r.error().is(evs::errc::wrong_expected_version)) fail(r.error());
    }
  }
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 6) {
    std::fprintf(stderr, "usage: multi_writer DB SEED sync|async|expected full|normal BUSY_MS\n");
    return 2;
  }
  const std::string mode = argv[3];
  const auto seed = static_cast<unsigned>(std::stoul(argv[2]));
  const std::string db = argv[1];
  try {
    std::unique_ptr<evs::EventStore> opened;
    if (evs::parse_store_location(db).value().backend == evs::StoreBackend::sqlite) {
      evs::SqliteOptions o;
      o.path = db;
      o.durability = std::string(argv[4]) == "full" ? evs::Durability::full : evs::Durability::normal;
      o.busy_timeout = std::chrono::milliseconds(std::stol(argv[5]));
      opened = std::make_unique<evs::SqliteEventStore>(o);
    } else {
      opened = evs::open_store(db);
    }
    evs::EventStore& store = *opened;
    std::vector<std::thread> threads;
    if (mode == "async") {
      async_appender(store, seed);
    } else if (mode == "sync" || mode == "expected") {
      for (unsigned t = 0; t < 2; ++t)
        threads.emplace_back([&, t] {
          if (mode == "sync")
            sync_appender(store, seed * 31 + t);
          else
            expected_appender(store, seed * 31 + t);
        });
    } else {
      std::fprintf(stderr, "multi_writer: unknown mode %s\n", mode.c_str());
      return 2;
    }
    for (auto& th : threads) th.join();
  } catch (const evs::Exception& e) {
    fail(e.error());
  }
}
