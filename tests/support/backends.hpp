// Backend factories for the contract suite: every EventStore test runs against each of them.
#pragma once

#include "result_printing.hpp"
#include "temp_dir.hpp"

#include <evs/eventstore/memory_event_store.hpp>
#include <evs/eventstore/sqlite_event_store.hpp>

#include <memory>

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
  std::unique_ptr<EventStore> open() { return std::make_unique<PgEventStore>(options()); }
};
#define EVS_PG_BACKEND , ::evs::test::PgBackend
#else
#define EVS_PG_BACKEND
#endif

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
