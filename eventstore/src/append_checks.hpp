// Checks shared by every backend's append path, so all backends report the same errors with the same words.
#pragma once

#include "evs/core/envelope.hpp"
#include "evs/core/error.hpp"
#include "evs/core/expected_version.hpp"

#include <span>
#include <string>
#include <string_view>

namespace evs::detail {

// Validates arguments that can never work: empty stream id, empty type name, an event id used twice in
// one batch. Returns an invalid_argument error, or an empty Error (code 0) when all is well.
Error validate_append(std::string_view stream_id, std::span<const EventData> events);

// "stream order-1 is at version 3, expected 2" as a wrong_expected_version error.
Error wrong_version(std::string_view stream_id, std::uint64_t current, ExpectedVersion expected);

// An event id of the batch is stored already, but the batch is not an exact retry of an earlier append.
Error partial_duplicate(std::string_view stream_id, const Uuid& id, std::string_view why);

}  // namespace evs::detail
