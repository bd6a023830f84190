// What the projection databases record of each projection (see stored_projections.hpp).
#include "stored_projections.hpp"

#include "store_sql.hpp"

#include <filesystem>
#include <set>

namespace evs::cli {

std::string same_file_key(const std::string& path) {
  std::error_code ec;
  auto canonical = std::filesystem::weakly_canonical(path, ec);
  return ec ? path : canonical.string();
}

const char* kind_name(ProjectionKind k) {
  switch (k) {
    case ProjectionKind::sql: return "sql";
    case ProjectionKind::memory: return "memory";
    case ProjectionKind::effect: return "effect";
  }
  return "?";
}

// The databases that hold projection tables: --projections-db when given; else --db (a SQLite store) and
// every database the application's projections are configured with.
std::vector<std::string> projection_databases(const Context& ctx, const std::string& explicit_db) {
  if (!explicit_db.empty()) return {explicit_db};
  std::vector<std::string> out;
  std::set<std::string> seen;
  auto add = [&](const std::string& p) {
    if (!p.empty() && seen.insert(same_file_key(p)).second) out.push_back(p);
  };
  if (!ctx.db.empty() && !ctx.postgres()) add(ctx.location().target);
  for (const ProjectionEntry& e : ctx.app.projections) add(e.options.database.string());
  return out;
}

std::map<std::string, StoredProjection> read_stored_projections(const Context& ctx,
                                                                const std::vector<std::string>& databases,
                                                                const std::string& explicit_db) {
  std::map<std::string, StoredProjection> stored;
  for (const std::string& path : databases) {
    const bool sqlite_file = parse_location("the projection database", path).backend == StoreBackend::sqlite;
    if (sqlite_file && path != explicit_db && !std::filesystem::exists(path)) continue;  // not created yet
    auto sql = open_sql_at(ctx, path, false);
    if (sql->has_table("evs_checkpoints")) {
      sql->each("SELECT projection, max(partitions), count(*), min(position), max(updated_at) FROM evs_checkpoints "
                "GROUP BY projection",
                {}, [&](const SqlRow& row) {
                  const std::string name(row.text(0));
                  if (stored.contains(name) && stored[name].database != path) return;  // the first database wins
                  StoredProjection& s = stored[name];
                  s.database = path;
                  s.checkpointed = true;
                  s.partitions = static_cast<std::uint64_t>(row.integer(1));
                  // A partition without a row has processed nothing yet.
                  s.position = static_cast<std::uint64_t>(row.integer(2)) < s.partitions
                                   ? 0
                                   : static_cast<std::uint64_t>(row.integer(3));
                  s.updated_at = row.integer(4);
                });
    }
    if (sql->has_table("evs_dead_letters")) {
      sql->each("SELECT projection, CAST(sum(CASE WHEN status = 'parked' THEN 1 ELSE 0 END) AS bigint), "
                "CAST(sum(CASE WHEN status = 'retry' THEN 1 ELSE 0 END) AS bigint) FROM evs_dead_letters "
                "GROUP BY projection",
                {}, [&](const SqlRow& row) {
                  const std::string name(row.text(0));
                  if (stored.contains(name) && stored[name].database != path) return;
                  StoredProjection& s = stored[name];
                  s.database = path;
                  s.parked = static_cast<std::uint64_t>(row.integer(1));
                  s.retry = static_cast<std::uint64_t>(row.integer(2));
                });
    }
    for (auto& [name, claims] : read_claims(*sql))
      if (stored.contains(name) && stored[name].database == path) stored[name].claims = std::move(claims);
  }

  return stored;
}

}  // namespace evs::cli
