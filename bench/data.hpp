// The store files the scenarios work on: helpers to create and remove them, and the shared data sets, built
// once per run when a scenario first needs them.
#pragma once

#include "report.hpp"

#include <evs/eventstore/sqlite_event_store.hpp>

#include <cstddef>
#include <filesystem>
#include <optional>

namespace bench {

// Removes a SQLite file and its -wal, -shm and -journal files.
void remove_db(const fs::path& p);

// A store file with evs's schema and nothing in it (what the raw baselines write into).
void create_empty_store(const fs::path& p, evs::Durability d);

evs::SqliteOptions store_options(const fs::path& p, evs::Durability d);

struct DataSets {
  const Config& cfg;
  std::optional<fs::path> log_binary, log_json, load;
  std::size_t log_events = 0;

  std::size_t streams() const { return cfg.scale(10'000, 100); }
  std::size_t per_stream() const { return 100; }

  // The log: streams() accounts x 100 events (1M events), interleaved 10 events per append, NORMAL.
  const fs::path& log(evs::Encoding encoding);

  std::size_t load_small() const { return cfg.scale(10'000, 100); }
  std::size_t snap_small() const { return cfg.quick ? 100 : 1'000; }
  std::size_t snap_large() const { return cfg.scale(1'000'000, 10'000); }
  static constexpr std::size_t snapshot_lag = 50;  // events after the snapshot, in both snapshot streams

  // acc-l10k (10k events), acc-s1k (1k events) and acc-s1m (1M events), the last two with a snapshot
  // `snapshot_lag` events before their end.
  const fs::path& load_db();
};

}  // namespace bench
