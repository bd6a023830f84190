#include "pg_transaction.hpp"

#include <string>

namespace evs::pg {

Result<PgTransaction> PgTransaction::begin(PgConnection& connection, std::string_view action,
                                           std::string_view mode, std::string_view then) {
  std::string sql = "BEGIN";
  if (!mode.empty()) sql.append(" ").append(mode);
  if (!then.empty()) sql.append("; ").append(then);
  if (auto r = connection.exec(sql, action); !r) {
    if (!connection.broken()) (void)connection.exec("ROLLBACK", action);  // BEGIN ran, the rest failed
    return r.error();
  }
  return PgTransaction(connection);
}

Result<void> PgTransaction::commit(std::string_view action) {
  PgConnection* connection = std::exchange(connection_, nullptr);
  if (connection == nullptr)
    return Error{errc::invalid_argument, std::string(action) + ": the transaction is no longer active"};
  auto r = connection->query("COMMIT", PgParams{}, action);
  if (!r) return r.error();
  if (r->command_tag() == "ROLLBACK")
    return Error{errc::io_error, std::string(action) + " " + connection->target() +
                                     ": a statement of the transaction failed earlier, so PostgreSQL rolled it "
                                     "back instead of committing; nothing of it was stored"};
  return {};
}

void PgTransaction::rollback() noexcept {
  PgConnection* connection = std::exchange(connection_, nullptr);
  if (connection == nullptr || connection->broken()) return;
  try {
    (void)connection->exec("ROLLBACK", "roll back");  // a failure here means the connection broke: nothing to undo
  } catch (...) {  // std::bad_alloc building the message: the server rolls back when the session ends anyway
  }
}

}  // namespace evs::pg
