// ReadModelDb on a PostgreSQL schema: copies are schemas beside it on the same server
// ("<schema>_rebuild_<name>"). The swap holds the projection's batch lock exclusively (the live engine's
// batches hold it shared, see PgProjectionDb::begin_batch), then moves the copy's tables into the live schema
// (DROP TABLE + ALTER TABLE ... SET SCHEMA: no rows are copied, indexes and sequences move with their table)
// and replaces the projection's checkpoints, in one transaction. Readers of the live tables wait only for
// that transaction's short tail (the DROP's lock); a table something else depends on (a view) is not
// dropped: the swap fails with PostgreSQL's message and changes nothing.
#include "read_model_db.hpp"
#include "sql.hpp"

#include "evs/eventstore/open_store.hpp"
#include "evs/projections/sql_database.hpp"

#include "pg/pg_connection.hpp"
#include "pg/pg_schema.hpp"

#include <cstdio>
#include <vector>

namespace evs::cli {
namespace {

constexpr std::string_view action = "rebuild a read model in";

// PostgreSQL truncates identifiers past 63 bytes; a longer copy name keeps its start and a hash of the whole.
std::string copy_schema_name(const std::string& schema, const std::string& kind, const std::string& name) {
  std::string out = schema + "_" + kind + "_";
  for (const char c : name) out += (std::isalnum(static_cast<unsigned char>(c)) || c == '_') ? c : '_';
  if (out.size() <= 63) return out;
  char hash[18];
  std::snprintf(hash, sizeof hash, "_%016llx",
                static_cast<unsigned long long>(pg::advisory_key(schema, kind + "/" + name)));
  return out.substr(0, 63 - 17) + hash;
}

std::string location_of(const std::string& target, const std::string& schema) {
  if (target.rfind("postgres", 0) == 0)
    return target + (target.find('?') == std::string::npos ? "?" : "&") + "evs_schema=" + schema;
  return target + " evs_schema=" + schema;
}

pg::PgConnection connect_to(const std::string& target) {
  pg::PgConnectOptions options;
  options.application_name = "evs rebuild";
  // The swap's transaction waits for the copy to catch up; it takes no transaction id meanwhile, so it
  // does not hold the store's readers back (docs/postgresql.md).
  options.idle_in_transaction_timeout = std::chrono::minutes(10);
  return must(pg::PgConnection::connect(target, options));
}

class PgReadModelDb final : public ReadModelDb {
 public:
  PgReadModelDb(std::string target, std::string schema) : target_(std::move(target)), schema_(std::move(schema)) {}

  std::string copy_location(const std::string& kind, const std::string& name) const override {
    return location_of(target_, copy_schema_name(schema_, kind, name));
  }

  bool is_live(const std::string& location) const override {
    auto other = parse_store_location(location);
    return other && other->backend == StoreBackend::postgresql && other->target == target_ &&
           other->schema == schema_;
  }

  std::uint64_t checkpoint(const std::string& projection, bool furthest) override {
    auto c = connect();
    return stored_checkpoint(c, schema_, projection, furthest);
  }

  std::uint64_t compare(const std::string& copy_at, const std::string& projection, std::uint64_t built,
                        const std::function<void(std::uint64_t)>& catch_up, TableComparison& out) override {
    const std::string copy = copy_schema(copy_at);
    auto live = connect();
    // One snapshot of the live read model for the position and every table; the copy is read apart, after
    // it has caught up.
    must(live.exec("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY", action));
    const std::uint64_t at = stored_checkpoint(live, schema_, projection, true);
    if (at < built)
      throw Failure("the live read model went back from position " + std::to_string(built) + " to " +
                    std::to_string(at) + " during the dry run (a rebuild swapped it in?); run the dry run again");
    if (at > built) catch_up(at);
    auto other = connect();
    for (const std::string& table : tables(other, copy))
      out[table] = {summarize(live, schema_, table), summarize(other, copy, table)};
    must(live.exec("ROLLBACK", action));
    return at;
  }

