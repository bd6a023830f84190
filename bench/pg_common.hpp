// What the PostgreSQL scenarios share: their schemas (one fresh schema per side of each scenario, dropped
// before and after, so runs and scenarios never see each other's rows), the evs store's options, and the log
// they read.
#pragma once

#include "report.hpp"

#include <evs/eventstore/pg_event_store.hpp>

#include <cstddef>
#include <cstdint>
#include <string>

namespace bench {

// The store's options on the scenario's server: `schema`, everything else evs's defaults.
evs::PgOptions pg_options(const std::string& url, const std::string& schema);

// A schema named evs_bench_<name>: dropped with everything in it on construction (what an earlier, interrupted
// run left) and on destruction.
class PgSchema {
 public:
  PgSchema(const Config& cfg, const std::string& name);
  ~PgSchema();
  PgSchema(const PgSchema&) = delete;
  PgSchema& operator=(const PgSchema&) = delete;
  const std::string& name() const { return name_; }
  const std::string& url() const { return url_; }
  // Drops it again (before the next repetition).
  void reset();
  // Drops it and creates evs's tables in it, empty (opening a PgEventStore there): what a raw baseline writes
  // into, so both sides have the same tables and indexes.
  void create_empty_store();
  evs::PgOptions options() const { return pg_options(url_, name_); }

 private:
  std::string url_, name_;
};

// Readies `store` for a timed append run as the raw appender's constructor readies its connection: the
// writer connected, both event types interned and their schemas recorded, by one append of a deposit and a
// withdrawal to `stream` (a stream the run does not use). Throws if it fails.
void warm_up_appends(evs::EventStore& store, const std::string& stream);

// The log the read scenarios read: `events` binary events appended by evs into `schema`, 100 events per
// append round-robin over 100 streams (append_batches), then ANALYZEd. Returns the log's last position.
std::uint64_t build_pg_log(const PgSchema& schema, std::size_t events);

// The evs location of `schema` on the server `url` (ProjectionOptions::database, open_store).
std::string pg_location(const std::string& url, const std::string& schema);

}  // namespace bench
