// What every backend's StoreTransfer checks and computes alike when it imports recorded events (internal),
// so all backends refuse the same batches with the same words.
#pragma once

#include "evs/core/envelope.hpp"
#include "evs/core/error.hpp"

#include <cstdint>
#include <functional>
#include <optional>
#include <span>
#include <string>
#include <string_view>

namespace evs::detail {

// Checks a batch of StoreTransfer::import_events against the store it goes into: positions strictly
// ascending, above `last_position` (the store's last position, 0 when empty) and below 2^63; stream ids and
// type names not empty; in each stream, versions that continue `version_of(stream)` (the stream's current
// version in the store, 0 when it has none) one by one. Returns invalid_argument naming the first event
// that breaks a rule, or an empty Error (code 0).
Error check_import(std::span<const RecordedEvent> events, std::uint64_t last_position,
                   const std::function<std::uint64_t(std::string_view stream)>& version_of);

// Whether the batch continues a gap-free log with non-decreasing recorded times: its first position is
// `last_position` + 1 and each next one + 1, and no recorded_at is below the one before it (the first is
// compared with `last_recorded_at`, the store's last event's). What SQLite's log guarantees for appends.
bool continues_regular_log(std::span<const RecordedEvent> events, std::uint64_t last_position,
                           Timestamp last_recorded_at);

// The user metadata as the stores keep it: encoded with Encoding::binary, or nothing when it is empty.
std::optional<std::string> stored_user_metadata(const EventMetadata& metadata);

}  // namespace evs::detail
