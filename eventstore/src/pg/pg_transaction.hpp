// A transaction on one PgConnection, RAII (internal: the libpq layer).
#pragma once

#include <string_view>
#include <utility>

#include "evs/core/error.hpp"
#include "pg_connection.hpp"

namespace evs::pg {

// BEGIN on begin(); commit() ends it; the destructor rolls back a transaction that was not committed.
// A transaction whose connection broke is gone on the server side already: rollback() then does nothing,
// and commit() returns unavailable (the outcome of a COMMIT whose reply was lost is unknown).
class PgTransaction {
 public:
  // Sends BEGIN (or "BEGIN <mode>", e.g. "ISOLATION LEVEL REPEATABLE READ"), followed in the same round
  // trip by the parameterless statements `then` (e.g. "SELECT pg_advisory_xact_lock(1)"), if any.
  static Result<PgTransaction> begin(PgConnection& connection, std::string_view action, std::string_view mode = {},
                                     std::string_view then = {});

  // A transaction whose BEGIN went out otherwise (first statement of a PgConnection::pipeline that
  // succeeded): this object rolls it back unless it is committed.
  static PgTransaction begun(PgConnection& connection) { return PgTransaction(connection); }

  PgTransaction() = default;
  ~PgTransaction() { rollback(); }
  PgTransaction(PgTransaction&& other) noexcept : connection_(std::exchange(other.connection_, nullptr)) {}
  PgTransaction& operator=(PgTransaction&&) = delete;
  PgTransaction(const PgTransaction&) = delete;
  PgTransaction& operator=(const PgTransaction&) = delete;

  // Commits. A transaction in which a statement failed cannot commit: PostgreSQL answers such a COMMIT
  // with ROLLBACK, and commit() returns io_error saying so. After any failure the transaction is over
  // (rolled back by the server, or lost with the connection).
  Result<void> commit(std::string_view action);
  // The transaction was committed otherwise (a COMMIT in a pipeline that succeeded): nothing left to do.
  void committed() noexcept { connection_ = nullptr; }
  // Rolls back now; a no-op once committed or rolled back, or when the connection is broken.
  void rollback() noexcept;

  bool active() const { return connection_ != nullptr; }

 private:
  explicit PgTransaction(PgConnection& connection) : connection_(&connection) {}
  PgConnection* connection_ = nullptr;
};

}  // namespace evs::pg
