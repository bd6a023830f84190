// Backend factories for the contract suite: every EventStore test runs against each of them.
#pragma once

#include "result_printing.hpp"
#include "temp_dir.hpp"

#include <evs/eventstore/memory_event_store.hpp>
#include <evs/eventstore/sqlite_event_store.hpp>

#include <memory>

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

}  // namespace evs::test

#define EVS_ALL_BACKENDS ::evs::test::MemoryBackend, ::evs::test::SqliteBackend
