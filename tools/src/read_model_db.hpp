// Internal: what `rebuild` and `replay` do to a projection's database, on either backend. The database is
// named as ProjectionOptions::database names it: a SQLite file, or a PostgreSQL schema
// ("postgresql://...?evs_schema=NAME"). Copies (the rebuild's shadow, a dry run's build, a replay's target)
// live beside it: a file next to the SQLite one, a schema next to the PostgreSQL one on the same server.
//
// The swap's contract, on both backends: the projection's tables and its checkpoints are replaced by the
// copy's in one transaction on the live database, while a live engine that runs the projection is held at
// its next batch (SQLite: the write lock; PostgreSQL: the projection's batch lock, see
// PgProjectionDb::begin_batch). Until that transaction commits the live read model is untouched.
// Failures throw Failure (or evs::Exception from the database) with the database's message.
#pragma once

#include "commands.hpp"

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>

namespace evs::cli {

// Row count and an order-independent checksum of a table.
struct TableSummary {
  bool exists = false;
  std::uint64_t rows = 0;
  std::string checksum;
};

// For each of the copy's projection tables: the live table's summary and the copy's.
using TableComparison = std::map<std::string, std::pair<TableSummary, TableSummary>>;

class ReadModelDb {
 public:
  virtual ~ReadModelDb() = default;

  // The location of a copy beside the live database, named after `kind` ("rebuild", "dryrun", "replay") and
  // `name` (the projection, and for a replay its position).
  virtual std::string copy_location(const std::string& kind, const std::string& name) const = 0;
  // Whether `location` names the live database itself.
  virtual bool is_live(const std::string& location) const = 0;
  // The projection's checkpoint in the live database: the least of its partitions' (the greatest with
  // `furthest`); 0 when it has none or the database does not exist. Creates nothing.
  virtual std::uint64_t checkpoint(const std::string& projection, bool furthest) = 0;
  // Compares the copy at `copy` with the live database, reading the live one in one snapshot. The copy
  // was built up to `built`; when the live checkpoint (furthest) in that snapshot is further, `catch_up(at)`
  // builds the copy on to it first. Returns the position compared at. Throws Failure when the live
  // checkpoint went back below `built` meanwhile. Without a live database every live summary is empty.
  virtual std::uint64_t compare(const std::string& copy, const std::string& projection, std::uint64_t built,
                                const std::function<void(std::uint64_t)>& catch_up, TableComparison& out) = 0;
  // Swaps the copy at `copy` in (see the contract above). `catch_up(live_at)` runs once the live engine is
  // held, with the live checkpoint (least): it must bring the copy to that position and stop building it.
  virtual void swap_in(const std::string& copy, const std::string& projection,
                       const std::function<void(std::uint64_t)>& catch_up) = 0;
};

// The database at `location` (ProjectionOptions::database). Throws Failure for a PostgreSQL location when
// evs was built without PostgreSQL.
std::unique_ptr<ReadModelDb> open_read_model_db(const std::string& location);
// Deletes the database at `location` (a copy: the SQLite file with its -wal and -shm, or the PostgreSQL
// schema with everything in it); nothing when there is none.
void remove_read_model_db(const std::string& location);

// The backends' implementations (sqlite_read_model_db.cpp, pg_read_model_db.cpp).
std::unique_ptr<ReadModelDb> open_sqlite_read_model_db(const std::string& path);
std::unique_ptr<ReadModelDb> open_pg_read_model_db(const std::string& target, const std::string& schema);
void remove_pg_schema(const std::string& target, const std::string& schema);

}  // namespace evs::cli
