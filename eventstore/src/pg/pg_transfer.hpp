// The PostgreSQL store's StoreTransfer (internal; see evs/eventstore/store_transfer.hpp).
#pragma once

#include "evs/eventstore/pg_event_store.hpp"
#include "evs/eventstore/store_transfer.hpp"

#include <memory>

namespace evs::pg {

// A transfer on a connection of its own to the database and schema of the store opened with `options`.
Result<std::unique_ptr<StoreTransfer>> open_transfer(const PgOptions& options);

}  // namespace evs::pg
