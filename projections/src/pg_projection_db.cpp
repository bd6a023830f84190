#include "pg_projection_db.hpp"

#include "pg/pg_schema.hpp"

#include <algorithm>
#include <chrono>

namespace evs::detail {
namespace {

constexpr std::string_view action = "update projection state in";

constexpr std::string_view tables = R"sql(
CREATE TABLE IF NOT EXISTS evs_checkpoints (
  projection text NOT NULL,
  partition  integer NOT NULL,
  partitions integer NOT NULL,
  position   bigint NOT NULL,
  updated_at bigint NOT NULL,
  PRIMARY KEY (projection, partition)
);
CREATE TABLE IF NOT EXISTS evs_dead_letters (
  id         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  projection text NOT NULL,
  position   bigint NOT NULL,
  event_id   bytea NOT NULL,
  stream     text NOT NULL,
  type       text NOT NULL,
  error      text NOT NULL,
  attempts   integer NOT NULL,
  parked_at  bigint NOT NULL,
  status     text NOT NULL DEFAULT 'parked',
  UNIQUE (projection, event_id)
);
CREATE TABLE IF NOT EXISTS evs_inbox (
  projection   text NOT NULL,
  event_id     bytea NOT NULL,
  processed_at bigint NOT NULL,
  PRIMARY KEY (projection, event_id)
);
CREATE TABLE IF NOT EXISTS evs_claims (
  projection  text NOT NULL,
  partition   integer NOT NULL,
  owner       text,
  epoch       bigint NOT NULL,
  lease_until bigint NOT NULL,
  PRIMARY KEY (projection, partition)
);
CREATE TABLE IF NOT EXISTS evs_nodes (
  projection  text NOT NULL,
  node        text NOT NULL,
  lease_until bigint NOT NULL,
  PRIMARY KEY (projection, node)
);
)sql";


}  // namespace

std::unique_ptr<PgProjectionDb> PgProjectionDb::open(const std::string& url, const std::string& schema,
                                                    std::chrono::milliseconds claim_lease) {
  pg::PgConnectOptions options;
  if (claim_lease.count() > 0)
    options.idle_in_transaction_timeout = std::min(options.idle_in_transaction_timeout, claim_lease);
  options.search_path = schema;
  options.application_name = "evs projections";
  auto db = std::make_unique<PgProjectionDb>(must(pg::PgConnection::connect(url, options)), schema);
  pg::PgConnection& c = db->connection_;
  const std::string open = "open the projection database";
  db->begin_setup();  // concurrent openers create the tables once
  must(c.exec("CREATE SCHEMA IF NOT EXISTS " + pg::quote_identifier(schema), open));
  must(c.exec(tables, open));
  db->commit();
  return db;
}


pg::PgConnection& PgProjectionDb::connection() {
  if (connection_.broken()) {
    if (in_transaction_)
      throw Exception(errc::unavailable, "update projection state in " + connection_.target() +
                                             ": the connection was lost during the batch; it is retried");
    must(connection_.reconnect(action));
  }
  return connection_;
}

pg::PgResult PgProjectionDb::run(std::string_view sql, const pg::PgParams& params) {
  return must(connection().prepared(sql, params, action));
}

void PgProjectionDb::begin() {
  must(connection().exec("BEGIN", action));
  in_transaction_ = true;
}

void PgProjectionDb::begin_batch(const std::string& projection) {
  begin_locked("SELECT pg_advisory_xact_lock_shared($1)", pg::projection_batch_key(schema_, projection));
}

void PgProjectionDb::begin_setup() {
  begin_locked("SELECT pg_advisory_xact_lock($1)", pg::advisory_key(schema_, "\x01projections"));
}

void PgProjectionDb::begin_locked(const char* lock_sql, std::int64_t key) {
  pg::PgParams params;
  params.int64(key);
  const pg::PgConnection::Statement statements[] = {{"BEGIN", nullptr, false}, {lock_sql, &params}};
  auto r = connection().pipeline(statements, action);  // one round trip
  if (!r) {
    if (!connection_.broken()) (void)connection_.exec("ROLLBACK", action);  // BEGIN ran, the lock failed
    throw Exception(r.error());
  }
  in_transaction_ = true;
}

