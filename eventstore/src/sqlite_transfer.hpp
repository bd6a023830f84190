// The SQLite store's StoreTransfer (internal; see evs/eventstore/store_transfer.hpp).
#pragma once

#include "evs/eventstore/sqlite_event_store.hpp"
#include "evs/eventstore/store_transfer.hpp"

#include <memory>

namespace evs::sqlite {

// The evs_meta key that records up to which position the log was imported with gaps or recorded times
// that step back (a log copied from PostgreSQL). ON-DISK FORMAT: the value is the position in decimal.
inline constexpr std::string_view imported_through_key = "imported_through";

// A transfer on its own connection to the file of the store opened with `options` (read-only and immutable
// as the store was opened).
Result<std::unique_ptr<StoreTransfer>> open_transfer(const SqliteOptions& options);

}  // namespace evs::sqlite
