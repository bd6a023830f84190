#include "append_checks.hpp"

#include <unordered_set>

namespace evs::detail {

Error validate_append(std::string_view stream_id, std::span<const EventData> events) {
  if (stream_id.empty()) return {errc::invalid_argument, "stream id is empty"};
  std::unordered_set<Uuid, UuidHash> seen;
  seen.reserve(events.size());
  for (const EventData& e : events) {
    if (e.type.empty()) return {errc::invalid_argument, "event type name is empty (stream " + std::string(stream_id) + ")"};
    if (e.event_id.is_nil()) return {errc::invalid_argument, "event id is nil (stream " + std::string(stream_id) + ")"};
    if (!seen.insert(e.event_id).second)
      return {errc::invalid_argument, "event id " + e.event_id.to_string() + " appears twice in one append"};
  }
  return {};
}

Error wrong_version(std::string_view stream_id, std::uint64_t current, ExpectedVersion expected) {
  return {errc::wrong_expected_version, "stream " + std::string(stream_id) + " is at version " +
                                            std::to_string(current) + ", expected " + expected.to_string()};
}

Error partial_duplicate(std::string_view stream_id, const Uuid& id, std::string_view why) {
  return {errc::duplicate_event,
          "event " + id.to_string() + " (stream " + std::string(stream_id) + ") " + std::string(why)};
}

}  // namespace evs::detail