void PgProjectionDb::commit() {
  in_transaction_ = false;
  auto r = connection_.query("COMMIT", {}, action);
  if (!r) throw Exception(r.error());
  // A COMMIT of a transaction the server had aborted answers ROLLBACK.
  if (r->command_tag() == "ROLLBACK")
    throw Exception(errc::io_error, "update projection state in " + connection_.target() +
                                        ": PostgreSQL rolled the batch back (a statement in it had failed)");
}

void PgProjectionDb::rollback() noexcept {
  if (!in_transaction_) return;
  in_transaction_ = false;
  if (!connection_.broken()) (void)connection_.exec("ROLLBACK", action);
}

void PgProjectionDb::check_transaction() {
  if (!in_transaction_) return;
  const PGTransactionStatusType status = PQtransactionStatus(connection_.handle());
  if (status == PQTRANS_INERROR)
    throw Exception(errc::io_error, "update projection state in " + connection_.target() +
                                        ": a statement failed and PostgreSQL aborted the batch's transaction");
  if (status != PQTRANS_INTRANS && status != PQTRANS_ACTIVE)
    throw Exception(errc::io_error, "update projection state in " + connection_.target() +
                                        ": the batch's transaction was ended by a handler (COMMIT or ROLLBACK) "
                                        "or with the connection; handlers must leave it open");
}

void PgProjectionDb::savepoint() { must(connection().exec("SAVEPOINT evs_event", action)); }
void PgProjectionDb::release() { must(connection().exec("RELEASE SAVEPOINT evs_event", action)); }
void PgProjectionDb::rollback_to_savepoint() noexcept {
  if (connection_.broken()) return;
  (void)connection_.exec("ROLLBACK TO SAVEPOINT evs_event", action);
  (void)connection_.exec("RELEASE SAVEPOINT evs_event", action);
}

std::optional<StoredCheckpoint> PgProjectionDb::load_checkpoint(const std::string& projection,
                                                                std::size_t partition) {
  pg::PgParams p;
  p.text(projection).int64(static_cast<std::int64_t>(partition));
  auto r = run("SELECT position, partitions FROM evs_checkpoints WHERE projection = $1 AND partition = $2", p);
  if (r.rows() == 0) return std::nullopt;
  return StoredCheckpoint{static_cast<std::uint64_t>(r.int64(0, 0)), static_cast<std::size_t>(r.int64(0, 1))};
}

std::optional<std::size_t> PgProjectionDb::stored_partitions(const std::string& projection) {
  pg::PgParams p;
  p.text(projection);
  auto r = run("SELECT max(partitions) FROM evs_checkpoints WHERE projection = $1", p);
  if (r.rows() == 0 || r.is_null(0, 0)) return std::nullopt;
  return static_cast<std::size_t>(r.int64(0, 0));
}

void PgProjectionDb::save_checkpoint(const std::string& projection, std::size_t partition, std::size_t partitions,
                                     std::uint64_t position) {
  check_transaction();  // never let a checkpoint commit on its own, apart from the changes it covers
  pg::PgParams p;
  p.text(projection)
      .int64(static_cast<std::int64_t>(partition))
      .int64(static_cast<std::int64_t>(partitions))
      .int64(static_cast<std::int64_t>(position))
      .int64(now_us());
  run("INSERT INTO evs_checkpoints (projection, partition, partitions, position, updated_at)"
      " VALUES ($1, $2, $3, $4, $5) ON CONFLICT (projection, partition) DO UPDATE SET"
      " partitions = excluded.partitions, position = excluded.position, updated_at = excluded.updated_at",
      p);
}