  void swap_in(const std::string& copy_at, const std::string& projection,
               const std::function<void(std::uint64_t)>& catch_up) override {
    const std::string copy = copy_schema(copy_at);
    SqlDatabase::open(location_of(target_, schema_));  // the live schema and its checkpoint table exist
    auto c = connect();
    must(c.exec("BEGIN", action));
    pg::PgParams key;
    key.int64(pg::projection_batch_key(schema_, projection));
    must(c.query("SELECT pg_advisory_xact_lock($1)", key, action));  // the live batches are held from here
    catch_up(stored_checkpoint(c, schema_, projection, false));
    const std::string live = pg::quote_identifier(schema_);
    for (const std::string& table : tables(c, copy)) {
      const std::string name = pg::quote_identifier(table);
      must(c.exec("DROP TABLE IF EXISTS " + live + "." + name, action));
      must(c.exec("ALTER TABLE " + pg::quote_identifier(copy) + "." + name + " SET SCHEMA " + live, action));
    }
    pg::PgParams p;
    p.text(projection);
    must(c.query("DELETE FROM " + live + ".evs_checkpoints WHERE projection = $1", p, action));
    must(c.query("INSERT INTO " + live + ".evs_checkpoints SELECT * FROM " + pg::quote_identifier(copy) +
                     ".evs_checkpoints WHERE projection = $1",
                 p, action));
    must(c.exec("COMMIT", action));
  }

 private:
  pg::PgConnection connect() const { return connect_to(target_); }

  std::string copy_schema(const std::string& location) const {
    const StoreLocation copy = must(parse_store_location(location));
    if (copy.backend != StoreBackend::postgresql || copy.target != target_)
      throw Failure("the copy must be on the live read model's server: " + location);
    return copy.schema;
  }

  // The projection's own tables in `schema`: every table but evs_*.
  static std::vector<std::string> tables(pg::PgConnection& c, const std::string& schema) {
    pg::PgParams p;
    p.text(schema);
    const auto r = must(c.query("SELECT tablename FROM pg_tables WHERE schemaname = $1 AND tablename NOT LIKE "
                                "'evs\\_%' ORDER BY tablename",
                                p, action));
    std::vector<std::string> out;
    for (int i = 0; i < r.rows(); ++i) out.emplace_back(r.text(i, 0));
    return out;
  }

  static bool has_table(pg::PgConnection& c, const std::string& schema, const std::string& table) {
    pg::PgParams p;
    p.text(pg::quote_identifier(schema) + "." + pg::quote_identifier(table));
    return !must(c.query("SELECT to_regclass($1)::text", p, action)).is_null(0, 0);
  }

  static std::uint64_t stored_checkpoint(pg::PgConnection& c, const std::string& schema,
                                         const std::string& projection, bool furthest) {
    if (!has_table(c, schema, "evs_checkpoints")) return 0;
    pg::PgParams p;
    p.text(projection);
    const auto r = must(c.query(std::string("SELECT coalesce(") + (furthest ? "max" : "min") + "(position), 0) FROM " +
                                    pg::quote_identifier(schema) + ".evs_checkpoints WHERE projection = $1",
                                p, action));
    return static_cast<std::uint64_t>(r.int64(0, 0));
  }

  // Row count and the sum of per-row hashes of the rows' text forms.
  static TableSummary summarize(pg::PgConnection& c, const std::string& schema, const std::string& table) {
    TableSummary s;
    if (!has_table(c, schema, table)) return s;
    s.exists = true;
    const auto r = must(c.query("SELECT count(*), coalesce(sum(hashtextextended(t::text, 0)::numeric), 0)::text FROM " +
                                    pg::quote_identifier(schema) + "." + pg::quote_identifier(table) + " AS t",
                                {}, action));
    s.rows = static_cast<std::uint64_t>(r.int64(0, 0));
    s.checksum = std::string(r.text(0, 1));
    return s;
  }

  std::string target_;
  std::string schema_;
};

}  // namespace

void remove_pg_schema(const std::string& target, const std::string& schema) {
  auto c = connect_to(target);
  must(c.exec("DROP SCHEMA IF EXISTS " + pg::quote_identifier(schema) + " CASCADE", action));
}

std::unique_ptr<ReadModelDb> open_pg_read_model_db(const std::string& target, const std::string& schema) {
  return std::make_unique<PgReadModelDb>(target, schema);
}

}  // namespace evs::cli
