// Internal: the claims of projection workers (ProjectionOptions::node) as the tool reads them from a
// projection database: evs_claims (one row per partition ever claimed) and evs_nodes (each node's presence).
// Leases are compared with the database's clock (PostgreSQL: the server's; SQLite: this machine's), the clock
// the workers use. Used by `projections` and `workers`.
#pragma once

#include "store_sql.hpp"

#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace evs::cli {

struct StoredClaim {
  std::uint64_t partition = 0;
  std::string owner;            // empty: free (released or never owned)
  std::uint64_t epoch = 0;
  std::int64_t lease_until = 0;  // microseconds since the epoch, database clock
  std::int64_t lease_left = 0;   // lease_until - now; negative: expired (the partition is free to take)
  bool held() const { return !owner.empty() && lease_left >= 0; }
};

struct StoredNode {
  std::string projection, node;
  std::int64_t lease_left = 0;  // negative: the node stopped renewing its presence
};

// projection -> its claims by partition; empty when the database has no evs_claims table.
std::map<std::string, std::vector<StoredClaim>> read_claims(StoreSql& sql);
// Every node row (alive or not), by projection and node; empty without evs_nodes.
std::vector<StoredNode> read_nodes(StoreSql& sql);
// "node-a: 0 2, node-b: 1, free: 3" (partitions by holder), or "-" without claims.
std::string claims_summary(const std::vector<StoredClaim>& claims, std::uint64_t partitions);

}  // namespace evs::cli
