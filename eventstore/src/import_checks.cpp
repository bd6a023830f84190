#include "import_checks.hpp"

#include "evs/core/codec.hpp"

#include <limits>
#include <unordered_map>

namespace evs::detail {

Error check_import(std::span<const RecordedEvent> events, std::uint64_t last_position,
                   const std::function<std::uint64_t(std::string_view stream)>& version_of) {
  constexpr auto max_position = static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max());
  std::unordered_map<std::string_view, std::uint64_t> versions;  // the batch's streams, as it goes
  std::uint64_t previous = last_position;
  for (const RecordedEvent& e : events) {
    const auto refuse = [&](const std::string& why) {
      return Error{errc::invalid_argument, "import the event at position " + std::to_string(e.position) +
                                               " (stream " + e.stream_id + ", version " +
                                               std::to_string(e.version) + "): " + why + "; nothing of its batch was stored"};
    };
    if (e.stream_id.empty()) return refuse("the stream id is empty");
    if (e.type.empty()) return refuse("the event type name is empty");
    if (e.position == 0 || e.position > max_position) return refuse("positions run from 1 to 2^63 - 1");
    if (e.position <= previous)
      return refuse(previous == last_position
                        ? "the store holds events up to position " + std::to_string(last_position) +
                              " already: imported positions must be above them"
                        : "positions must ascend, and the event before it is at position " + std::to_string(previous));
    previous = e.position;
    auto at = versions.find(e.stream_id);
    if (at == versions.end()) at = versions.emplace(e.stream_id, version_of(e.stream_id)).first;
    if (e.version != at->second + 1)
      return refuse("the stream is at version " + std::to_string(at->second) + ", so the next version is " +
                    std::to_string(at->second + 1));
    at->second = e.version;
  }
  return {};
}

bool continues_regular_log(std::span<const RecordedEvent> events, std::uint64_t last_position,
                           Timestamp last_recorded_at) {
  std::uint64_t position = last_position;
  Timestamp time = last_recorded_at;
  for (const RecordedEvent& e : events) {
    if (e.position != position + 1 || e.recorded_at < time) return false;
    position = e.position;
    time = e.recorded_at;
  }
  return true;
}

std::optional<std::string> stored_user_metadata(const EventMetadata& metadata) {
  if (metadata.user.empty()) return std::nullopt;
  return encode(metadata.user, Encoding::binary);
}

}  // namespace evs::detail
