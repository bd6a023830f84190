// Backend factories for the contract suite: every EventStore test runs against each of them.
#pragma once

#include "result_printing.hpp"
#include "temp_dir.hpp"

#include <evs/eventstore/memory_event_store.hpp>
#include <evs/eventstore/sqlite_event_store.hpp>

#include <chrono>
#include <memory>
#include <thread>

#ifdef EVS_TEST_POSTGRESQL
#include "pg_server.hpp"

#include <evs/eventstore/pg_event_store.hpp>
#endif

namespace evs::test {

struct MemoryBackend {
  static constexpr const char* name = "memory";
  std::unique_ptr<EventStore> open() { return std::make_unique<MemoryEventStore>(); }
};

struct SqliteBackend {
  static constexpr const char* name = "sqlite";
  TempDir dir;
  std::unique_ptr<EventStore> open() {
    SqliteOptions o;
    o.path = dir / "events.db";
    o.durability = Durability::normal;  // the crash tests cover FULL; keep the contract suite quick
    return std::make_unique<SqliteEventStore>(o);
  }
};

#ifdef EVS_TEST_POSTGRESQL
// A PostgreSQL store whose appends return once the log readers can see them. PostgreSQL's readers stop at
// the fence, the oldest transaction open anywhere in the cluster (docs/postgresql.md): with other tests
// writing to the same server at the same time, an append can be acknowledged a few milliseconds before
// read_all sees it. The backend-templated tests assert what a read returns right after an append, so this
// wrapper waits for that point; the fence itself is tested in pg_event_store_test.cpp.
class SettledPgStore final : public EventStore {
 public:
  explicit SettledPgStore(PgOptions o) : inner_(std::move(o)) {}

  Result<AppendResult> append(std::string_view s, ExpectedVersion e, std::span<const EventData> events) override {
    auto r = inner_.append(s, e, events);
    if (r) settle(r->last_position);
    return r;
  }
  void append_async(std::string_view s, ExpectedVersion e, std::span<const EventData> events,
                    AppendCallback done) override {
    inner_.append_async(s, e, events, [this, done = std::move(done)](Result<AppendResult> r) {
      if (r) settle(r->last_position);
      done(std::move(r));
    });
  }
  Result<std::vector<RecordedEvent>> read_stream(std::string_view s, const ReadStreamOptions& o = {}) override {
    return inner_.read_stream(s, o);
  }
  Result<ReadAllBatch> read_all(std::uint64_t from, std::size_t n, const ReadAllFilter& f = {}) override {
    return inner_.read_all(from, n, f);
  }
  Result<void> read_stream_into(std::vector<RecordedEvent>& out, std::string_view s,
                                const ReadStreamOptions& o = {}) override {
    return inner_.read_stream_into(out, s, o);
  }
  Result<void> read_all_into(ReadAllBatch& out, std::uint64_t from, std::size_t n, const ReadAllFilter& f = {}) override {
    return inner_.read_all_into(out, from, n, f);
  }
  Result<std::uint64_t> stream_version(std::string_view s) override { return inner_.stream_version(s); }
  Result<std::uint64_t> last_position() override { return inner_.last_position(); }
  Result<std::uint64_t> count_events(std::uint64_t after, std::uint64_t through) override {
    return inner_.count_events(after, through);
  }
  Result<std::uint64_t> position_at(Timestamp t) override { return inner_.position_at(t); }
  std::uint64_t add_commit_listener(CommitListener l) override { return inner_.add_commit_listener(std::move(l)); }
  void remove_commit_listener(std::uint64_t id) override { inner_.remove_commit_listener(id); }
  Result<std::uint64_t> change_token() override { return inner_.change_token(); }
  Result<void> save_snapshot(const Snapshot& s) override { return inner_.save_snapshot(s); }
  Result<std::optional<Snapshot>> load_snapshot(std::string_view s, std::uint64_t max = end_of_stream) override {
    return inner_.load_snapshot(s, max);
  }
  Result<std::vector<RecordedSchema>> recorded_schemas() override { return inner_.recorded_schemas(); }

 private:
  void settle(std::uint64_t position) {
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
    while (std::chrono::steady_clock::now() < deadline) {
      auto head = inner_.last_position();
      if (!head || *head >= position) return;
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
  }
  PgEventStore inner_;
};

// A store in a schema of its own on the test server (EVS_PG_URL), dropped when the backend goes. Without a
// server the test is reported as skipped (see pg_server.hpp).
struct PgBackend {
  static constexpr const char* name = "postgresql";
  PgSchema schema;
  PgOptions options() const {
    PgOptions o;
    o.url = schema.url();
    o.schema = schema.name();
    return o;
  }
  std::unique_ptr<EventStore> open() { return std::make_unique<SettledPgStore>(options()); }
  // The store itself, without waiting for its readers after appends (for what needs the PgEventStore, such
  // as bulk transfer).
  std::unique_ptr<EventStore> open_plain() { return std::make_unique<PgEventStore>(options()); }
};
#define EVS_PG_BACKEND , ::evs::test::PgBackend
#else
#define EVS_PG_BACKEND
#endif

// The backend's store itself, without a test wrapper (for what needs the concrete store, as bulk transfer).
template <class B>
std::unique_ptr<EventStore> open_plain(B& backend) {
  if constexpr (requires { backend.open_plain(); }) {
    return backend.open_plain();
  } else {
    return backend.open();
  }
}

// Whether a backend's global positions are gap-free (1, 2, 3, ...). PostgreSQL's are unique and ascending
// but have gaps (docs/postgresql.md).
template <class B>
inline constexpr bool gap_free_positions = true;
#ifdef EVS_TEST_POSTGRESQL
template <>
inline constexpr bool gap_free_positions<PgBackend> = false;
#endif

}  // namespace evs::test

#define EVS_ALL_BACKENDS ::evs::test::MemoryBackend, ::evs::test::SqliteBackend EVS_PG_BACKEND
