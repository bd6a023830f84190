#include "pending_event.hpp"

#include "evs/core/codec.hpp"

namespace evs::detail {

PendingEvent PendingEvent::from(const EventData& e) {
  return {e.event_id,
          e.type,
          e.schema_version,
          e.fingerprint,
          e.encoding,
          e.payload,
          e.metadata.correlation_id,
          e.metadata.causation_id,
          e.metadata.user.empty() ? std::nullopt : std::optional(encode(e.metadata.user, Encoding::binary))};
}

std::size_t PendingEvent::bytes() const {
  return payload.size() + (metadata ? metadata->size() : 0) + type.size() + correlation_id.size() +
         causation_id.size() + 16;
}

}  // namespace evs::detail