void PgProjectionDb::park(const std::string& projection, const RecordedEvent& e, const std::string& error,
                          int attempts) {
  pg::PgParams p;
  p.text(projection)
      .int64(static_cast<std::int64_t>(e.position))
      .bytes(e.event_id.bytes_view())
      .text(e.stream_id)
      .text(e.type)
      .text(error)
      .int64(attempts)
      .int64(now_us());
  run("INSERT INTO evs_dead_letters (projection, position, event_id, stream, type, error, attempts, parked_at)"
      " VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT (projection, event_id) DO UPDATE SET"
      " error = excluded.error, attempts = evs_dead_letters.attempts + excluded.attempts,"
      " parked_at = excluded.parked_at, status = 'parked'",
      p);
}

std::uint64_t PgProjectionDb::dead_letter_count(const std::string& projection) {
  pg::PgParams p;
  p.text(projection);
  auto r = run("SELECT count(*) FROM evs_dead_letters WHERE projection = $1 AND status = 'parked'", p);
  return static_cast<std::uint64_t>(r.int64(0, 0));
}

std::vector<std::pair<std::int64_t, std::uint64_t>> PgProjectionDb::retry_requests(const std::string& projection) {
  pg::PgParams p;
  p.text(projection);
  auto r = run("SELECT id, position FROM evs_dead_letters WHERE projection = $1 AND status = 'retry'"
               " ORDER BY position LIMIT 100",
               p);
  std::vector<std::pair<std::int64_t, std::uint64_t>> out;
  for (int row = 0; row < r.rows(); ++row) out.emplace_back(r.int64(row, 0), static_cast<std::uint64_t>(r.int64(row, 1)));
  return out;
}

void PgProjectionDb::settle_retry(std::int64_t id, const std::optional<std::string>& error) {
  pg::PgParams p;
  p.int64(id);
  if (error) p.text(*error);
  else p.null(pg::text_oid);
  p.int64(now_us());
  run("UPDATE evs_dead_letters SET status = CASE WHEN $2::text IS NULL THEN 'retried' ELSE 'parked' END,"
      " error = coalesce($2::text, error), attempts = attempts + 1, parked_at = $3 WHERE id = $1 AND status = 'retry'",
      p);
}

bool PgProjectionDb::inbox_contains(const std::string& projection, const Uuid& event_id) {
  pg::PgParams p;
  p.text(projection).bytes(event_id.bytes_view());
  return run("SELECT 1 FROM evs_inbox WHERE projection = $1 AND event_id = $2", p).rows() != 0;
}

void PgProjectionDb::inbox_add(const std::string& projection, const Uuid& event_id) {
  pg::PgParams p;
  p.text(projection).bytes(event_id.bytes_view()).int64(now_us());
  run("INSERT INTO evs_inbox (projection, event_id, processed_at) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING", p);
}

std::size_t PgProjectionDb::prune_inbox(const std::string& projection, std::int64_t before_us, std::size_t limit) {
  begin();
  pg::PgParams p;
  p.text(projection).int64(before_us).int64(static_cast<std::int64_t>(limit));
  auto r = run("DELETE FROM evs_inbox WHERE projection = $1 AND event_id IN (SELECT i.event_id FROM evs_inbox i"
               " WHERE i.projection = $1 AND i.processed_at < $2 AND NOT EXISTS (SELECT 1 FROM evs_dead_letters d"
               " WHERE d.projection = $1 AND d.event_id = i.event_id) LIMIT $3)",
               p);
  const auto deleted = static_cast<std::size_t>(r.affected_rows());
  commit();
  return deleted;
}

// The lease's clock is the server's: nodes on several machines compare against one clock.
constexpr std::string_view server_now_us = "(extract(epoch FROM clock_timestamp()) * 1000000)::bigint";

