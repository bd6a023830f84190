// The projections' bookkeeping in one database (a SQLite file or a PostgreSQL schema): checkpoints, dead
// letters and the side-effect inbox. The tables live next to a SQL projection's read model, so the read
// model's changes and its checkpoint commit in one transaction. Format (see docs/projections.md; the
// PostgreSQL tables have the same columns, with bigint, text, bytea and an identity id):
//
//   evs_checkpoints  (projection TEXT, partition INTEGER, partitions INTEGER, position INTEGER,
//                     updated_at INTEGER microseconds)                     PRIMARY KEY (projection, partition)
//   evs_dead_letters (id INTEGER PRIMARY KEY, projection TEXT, position INTEGER, event_id BLOB(16),
//                     stream TEXT, type TEXT, error TEXT, attempts INTEGER, parked_at INTEGER microseconds,
//                     status TEXT 'parked' | 'retry' | 'retried' | 'skipped')  UNIQUE (projection, event_id)
//                     (the states and their transitions: docs/projections.md, "Dead-letter states")
//   evs_inbox        (projection TEXT, event_id BLOB(16), processed_at INTEGER)  PRIMARY KEY (projection, event_id)
//   evs_claims       (projection TEXT, partition INTEGER, owner TEXT or NULL, epoch INTEGER,
//                     lease_until INTEGER microseconds)                    PRIMARY KEY (projection, partition)
//   evs_nodes        (projection TEXT, node TEXT, lease_until INTEGER microseconds)  PRIMARY KEY (projection, node)
//                     (claims and nodes: docs/projections.md, "Several nodes")
#pragma once

#include "sqlite_connection.hpp"
#include "sqlite_sql_session.hpp"

#include "evs/core/envelope.hpp"
#include "evs/core/error.hpp"
#include "evs/projections/engine.hpp"

#include <chrono>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace evs::detail {

// Microseconds since the epoch, the projection tables' time unit.
inline std::int64_t now_us() {
  return std::chrono::duration_cast<std::chrono::microseconds>(Clock::now().time_since_epoch()).count();
}

// The value, or the error thrown as evs::Exception (the projection databases' methods throw).
template <class T>
T must(Result<T>&& r) {
  if (!r) throw Exception(r.error());
  return std::move(*r);
}
inline void must(Result<void>&& r) {
  if (!r) throw Exception(r.error());
}

struct StoredCheckpoint {
  std::uint64_t position = 0;
  std::size_t partitions = 1;
};

// One connection to a projection database: a SQLite file (SqliteProjectionDb) or a PostgreSQL schema
// (PgProjectionDb, same tables). Used by one thread at a time. Every method throws evs::Exception on a
// storage failure (the engine catches it and retries the batch later).
// What ProjectionDb::census read: the live nodes of a projection and its claims, with the database's clock.
struct ClaimCensus {
  std::int64_t now_us = 0;
  std::vector<std::string> nodes;     // alive: their presence has not run out
  std::vector<PartitionClaim> claims;  // one per partition ever claimed
};

class ProjectionDb {
 public:
  virtual ~ProjectionDb() = default;

  // The read model's session on this connection (SQL projections write through it).
  virtual SqlSession& session() = 0;

  virtual void begin() = 0;  // SQLite: BEGIN IMMEDIATE
  // Opens the transaction of one batch of a SQL projection. On PostgreSQL it also takes the projection's
  // batch lock (shared), which a rebuild's swap takes exclusively: a batch never straddles a swap, and
  // the checkpoint it reads next is the swapped-in one. SQLite's write lock does that already.
  virtual void begin_batch(const std::string& projection) {
    (void)projection;
    begin();
  }
  // Opens the transaction of a SQL projection's setup. On PostgreSQL it also takes the schema's setup lock
  // (exclusive; opening the projection database takes it too): setups in several processes run one after
  // the other, as CREATE TABLE IF NOT EXISTS run concurrently fails there. Batches never wait for it.
  virtual void begin_setup() { begin(); }
  virtual void commit() = 0;
  virtual void rollback() noexcept = 0;
  virtual bool in_transaction() const = 0;
  // Throws evs::Exception(io_error) when a transaction is open here but the database has already ended it
  // (a statement that rolled back the whole transaction, an I/O error, a full disk): writes made after that
  // would each commit on their own.
  virtual void check_transaction() = 0;

  // Per-event savepoint inside the open transaction (a failed handler's writes are undone alone).
  virtual void savepoint() = 0;
  virtual void release() = 0;
  virtual void rollback_to_savepoint() noexcept = 0;

  virtual std::optional<StoredCheckpoint> load_checkpoint(const std::string& projection, std::size_t partition) = 0;
  // Every partition count ever stored for the projection (to detect a changed partition count).
  virtual std::optional<std::size_t> stored_partitions(const std::string& projection) = 0;
  virtual void save_checkpoint(const std::string& projection, std::size_t partition, std::size_t partitions,
                               std::uint64_t position) = 0;
  virtual void park(const std::string& projection, const RecordedEvent& event, const std::string& error,
                    int attempts) = 0;
  virtual std::uint64_t dead_letter_count(const std::string& projection) = 0;
  // Dead letters an operator asked to retry (status 'retry'), oldest first: (id, position).
  virtual std::vector<std::pair<std::int64_t, std::uint64_t>> retry_requests(const std::string& projection) = 0;
  // After a re-delivery: 'retried' on success; back to 'parked' with one more attempt and the new error.
  // Only a row still in 'retry' changes (an operator may have skipped it meanwhile).
  virtual void settle_retry(std::int64_t id, const std::optional<std::string>& error) = 0;
  virtual bool inbox_contains(const std::string& projection, const Uuid& event_id) = 0;
  virtual void inbox_add(const std::string& projection, const Uuid& event_id) = 0;
  // Deletes, in its own transaction, up to `limit` inbox rows of `projection` processed before
  // `before_us` (microseconds since the epoch) whose event has no dead-letter row. Returns how many.
  // Call with no transaction open.
  virtual std::size_t prune_inbox(const std::string& projection, std::int64_t before_us, std::size_t limit) = 0;

