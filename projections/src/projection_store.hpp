// The projections' bookkeeping in one SQLite file: checkpoints, dead letters and the side-effect inbox.
// The tables live next to a SQL projection's read model, so the read model's changes and its checkpoint
// commit in one transaction. On-disk format (see docs/projections.md):
//
//   evs_checkpoints  (projection TEXT, partition INTEGER, partitions INTEGER, position INTEGER,
//                     updated_at INTEGER microseconds)                     PRIMARY KEY (projection, partition)
//   evs_dead_letters (id INTEGER PRIMARY KEY, projection TEXT, position INTEGER, event_id BLOB(16),
//                     stream TEXT, type TEXT, error TEXT, attempts INTEGER, parked_at INTEGER microseconds,
//                     status TEXT 'parked' | 'retry' | 'retried' | 'skipped')  UNIQUE (projection, event_id)
//                     (the states and their transitions: docs/projections.md, "Dead-letter states")
//   evs_inbox        (projection TEXT, event_id BLOB(16), processed_at INTEGER)  PRIMARY KEY (projection, event_id)
#pragma once

#include "sqlite_connection.hpp"

#include "evs/core/envelope.hpp"
#include "evs/core/error.hpp"

#include <chrono>
#include <filesystem>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace evs::detail {

struct StoredCheckpoint {
  std::uint64_t position = 0;
  std::size_t partitions = 1;
};

// One connection to a projection database. Used by one thread at a time. Every method throws
// evs::Exception on a storage failure (the engine catches it and retries the batch later).
class ProjectionDb {
 public:
  // Opens (creating if needed) `path` in WAL mode with synchronous=NORMAL and creates the tables.
  static ProjectionDb open(const std::filesystem::path& path, std::chrono::milliseconds busy_timeout);

  sqlite::Connection& connection() { return connection_; }

  void begin();     // BEGIN IMMEDIATE
  void commit();
  void rollback() noexcept;
  bool in_transaction() const { return transaction_.has_value(); }
  // Throws evs::Exception(io_error) when a transaction is open here but SQLite has already ended it (a
  // statement that rolled back the whole transaction, an I/O error, a full disk): writes made after that
  // would each commit on their own.
  void check_transaction();

  // Per-event savepoint inside the open transaction (a failed handler's writes are undone alone).
  void savepoint();
  void release();
  void rollback_to_savepoint() noexcept;

  std::optional<StoredCheckpoint> load_checkpoint(const std::string& projection, std::size_t partition);
  // Every partition count ever stored for the projection (to detect a changed partition count).
  std::optional<std::size_t> stored_partitions(const std::string& projection);
  void save_checkpoint(const std::string& projection, std::size_t partition, std::size_t partitions,
                       std::uint64_t position);
  void park(const std::string& projection, const RecordedEvent& event, const std::string& error, int attempts);
  std::uint64_t dead_letter_count(const std::string& projection);
  // Dead letters an operator asked to retry (status 'retry'), oldest first: (id, position).
  std::vector<std::pair<std::int64_t, std::uint64_t>> retry_requests(const std::string& projection);
  // After a re-delivery: 'retried' on success; back to 'parked' with one more attempt and the new error.
  // Only a row still in 'retry' changes (an operator may have skipped it meanwhile).
  void settle_retry(std::int64_t id, const std::optional<std::string>& error);
  bool inbox_contains(const std::string& projection, const Uuid& event_id);
  void inbox_add(const std::string& projection, const Uuid& event_id);
  // Deletes, in its own transaction, up to `limit` inbox rows of `projection` processed before
  // `before_us` (microseconds since the epoch) whose event has no dead-letter row. Returns how many.
  // Call with no transaction open.
  std::size_t prune_inbox(const std::string& projection, std::int64_t before_us, std::size_t limit);

 private:
  explicit ProjectionDb(sqlite::Connection c) : connection_(std::move(c)) {}
  void run(std::string_view sql);
  sqlite::Connection connection_;
  std::optional<sqlite::Transaction> transaction_;
};

}  // namespace evs::detail
