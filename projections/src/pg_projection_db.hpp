// The projections' bookkeeping and SQL read models in a PostgreSQL schema (internal; the tables mirror the
// SQLite ones in projection_store.hpp). One connection, used by one thread at a time: a batch's read-model
// changes and its checkpoint commit in one PostgreSQL transaction. A connection lost between batches is
// made again at the next begin() (or the next query outside a batch); one lost inside a batch fails the
// batch with unavailable, and the engine retries it later.
//
// A statement that fails inside a batch aborts PostgreSQL's transaction (unlike SQLite): the guarded
// per-event savepoints undo it, and check_transaction() reports a transaction the server aborted.
#pragma once

#include "pg/pg_connection.hpp"
#include "pg_sql_session.hpp"
#include "projection_store.hpp"

#include <string>

namespace evs::detail {

class PgProjectionDb final : public ProjectionDb {
 public:
  // Connects to `url` with the schema `schema` (created if missing) and creates the tables if missing.
  static std::unique_ptr<PgProjectionDb> open(const std::string& url, const std::string& schema,
                                              std::chrono::milliseconds claim_lease = {});

  SqlSession& session() override { return session_; }
  void begin() override;
  void begin_batch(const std::string& projection) override;
  void begin_setup() override;
  void commit() override;
  void rollback() noexcept override;
  bool in_transaction() const override { return in_transaction_; }
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

  PgProjectionDb(pg::PgConnection c, std::string schema)
      : connection_(std::move(c)), session_(connection_), schema_(std::move(schema)) {}

 private:
  // BEGIN and the advisory lock `lock_sql` takes on `key`, in one round trip.
  void begin_locked(const char* lock_sql, std::int64_t key);
  // The connection, made again first when it was lost outside a transaction.
  pg::PgConnection& connection();
  pg::PgResult run(std::string_view sql, const pg::PgParams& params);

  pg::PgConnection connection_;
  PgSqlSession session_;
  std::string schema_;
  bool in_transaction_ = false;
};

}  // namespace evs::detail