  // Claims (ProjectionOptions::node): one row per (projection, partition) in evs_claims with its owner, an
  // epoch that grows with every change of owner (and every retake after a lease ran out), and the lease's
  // end in the database's clock (microseconds; SQLite: this machine's clock).
  // claim() takes the partition for `node` when it is free, expired or already `node`'s (then it renews
  // the lease), in a transaction of its own; returns the epoch, or nullopt while another node's lease runs.
  virtual std::optional<std::uint64_t> claim(const std::string& projection, std::size_t partition,
                                             const std::string& node, std::chrono::milliseconds lease) = 0;
  // Inside a batch's transaction, right before it commits: renews the lease when `node` still holds the
  // partition at `epoch` and the lease has not run out. False otherwise: the batch must roll back. The row
  // stays locked until the commit, so a node taking the partition over waits for it, then sees a lease
  // that runs.
  virtual bool fence(const std::string& projection, std::size_t partition, const std::string& node,
                     std::uint64_t epoch, std::chrono::milliseconds lease) = 0;
  // Gives the partition up (a graceful stop): the next claimer takes it at once, with a new epoch.
  virtual void release(const std::string& projection, std::size_t partition, const std::string& node,
                       std::uint64_t epoch) = 0;
  // Records that `node` is alive for `projection` until the lease's end (evs_nodes), then reads the live
  // nodes and every partition's claim: what a node needs to take its fair share. Its own transaction.
  virtual ClaimCensus census(const std::string& projection, const std::string& node,
                             std::chrono::milliseconds lease) = 0;
  // Removes `node` from the live nodes of `projection` (a graceful stop). Its own transaction.
  virtual void leave(const std::string& projection, const std::string& node) = 0;
};

// Opens the projection database at `location` (ProjectionOptions::database): a postgresql:// URL (with
// evs_schema=...) opens a PgProjectionDb, anything else the SQLite file at that path (created if needed, WAL,
// synchronous=NORMAL). Creates the tables if missing. `claim_lease` (workers under claims; zero otherwise):
// on PostgreSQL the server ends a session idle inside a transaction for that long, so a node paused inside a
// batch (whose commit would be fenced anyway) does not keep the rows it locked from the partition's next owner.
std::unique_ptr<ProjectionDb> open_projection_db(const std::filesystem::path& location,
                                                 std::chrono::milliseconds busy_timeout,
                                                 std::chrono::milliseconds claim_lease = {});

// The SQLite implementation.
class SqliteProjectionDb final : public ProjectionDb {
 public:
  static std::unique_ptr<SqliteProjectionDb> open(const std::filesystem::path& path,
                                                  std::chrono::milliseconds busy_timeout);

  SqlSession& session() override { return session_; }
  void begin() override;
  void commit() override;
  void rollback() noexcept override;
  bool in_transaction() const override { return transaction_.has_value(); }
  void check_transaction() override;
  void savepoint() override;
  void release() override;
  void rollback_to_savepoint() noexcept override;
  std::optional<StoredCheckpoint> load_checkpoint(const std::string& projection, std::size_t partition) override;
  std::optional<std::size_t> stored_partitions(const std::string& projection) override;
  void save_checkpoint(const std::string& projection, std::size_t partition, std::size_t partitions,
                       std::uint64_t position) override;
  void park(const std::string& projection, const RecordedEvent& event, const std::string& error,
            int attempts) override;
  std::uint64_t dead_letter_count(const std::string& projection) override;
  std::vector<std::pair<std::int64_t, std::uint64_t>> retry_requests(const std::string& projection) override;
  void settle_retry(std::int64_t id, const std::optional<std::string>& error) override;
  bool inbox_contains(const std::string& projection, const Uuid& event_id) override;
  void inbox_add(const std::string& projection, const Uuid& event_id) override;
  std::size_t prune_inbox(const std::string& projection, std::int64_t before_us, std::size_t limit) override;
  std::optional<std::uint64_t> claim(const std::string& projection, std::size_t partition, const std::string& node,
                                     std::chrono::milliseconds lease) override;
  bool fence(const std::string& projection, std::size_t partition, const std::string& node, std::uint64_t epoch,
             std::chrono::milliseconds lease) override;
  void release(const std::string& projection, std::size_t partition, const std::string& node,
               std::uint64_t epoch) override;
  ClaimCensus census(const std::string& projection, const std::string& node, std::chrono::milliseconds lease) override;
  void leave(const std::string& projection, const std::string& node) override;

  explicit SqliteProjectionDb(sqlite::Connection c) : connection_(std::move(c)), session_(connection_) {}

 private:
  void run(std::string_view sql);
  sqlite::Connection connection_;
  SqliteSqlSession session_;
  std::optional<sqlite::Transaction> transaction_;
};

}  // namespace evs::detail
