// libFuzzer target: a corrupted store file. The input is written as the database file, opened read-only with
// SqliteEventStore and read completely through every read operation. Opening may fail with an evs::Exception
// and every read may return an error; anything else (a crash, UB, another exception) is a bug.
#include "fuzz_target.hpp"
#include "scratch_dir.hpp"

#include <evs/eventstore/sqlite_event_store.hpp>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <set>
#include <string>

namespace {

void read_everything(evs::SqliteEventStore& store) {
  (void)store.last_position();
  (void)store.change_token();
  (void)store.position_at(evs::Timestamp{});
  (void)store.position_at(evs::Timestamp::max());
  std::set<std::string> streams;
  std::uint64_t from = 1;
  // A corrupt file may claim anything about positions: bound the walk by the number of batches as well.
  for (int batches = 0; batches < 1000; ++batches) {
    auto batch = store.read_all(from, 64);
    if (!batch || batch->events.empty() || batch->next_position <= from) break;
    for (const auto& e : batch->events) streams.insert(e.stream_id);
    from = batch->next_position;
  }
  (void)store.read_all(1, 16, evs::ReadAllFilter{{"some.type"}, {"some"}});
  streams.insert("missing-stream");
  for (const auto& stream : streams) {
    (void)store.stream_version(stream);
    (void)store.read_stream(stream);
    (void)store.read_stream(stream, evs::ReadStreamOptions::backward_from_end(8));
    evs::ReadStreamOptions lean;
    lean.envelope = false;
    lean.until_position = 3;
    (void)store.read_stream(stream, lean);
    (void)store.load_snapshot(stream);
    (void)store.load_snapshot(stream, 1);
  }
  // Appends to a read-only store must fail cleanly.
  evs::EventData event;
  event.type = "fuzz.appended";
  (void)store.append("fuzz-1", evs::ExpectedVersion::any(), {&event, 1});
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  static const evs_fuzz::ScratchDir dir;
  dir.clear();
  evs::SqliteOptions options;
  options.path = dir.write("store.db", {reinterpret_cast<const char*>(data), size});
  options.read_only = true;
  options.busy_timeout = std::chrono::milliseconds(0);
  std::unique_ptr<evs::SqliteEventStore> store;
  try {
    store = std::make_unique<evs::SqliteEventStore>(options);
  } catch (const evs::Exception&) {
    return 0;  // a file that is not a readable evs store is refused with a clear error
  }
  read_everything(*store);
  return 0;
}
