#include "projection_store.hpp"

#include "evs/eventstore/open_store.hpp"
#ifdef EVS_HAS_POSTGRESQL
#include "pg_projection_db.hpp"
#endif

namespace evs::detail {
namespace {

constexpr std::string_view action = "update projection state in";

constexpr const char* schema = R"sql(
CREATE TABLE IF NOT EXISTS evs_checkpoints (
  projection TEXT NOT NULL,
  partition  INTEGER NOT NULL,
  partitions INTEGER NOT NULL,
  position   INTEGER NOT NULL,
  updated_at INTEGER NOT NULL,
  PRIMARY KEY (projection, partition)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS evs_dead_letters (
  id         INTEGER PRIMARY KEY,
  projection TEXT NOT NULL,
  position   INTEGER NOT NULL,
  event_id   BLOB NOT NULL,
  stream     TEXT NOT NULL,
  type       TEXT NOT NULL,
  error      TEXT NOT NULL,
  attempts   INTEGER NOT NULL,
  parked_at  INTEGER NOT NULL,
  status     TEXT NOT NULL DEFAULT 'parked',
  UNIQUE (projection, event_id)
);
CREATE TABLE IF NOT EXISTS evs_inbox (
  projection   TEXT NOT NULL,
  event_id     BLOB NOT NULL,
  processed_at INTEGER NOT NULL,
  PRIMARY KEY (projection, event_id)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS evs_claims (
  projection  TEXT NOT NULL,
  partition   INTEGER NOT NULL,
  owner       TEXT,
  epoch       INTEGER NOT NULL,
  lease_until INTEGER NOT NULL,
  PRIMARY KEY (projection, partition)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS evs_nodes (
  projection  TEXT NOT NULL,
  node        TEXT NOT NULL,
  lease_until INTEGER NOT NULL,
  PRIMARY KEY (projection, node)
) WITHOUT ROWID;
)sql";


}  // namespace

std::unique_ptr<SqliteProjectionDb> SqliteProjectionDb::open(const std::filesystem::path& path,
                                                             std::chrono::milliseconds busy_timeout) {
  auto db = std::make_unique<SqliteProjectionDb>(must(sqlite::Connection::open(path, sqlite::Access::write, busy_timeout)));
  must(db->connection_.exec("PRAGMA journal_mode = WAL", "open the projection database"));
  must(db->connection_.exec("PRAGMA synchronous = NORMAL", "open the projection database"));
  must(db->connection_.exec(schema, "create the projection tables in"));
  return db;
}

void SqliteProjectionDb::run(std::string_view sql) { must(must(connection_.cached(sql, action))->run(action)); }

void SqliteProjectionDb::begin() {
  transaction_.emplace(must(sqlite::Transaction::begin(connection_, sqlite::Transaction::Mode::immediate, action)));
}
void SqliteProjectionDb::commit() {
  auto t = std::move(*transaction_);
  transaction_.reset();
  must(t.commit(action));
}
void SqliteProjectionDb::rollback() noexcept { transaction_.reset(); }

void SqliteProjectionDb::check_transaction() {
  if (transaction_ && sqlite3_get_autocommit(connection_.handle()) != 0)
    throw Exception(errc::io_error, "update projection state in " + connection_.path() +
                                        ": SQLite rolled back the batch's transaction (a handler statement "
                                        "such as INSERT OR ROLLBACK, or a storage error)");
}

void SqliteProjectionDb::savepoint() { run("SAVEPOINT evs_event"); }
void SqliteProjectionDb::release() { run("RELEASE evs_event"); }
void SqliteProjectionDb::rollback_to_savepoint() noexcept {
  try {
    run("ROLLBACK TO evs_event");
    run("RELEASE evs_event");
  } catch (...) {
  }
}

std::optional<StoredCheckpoint> SqliteProjectionDb::load_checkpoint(const std::string& projection, std::size_t partition) {
  auto st = must(connection_.cached(
      "SELECT position, partitions FROM evs_checkpoints WHERE projection = ?1 AND partition = ?2", action));
  st->bind_text(1, projection);
  st->bind(2, static_cast<std::int64_t>(partition));
  if (!must(st->step(action))) return std::nullopt;
  return StoredCheckpoint{static_cast<std::uint64_t>(st->column_int64(0)), static_cast<std::size_t>(st->column_int64(1))};
}

std::optional<std::size_t> SqliteProjectionDb::stored_partitions(const std::string& projection) {
  auto st = must(connection_.cached("SELECT max(partitions) FROM evs_checkpoints WHERE projection = ?1", action));
  st->bind_text(1, projection);
  if (!must(st->step(action)) || st->column_is_null(0)) return std::nullopt;
  return static_cast<std::size_t>(st->column_int64(0));
}

void SqliteProjectionDb::save_checkpoint(const std::string& projection, std::size_t partition, std::size_t partitions,
                                   std::uint64_t position) {
  check_transaction();  // never let a checkpoint commit on its own, apart from the changes it covers
  auto st = must(connection_.cached(
      "INSERT INTO evs_checkpoints (projection, partition, partitions, position, updated_at) "
      "VALUES (?1, ?2, ?3, ?4, ?5) ON CONFLICT (projection, partition) DO UPDATE SET "
      "partitions = excluded.partitions, position = excluded.position, updated_at = excluded.updated_at",
      action));
  st->bind_text(1, projection);
  st->bind(2, static_cast<std::int64_t>(partition));
  st->bind(3, static_cast<std::int64_t>(partitions));
  st->bind(4, static_cast<std::int64_t>(position));
  st->bind(5, now_us());
  must(st->run(action));
}

void SqliteProjectionDb::park(const std::string& projection, const RecordedEvent& e, const std::string& error,
                        int attempts) {
  auto st = must(connection_.cached(
      "INSERT INTO evs_dead_letters (projection, position, event_id, stream, type, error, attempts, parked_at) "
      "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8) ON CONFLICT (projection, event_id) DO UPDATE SET "
      "error = excluded.error, attempts = evs_dead_letters.attempts + excluded.attempts, "
      "parked_at = excluded.parked_at, status = 'parked'",
      action));
  st->bind_text(1, projection);
  st->bind(2, static_cast<std::int64_t>(e.position));
  st->bind_blob(3, e.event_id.bytes_view());
  st->bind_text(4, e.stream_id);
  st->bind_text(5, e.type);
  st->bind_text(6, error);
  st->bind(7, attempts);
  st->bind(8, now_us());
  must(st->run(action));
}

std::uint64_t SqliteProjectionDb::dead_letter_count(const std::string& projection) {
  auto st = must(connection_.cached(
      "SELECT count(*) FROM evs_dead_letters WHERE projection = ?1 AND status = 'parked'", action));
  st->bind_text(1, projection);
  must(st->step(action));
  return static_cast<std::uint64_t>(st->column_int64(0));
}

std::vector<std::pair<std::int64_t, std::uint64_t>> SqliteProjectionDb::retry_requests(const std::string& projection) {
  auto st = must(connection_.cached(
      "SELECT id, position FROM evs_dead_letters WHERE projection = ?1 AND status = 'retry' ORDER BY position "
      "LIMIT 100",
      action));
  st->bind_text(1, projection);
  std::vector<std::pair<std::int64_t, std::uint64_t>> out;
  while (must(st->step(action))) out.emplace_back(st->column_int64(0), static_cast<std::uint64_t>(st->column_int64(1)));
  return out;
}

void SqliteProjectionDb::settle_retry(std::int64_t id, const std::optional<std::string>& error) {
  auto st = must(connection_.cached(
      "UPDATE evs_dead_letters SET status = CASE WHEN ?2 IS NULL THEN 'retried' ELSE 'parked' END, "
      "error = coalesce(?2, error), attempts = attempts + 1, parked_at = ?3 WHERE id = ?1 AND status = 'retry'",
      action));
  st->bind(1, id);
  if (error) st->bind_text(2, *error);
  else st->bind_null(2);
  st->bind(3, now_us());
  must(st->run(action));
}

bool SqliteProjectionDb::inbox_contains(const std::string& projection, const Uuid& event_id) {
  auto st = must(connection_.cached("SELECT 1 FROM evs_inbox WHERE projection = ?1 AND event_id = ?2", action));
  st->bind_text(1, projection);
  st->bind_blob(2, event_id.bytes_view());
  return must(st->step(action));
}

void SqliteProjectionDb::inbox_add(const std::string& projection, const Uuid& event_id) {
  auto st = must(connection_.cached(
      "INSERT OR IGNORE INTO evs_inbox (projection, event_id, processed_at) VALUES (?1, ?2, ?3)", action));
  st->bind_text(1, projection);
  st->bind_blob(2, event_id.bytes_view());
  st->bind(3, now_us());
  must(st->run(action));
}

std::size_t SqliteProjectionDb::prune_inbox(const std::string& projection, std::int64_t before_us, std::size_t limit) {
  begin();
  auto st = must(connection_.cached(
      "DELETE FROM evs_inbox WHERE projection = ?1 AND event_id IN (SELECT i.event_id FROM evs_inbox i "
      "WHERE i.projection = ?1 AND i.processed_at < ?2 AND NOT EXISTS (SELECT 1 FROM evs_dead_letters d "
      "WHERE d.projection = ?1 AND d.event_id = i.event_id) LIMIT ?3)",
      action));
  st->bind_text(1, projection);
  st->bind(2, before_us);
  st->bind(3, static_cast<std::int64_t>(limit));
  must(st->run(action));
  const auto deleted = static_cast<std::size_t>(sqlite3_changes(connection_.handle()));
  commit();
  return deleted;
}

namespace {

// ?1 projection, ?2 partition, ?3 node, ?4 epoch: the claim a fence or a release is about.
void bind_claim(sqlite::Statement& st, const std::string& projection, std::size_t partition, const std::string& node,
                std::uint64_t epoch) {
  st.bind_text(1, projection);
  st.bind(2, static_cast<std::int64_t>(partition));
  st.bind_text(3, node);
  st.bind(4, static_cast<std::int64_t>(epoch));
}

}  // namespace

std::optional<std::uint64_t> SqliteProjectionDb::claim(const std::string& projection, std::size_t partition,
                                                      const std::string& node, std::chrono::milliseconds lease) {
  auto st = must(connection_.cached(
      "INSERT INTO evs_claims (projection, partition, owner, epoch, lease_until) VALUES (?1, ?2, ?3, 1, ?4 + ?5) "
      "ON CONFLICT (projection, partition) DO UPDATE SET owner = excluded.owner, lease_until = excluded.lease_until, "
      "epoch = CASE WHEN evs_claims.owner IS excluded.owner AND evs_claims.lease_until >= ?4 THEN evs_claims.epoch "
      "ELSE evs_claims.epoch + 1 END "
      "WHERE evs_claims.owner IS excluded.owner OR evs_claims.owner IS NULL OR evs_claims.lease_until < ?4 "
      "RETURNING epoch",
      action));
  st->bind_text(1, projection);
  st->bind(2, static_cast<std::int64_t>(partition));
  st->bind_text(3, node);
  st->bind(4, now_us());
  st->bind(5, static_cast<std::int64_t>(std::chrono::duration_cast<std::chrono::microseconds>(lease).count()));
  std::optional<std::uint64_t> epoch;
  while (must(st->step(action))) epoch = static_cast<std::uint64_t>(st->column_int64(0));  // to the end: commits
  return epoch;
}

bool SqliteProjectionDb::fence(const std::string& projection, std::size_t partition, const std::string& node,
                               std::uint64_t epoch, std::chrono::milliseconds lease) {
  auto st = must(connection_.cached(
      "UPDATE evs_claims SET lease_until = ?5 + ?6 WHERE projection = ?1 AND partition = ?2 AND owner = ?3 "
      "AND epoch = ?4 AND lease_until >= ?5",
      action));
  bind_claim(*st, projection, partition, node, epoch);
  st->bind(5, now_us());
  st->bind(6, static_cast<std::int64_t>(std::chrono::duration_cast<std::chrono::microseconds>(lease).count()));
  must(st->run(action));
  return sqlite3_changes(connection_.handle()) == 1;
}

void SqliteProjectionDb::release(const std::string& projection, std::size_t partition, const std::string& node,
                                 std::uint64_t epoch) {
  auto st = must(connection_.cached(
      "UPDATE evs_claims SET owner = NULL, lease_until = 0 WHERE projection = ?1 AND partition = ?2 AND owner = ?3 "
      "AND epoch = ?4",
      action));
  bind_claim(*st, projection, partition, node, epoch);
  must(st->run(action));
}

ClaimCensus SqliteProjectionDb::census(const std::string& projection, const std::string& node,
                                       std::chrono::milliseconds lease) {
  ClaimCensus census;
  census.now_us = now_us();
  auto beat = must(connection_.cached(
      "INSERT INTO evs_nodes (projection, node, lease_until) VALUES (?1, ?2, ?3) "
      "ON CONFLICT (projection, node) DO UPDATE SET lease_until = excluded.lease_until",
      action));
  beat->bind_text(1, projection);
  beat->bind_text(2, node);
  beat->bind(3, census.now_us + std::chrono::duration_cast<std::chrono::microseconds>(lease).count());
  must(beat->run(action));
  auto nodes = must(connection_.cached(
      "SELECT node FROM evs_nodes WHERE projection = ?1 AND lease_until >= ?2 ORDER BY node", action));
  nodes->bind_text(1, projection);
  nodes->bind(2, census.now_us);
  while (must(nodes->step(action))) census.nodes.emplace_back(nodes->column_text(0));
  auto claims = must(connection_.cached(
      "SELECT partition, coalesce(owner, ''), epoch, lease_until FROM evs_claims WHERE projection = ?1 "
      "ORDER BY partition",
      action));
  claims->bind_text(1, projection);
  while (must(claims->step(action)))
    census.claims.push_back({static_cast<std::size_t>(claims->column_int64(0)), std::string(claims->column_text(1)),
                             static_cast<std::uint64_t>(claims->column_int64(2)),
                             Timestamp(std::chrono::microseconds(claims->column_int64(3)))});
  return census;
}

void SqliteProjectionDb::leave(const std::string& projection, const std::string& node) {
  auto st = must(connection_.cached("DELETE FROM evs_nodes WHERE projection = ?1 AND node = ?2", action));
  st->bind_text(1, projection);
  st->bind_text(2, node);
  must(st->run(action));
}

std::unique_ptr<ProjectionDb> open_projection_db(const std::filesystem::path& location,
                                                 std::chrono::milliseconds busy_timeout,
                                                 std::chrono::milliseconds claim_lease) {
  auto parsed = parse_store_location(location.string());
  if (parsed && parsed->backend == StoreBackend::postgresql) {
#ifdef EVS_HAS_POSTGRESQL
    return PgProjectionDb::open(parsed->target, parsed->schema, claim_lease);
#else
    (void)claim_lease;
    throw Exception(errc::invalid_argument, "the projection database " + location.string() +
                                                " is on PostgreSQL, but this evs was built without it "
                                                "(configure with EVS_POSTGRESQL=ON)");
#endif
  }
  return SqliteProjectionDb::open(location, busy_timeout);
}

}  // namespace evs::detail
