// `evs workers`: the nodes working projections under claims (ProjectionOptions::node), with the partitions
// each holds; and the claim readers `projections` shares (claims.hpp).
#include "claims.hpp"
#include "commands.hpp"
#include "format.hpp"

#include <algorithm>
#include <filesystem>
#include <set>

namespace evs::cli {

namespace {

// The database's clock, in microseconds since the epoch (the clock leases are taken from).
std::int64_t database_now(StoreSql& sql) {
  return sql.scalar(sql.postgres() ? "SELECT (extract(epoch FROM clock_timestamp()) * 1000000)::bigint"
                                   : "SELECT CAST((julianday('now') - 2440587.5) * 86400000000 AS INTEGER)");
}

}  // namespace

std::map<std::string, std::vector<StoredClaim>> read_claims(StoreSql& sql) {
  std::map<std::string, std::vector<StoredClaim>> out;
  if (!sql.has_table("evs_claims")) return out;
  const std::int64_t now = database_now(sql);
  sql.each("SELECT projection, partition, owner, epoch, lease_until FROM evs_claims ORDER BY projection, partition", {},
           [&](const SqlRow& row) {
             StoredClaim c;
             c.partition = static_cast<std::uint64_t>(row.integer(1));
             if (!row.is_null(2)) c.owner = std::string(row.text(2));
             c.epoch = static_cast<std::uint64_t>(row.integer(3));
             c.lease_until = row.integer(4);
             c.lease_left = c.lease_until - now;
             out[std::string(row.text(0))].push_back(std::move(c));
           });
  return out;
}

std::vector<StoredNode> read_nodes(StoreSql& sql) {
  std::vector<StoredNode> out;
  if (!sql.has_table("evs_nodes")) return out;
  const std::int64_t now = database_now(sql);
  sql.each("SELECT projection, node, lease_until FROM evs_nodes ORDER BY projection, node", {}, [&](const SqlRow& row) {
    out.push_back({std::string(row.text(0)), std::string(row.text(1)), row.integer(2) - now});
  });
  return out;
}

std::string claims_summary(const std::vector<StoredClaim>& claims, std::uint64_t partitions) {
  if (claims.empty()) return "-";
  std::map<std::string, std::string> by_holder;
  std::set<std::uint64_t> claimed;
  for (const StoredClaim& c : claims) {
    const std::string holder = c.held() ? c.owner : "free";
    auto& list = by_holder[holder];
    list += (list.empty() ? "" : " ") + std::to_string(c.partition);
    claimed.insert(c.partition);
  }
  for (std::uint64_t p = 0; p < partitions; ++p)
    if (!claimed.contains(p)) {
      auto& list = by_holder["free"];
      list += (list.empty() ? "" : " ") + std::to_string(p);
    }
  std::string out;
  for (const auto& [holder, list] : by_holder) {
    if (holder == "free") continue;
    out += (out.empty() ? "" : ", ") + holder + ": " + list;
  }
  if (by_holder.contains("free")) out += (out.empty() ? "" : ", ") + std::string("free: ") + by_holder["free"];
  return out;
}

namespace {

struct WorkersArgs {
  std::string projections_db;
};

void workers(Context& ctx, const WorkersArgs& args) {
  std::vector<std::string> databases;
  if (!args.projections_db.empty()) {
    databases.push_back(args.projections_db);
  } else {
    std::set<std::string> seen;
    for (const ProjectionEntry& e : ctx.app.projections)
      if (!e.options.database.empty() && seen.insert(e.options.database.string()).second)
        databases.push_back(e.options.database.string());
    if (databases.empty()) throw CLI::RequiredError("--projections-db");
  }
  Table table({"node", "projection", "alive", "partitions", "epochs", "lease left"}, {false, false, false, false, false, true});
  bool any = false;
  for (const std::string& db : databases) {
    if (parse_location("the projection database", db).backend == StoreBackend::sqlite && !std::filesystem::exists(db))
      throw Failure("the projection database " + db + " does not exist");
    auto sql = open_sql_at(ctx, db, false);
    const auto claims = read_claims(*sql);
    auto nodes = read_nodes(*sql);
    // Owners whose presence row is gone (a node from before presence rows, or removed by hand) still show.
    for (const auto& entry : claims) {
      const std::string& projection = entry.first;  // named: lambdas cannot capture structured bindings in C++20
      for (const StoredClaim& c : entry.second)
        if (c.held() && std::none_of(nodes.begin(), nodes.end(), [&](const StoredNode& n) {
              return n.projection == projection && n.node == c.owner;
            }))
          nodes.push_back({projection, c.owner, c.lease_left});
    }
    for (const StoredNode& n : nodes) {
      any = true;
      std::string partitions, epochs;
      std::int64_t lease_left = -1;
      std::vector<JsonObject> held;
      if (auto it = claims.find(n.projection); it != claims.end())
        for (const StoredClaim& c : it->second) {
          if (c.owner != n.node || !c.held()) continue;
          partitions += (partitions.empty() ? "" : " ") + std::to_string(c.partition);
          epochs += (epochs.empty() ? "" : " ") + std::to_string(c.epoch);
          lease_left = std::max(lease_left, c.lease_left);
          JsonObject o;
          o.num("partition", c.partition).num("epoch", c.epoch).str("lease_until", iso_time(c.lease_until));
          held.push_back(std::move(o));
        }
      const bool alive = n.lease_left >= 0;
      if (ctx.json) {
        JsonObject o;
        o.str("node", n.node).str("projection", n.projection).str("database", without_password(db));
        o.boolean("alive", alive).objects("claims", held);
        ctx.out << o.text() << '\n';
      } else {
        table.row({n.node, n.projection, alive ? "yes" : "no (presence ran out)", partitions.empty() ? "-" : partitions,
                   epochs.empty() ? "-" : epochs,
                   lease_left >= 0 ? human_duration(static_cast<double>(lease_left) / 1e6) : "-"});
      }
    }
  }
  if (!ctx.json) {
    if (any)
      table.print(ctx.out);
    else
      ctx.out << "no worker nodes: no projection here runs with ProjectionOptions::node\n";
  }
}

}  // namespace

void add_worker_commands(CLI::App& cli, Context& ctx) {
  auto args = std::make_shared<WorkersArgs>();
  auto* sub = cli.add_subcommand("workers", "Worker nodes of projections run under claims, with the partitions each holds");
  sub->add_option("--projections-db", args->projections_db,
                  "the projection database (default: those the application's projections are configured with)")
      ->option_text("PATH|URL");
  sub->footer(
      "Read from evs_nodes (each node renews its presence while it runs) and evs_claims (the owner, epoch and "
      "lease of each partition) in the projection database. alive: the node renewed its presence within its "
      "lease. A partition whose lease ran out is free: the next node to look takes it, with a new epoch. Leases "
      "are compared with the database's clock.");
  sub->callback([&ctx, args] { workers(ctx, *args); });
}

}  // namespace evs::cli