std::optional<std::uint64_t> PgProjectionDb::claim(const std::string& projection, std::size_t partition,
                                                  const std::string& node, std::chrono::milliseconds lease) {
  static const std::string sql =
      "WITH now AS (SELECT " + std::string(server_now_us) + " AS us) "
      "INSERT INTO evs_claims AS c (projection, partition, owner, epoch, lease_until) "
      "SELECT $1, $2, $3, 1, now.us + $4 FROM now "
      "ON CONFLICT (projection, partition) DO UPDATE SET owner = excluded.owner, lease_until = excluded.lease_until, "
      "epoch = CASE WHEN c.owner IS NOT DISTINCT FROM excluded.owner AND c.lease_until >= excluded.lease_until - $4 "
      "THEN c.epoch ELSE c.epoch + 1 END "
      "WHERE c.owner IS NOT DISTINCT FROM excluded.owner OR c.owner IS NULL OR c.lease_until < excluded.lease_until - $4 "
      "RETURNING c.epoch";
  pg::PgParams p;
  p.text(projection).int64(static_cast<std::int64_t>(partition)).text(node);
  p.int64(std::chrono::duration_cast<std::chrono::microseconds>(lease).count());
  auto r = run(sql, p);
  if (r.rows() == 0) return std::nullopt;
  return static_cast<std::uint64_t>(r.int64(0, 0));
}

bool PgProjectionDb::fence(const std::string& projection, std::size_t partition, const std::string& node,
                           std::uint64_t epoch, std::chrono::milliseconds lease) {
  static const std::string sql =
      "UPDATE evs_claims SET lease_until = " + std::string(server_now_us) + " + $5 WHERE projection = $1 AND "
      "partition = $2 AND owner = $3 AND epoch = $4 AND lease_until >= " + std::string(server_now_us);
  pg::PgParams p;
  p.text(projection).int64(static_cast<std::int64_t>(partition)).text(node).int64(static_cast<std::int64_t>(epoch));
  p.int64(std::chrono::duration_cast<std::chrono::microseconds>(lease).count());
  return run(sql, p).affected_rows() == 1;
}

void PgProjectionDb::release(const std::string& projection, std::size_t partition, const std::string& node,
                             std::uint64_t epoch) {
  pg::PgParams p;
  p.text(projection).int64(static_cast<std::int64_t>(partition)).text(node).int64(static_cast<std::int64_t>(epoch));
  run("UPDATE evs_claims SET owner = NULL, lease_until = 0 WHERE projection = $1 AND partition = $2 AND owner = $3"
      " AND epoch = $4",
      p);
}

ClaimCensus PgProjectionDb::census(const std::string& projection, const std::string& node,
                                   std::chrono::milliseconds lease) {
  // The presence, then the live nodes and the claims with the server's clock, in one statement.
  static const std::string sql =
      "WITH now AS (SELECT " + std::string(server_now_us) + " AS us), "
      "beat AS (INSERT INTO evs_nodes (projection, node, lease_until) SELECT $1, $2, now.us + $3 FROM now "
      "ON CONFLICT (projection, node) DO UPDATE SET lease_until = excluded.lease_until RETURNING node) "
      "SELECT 0 AS kind, now.us, node, 0, 0, 0 FROM evs_nodes, now WHERE projection = $1 AND lease_until >= now.us "
      "AND node <> $2 "
      "UNION ALL SELECT 0, now.us, node, 0, 0, 0 FROM beat, now "
      "UNION ALL SELECT 1, now.us, coalesce(owner, ''), partition, epoch, lease_until FROM evs_claims, now "
      "WHERE projection = $1 "
      "UNION ALL SELECT 2, now.us, '', 0, 0, 0 FROM now ORDER BY 1, 4, 3";
  pg::PgParams p;
  p.text(projection).text(node).int64(std::chrono::duration_cast<std::chrono::microseconds>(lease).count());
  const auto r = run(sql, p);
  ClaimCensus census;
  for (int row = 0; row < r.rows(); ++row) {
    census.now_us = r.int64(row, 1);
    if (r.int64(row, 0) == 0) census.nodes.emplace_back(r.text(row, 2));
    if (r.int64(row, 0) == 1)
      census.claims.push_back({static_cast<std::size_t>(r.int64(row, 3)), std::string(r.text(row, 2)),
                               static_cast<std::uint64_t>(r.int64(row, 4)),
                               Timestamp(std::chrono::microseconds(r.int64(row, 5)))});
  }
  return census;
}

void PgProjectionDb::leave(const std::string& projection, const std::string& node) {
  pg::PgParams p;
  p.text(projection).text(node);
  run("DELETE FROM evs_nodes WHERE projection = $1 AND node = $2", p);
}

}  // namespace evs::detail
