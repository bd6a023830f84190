// An event of a queued append, owned by the queue (internal; shared by the SQLite and PostgreSQL writers).
#pragma once

#include "evs/core/envelope.hpp"

#include <cstdint>
#include <optional>
#include <string>

namespace evs::detail {

struct PendingEvent {
  Uuid id;
  std::string type;
  std::uint32_t schema_version = 1;
  std::uint64_t fingerprint = 0;  // 0: nothing to record in event_schemas
  Encoding encoding = Encoding::binary;
  std::string payload;
  std::string correlation_id;
  std::string causation_id;
  std::optional<std::string> metadata;  // the user metadata, encoded (binary); nullopt when the map is empty

  static PendingEvent from(const EventData& e);
  // The bytes of the variable-length columns of its row (payload, metadata, type and ids).
  std::size_t bytes() const;
};

}  // namespace evs::detail
