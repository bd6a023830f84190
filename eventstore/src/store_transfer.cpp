// open_transfer: the StoreTransfer of a store, by its backend.
#include "evs/eventstore/store_transfer.hpp"

#include "sqlite_transfer.hpp"
#ifdef EVS_HAS_POSTGRESQL
#include "pg/pg_transfer.hpp"
#endif

namespace evs {

Result<std::unique_ptr<StoreTransfer>> open_transfer(EventStore& store) {
  if (auto* sqlite = dynamic_cast<SqliteEventStore*>(&store)) return sqlite::open_transfer(sqlite->options());
#ifdef EVS_HAS_POSTGRESQL
  if (auto* pg = dynamic_cast<PgEventStore*>(&store)) return pg::open_transfer(pg->options());
#endif
  return Error{errc::invalid_argument,
               "this kind of event store has no bulk import or export: copy from and to a SQLite or PostgreSQL store"};
}

}  // namespace evs
