// What is appended (EventData) and what is read back (RecordedEvent): the payload bytes plus the envelope.
#pragma once

#include "evs/core/uuid.hpp"

#include <chrono>
#include <cstdint>
#include <map>
#include <string>

namespace evs {

// How a payload is encoded. Stored per event: on-disk format, never renumber.
enum class Encoding : std::uint8_t { binary = 0, json = 1 };

using Clock = std::chrono::system_clock;
using Timestamp = std::chrono::time_point<Clock, std::chrono::microseconds>;

// Metadata that travels with an event. Empty strings / maps mean "not set".
struct EventMetadata {
  std::string correlation_id;  // the conversation / business transaction this event belongs to
  std::string causation_id;    // the id of the command or event that caused this one
  std::map<std::string, std::string> user;  // free-form application metadata (user id, tenant, ip, ...)

  friend bool operator==(const EventMetadata&, const EventMetadata&) = default;
};

// An event ready to append: its type name, schema version and encoded payload.
struct EventData {
  Uuid event_id = Uuid::generate();
  std::string type;               // the registered stable name, e.g. "shop.order_placed"
  std::uint32_t schema_version = 1;
  // The schema fingerprint of the type that encoded the payload (make_event_data fills it). The store
  // records it, with the type's member description, for the first event of each (type, schema_version),
  // so that a later change of the type without a version bump is detected (see schema_drift.hpp).
  // 0: unknown, nothing recorded.
  std::uint64_t fingerprint = 0;
  Encoding encoding = Encoding::binary;
  std::string payload;            // encoded bytes
  EventMetadata metadata;
};

// An event as stored.
struct RecordedEvent {
  std::uint64_t position = 0;     // global position: unique, gap-free, starting at 1
  std::string stream_id;
  std::uint64_t version = 0;      // version within its stream, starting at 1
  Uuid event_id;
  std::string type;
  std::uint32_t schema_version = 0;
  Encoding encoding = Encoding::binary;
  Timestamp recorded_at{};        // never decreases along global positions
  std::string payload;
  EventMetadata metadata;
};

// The category of a stream id: the part before the first '-' ("order-42" -> "order"); the whole id if none.
inline std::string_view stream_category(std::string_view stream_id) {
  return stream_id.substr(0, stream_id.find('-'));
}

}  // namespace evs
