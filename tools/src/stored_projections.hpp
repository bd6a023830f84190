// Internal: projections as their databases record them (evs_checkpoints, evs_dead_letters, evs_claims), for
// the tools that look at projections without running them: `projections`, and the HTTP server of
// `evs serve` (which has no engine in its process).
#pragma once

#include "claims.hpp"
#include "commands.hpp"

#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace evs::cli {

struct StoredProjection {
  std::string database;          // where its rows were found
  bool checkpointed = false;     // it has checkpoint rows
  std::uint64_t partitions = 0;
  std::uint64_t position = 0;    // the least partition checkpoint (0 while a partition has none)
  std::int64_t updated_at = 0;   // the last checkpoint write, microseconds since the epoch
  std::uint64_t parked = 0;      // dead letters waiting for an operator
  std::uint64_t retry = 0;       // dead letters queued for retry
  std::vector<StoredClaim> claims;  // workers under claims (ProjectionOptions::node)
};

// A key that is the same for two spellings of one file (the canonical path when it resolves).
std::string same_file_key(const std::string& path);
const char* kind_name(ProjectionKind k);

// The databases that hold projection tables: `explicit_db` when given; else --db (a SQLite store) and
// every database the application's projections are configured with.
std::vector<std::string> projection_databases(const Context& ctx, const std::string& explicit_db);

// Projection name -> what `databases` record of it (the first database that names it wins). A SQLite file
// that does not exist yet is passed over, unless it is `explicit_db`. Throws evs::Exception when a database
// cannot be read.
std::map<std::string, StoredProjection> read_stored_projections(const Context& ctx,
                                                                const std::vector<std::string>& databases,
                                                                const std::string& explicit_db);

}  // namespace evs::cli
