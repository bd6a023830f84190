// Typed dispatch of a stored event to one of a compile-time list of event types: finds the type by its
// stable name, checks the schema version, decodes the payload and calls `f(const E&)`. Aggregates and
// projections both use it, so they report unknown, newer and corrupt events in the same words.
#pragma once

#include "evs/core/codec.hpp"
#include "evs/core/envelope.hpp"
#include "evs/core/error.hpp"
#include "evs/core/event.hpp"

#include <boost/mp11/algorithm.hpp>
#include <boost/mp11/list.hpp>

#include <string>
#include <type_traits>

namespace evs {

// True if `type_name` is the stable name of one of Events.
template <Event... Events>
bool handles_type(std::string_view type_name) {
  return ((type_name == event_info_v<Events>.name) || ...);
}

namespace detail {
// "<type> at <stream>@<version>", for error messages.
inline std::string event_where(const RecordedEvent& e) {
  return e.type + " at " + e.stream_id + "@" + std::to_string(e.version);
}
}  // namespace detail

// Errors: unknown_event_type (not one of Events; the message names `owner`), unsupported_schema_version
// (stored version newer than the code's), corrupt_payload. Exceptions thrown by `f` propagate.
// The hot path (a known type that decodes) builds no strings: messages are made only on failure.
template <Event... Events, class F>
[[nodiscard]] Result<void> dispatch_event(const RecordedEvent& e, std::string_view owner, F&& f) {
  Result<void> result;
  bool matched = false;
  boost::mp11::mp_for_each<boost::mp11::mp_list<std::add_pointer_t<Events>...>>([&]<class E>(E*) {
    if (matched || e.type != event_info_v<E>.name) return;
    matched = true;
    if (e.schema_version > event_info_v<E>.version) {
      result = Error{errc::unsupported_schema_version, "event " + detail::event_where(e) + " has schema version " +
                                                           std::to_string(e.schema_version) + ", this build knows " +
                                                           std::to_string(event_info_v<E>.version)};
      return;
    }
    E value{};
    if (auto r = decode_into(e.payload, e.encoding, value); !r) {
      result = Error{errc::corrupt_payload, "event " + detail::event_where(e) + ": " + r.error().message};
      return;
    }
    f(static_cast<const E&>(value));
  });
  if (!matched)
    return Error{errc::unknown_event_type, std::string(owner) + " has no handler for event type '" + e.type +
                                               "' (stream " + e.stream_id + ")"};
  return result;
}

}  // namespace evs
