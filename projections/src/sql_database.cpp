#include "evs/projections/sql_database.hpp"

#include "projection_store.hpp"
#include "sqlite_connection.hpp"
#include "sqlite_sql_session.hpp"

#include <chrono>
#include <optional>

namespace evs {

struct SqlDatabase::Impl {
  sqlite::Connection connection;
  std::optional<detail::SqliteSqlSession> session;  // refers to `connection`: constructed after it, destroyed before it
  std::unique_ptr<detail::ProjectionDb> db;           // open(): the projection database, with its own session
};

SqlDatabase::SqlDatabase(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
SqlDatabase::SqlDatabase(SqlDatabase&&) noexcept = default;
SqlDatabase& SqlDatabase::operator=(SqlDatabase&&) noexcept = default;
SqlDatabase::~SqlDatabase() = default;

SqlDatabase SqlDatabase::in_memory() {
  auto connection = sqlite::Connection::open(":memory:", sqlite::Access::write, std::chrono::milliseconds(0));
  if (!connection) throw Exception(connection.error());
  auto impl = std::make_unique<Impl>();
  impl->connection = std::move(*connection);
  impl->session.emplace(impl->connection);
  return SqlDatabase(std::move(impl));
}

SqlDatabase SqlDatabase::open(const std::filesystem::path& location) {
  auto impl = std::make_unique<Impl>();
  impl->db = detail::open_projection_db(location, std::chrono::milliseconds(5000));
  return SqlDatabase(std::move(impl));
}

SqlSession& SqlDatabase::session() { return impl_->db ? impl_->db->session() : *impl_->session; }

void SqlDatabase::run_transaction(const std::function<void(SqlSession&)>& work) {
  if (impl_->db) {
    impl_->db->begin();
    try {
      work(impl_->db->session());
      impl_->db->check_transaction();
    } catch (...) {
      impl_->db->rollback();
      throw;
    }
    impl_->db->commit();
    return;
  }
  constexpr std::string_view action = "write the read model in";
  auto transaction = sqlite::Transaction::begin(impl_->connection, sqlite::Transaction::Mode::immediate, action);
  if (!transaction) throw Exception(transaction.error());
  work(*impl_->session);  // a throw rolls back (the Transaction's destructor)
  if (sqlite3_get_autocommit(impl_->connection.handle()) != 0) {
    transaction->rollback();  // nothing left to roll back; forget it
    throw Exception(errc::io_error, "the handler ended the read model's transaction itself (COMMIT, ROLLBACK or a "
                                    "statement such as INSERT OR ROLLBACK); handlers must leave it open");
  }
  if (auto committed = transaction->commit(action); !committed) throw Exception(committed.error());
}

}  // namespace evs
