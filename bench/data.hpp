// The store files the scenarios work on: helpers to create and remove them, and the shared data sets, built
// once per run when a scenario first needs them.
#pragma once

#include "report.hpp"

#include <evs/eventstore/sqlite_event_store.hpp>

#include <evs/core/envelope.hpp>

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <optional>
#include <string>

namespace bench {

// Removes a SQLite file and its -wal, -shm and -journal files.
void remove_db(const fs::path& p);

// A store file with evs's schema and nothing in it (what the raw baselines write into).
void create_empty_store(const fs::path& p, evs::Durability d);

evs::SqliteOptions store_options(const fs::path& p, evs::Durability d);

// The event a data set stores as number `seq` of stream `stream`.
using EventMaker = std::function<evs::EventData(const std::string& stream, std::int64_t seq)>;

struct DataSets {
  const Config& cfg;
  std::optional<fs::path> log_binary, log_json, load, log_versioned_current, log_versioned_old, load_versioned;
  std::size_t log_events = 0;

  std::size_t streams() const { return cfg.scale(10'000, 100); }
  std::size_t per_stream() const { return 100; }

  // The log: streams() accounts x 100 events (1M events), interleaved 10 events per append, NORMAL.
  const fs::path& log(evs::Encoding encoding);
  // The same log of versioned events (bench::versioned): all current (version 2), or with every other event
  // stored as version 1 (`with_old`).
  const fs::path& versioned_log(bool with_old);

  std::size_t load_small() const { return cfg.scale(10'000, 100); }
  std::size_t snap_small() const { return cfg.quick ? 100 : 1'000; }
  std::size_t snap_large() const { return cfg.scale(1'000'000, 10'000); }
  static constexpr std::size_t snapshot_lag = 50;  // events after the snapshot, in both snapshot streams

  // acc-l10k (10k events), acc-s1k (1k events) and acc-s1m (1M events), the last two with a snapshot
  // `snapshot_lag` events before their end.
  const fs::path& load_db();
  // acc-current (load_small() versioned events, all current) and acc-half-v1 (the same events, every other
  // one stored as version 1), no snapshots.
  const fs::path& versioned_load_db();

 private:
  // Builds (or with --reuse, finds) the log file `name` of streams() x per_stream() events from `event`.
  const fs::path& build_log(std::optional<fs::path>& slot, const char* name, const EventMaker& event);
};

}  // namespace bench
