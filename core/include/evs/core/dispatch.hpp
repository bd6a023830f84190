// Typed dispatch of a stored event to one of a compile-time list of event types: finds the type by its
// stable name and schema version, decodes the payload and calls `f(const E&)`. An event stored at an older
// version or under an old name is decoded as its registered old type and upcast (evs/core/upcast.hpp), so
// `f` only ever sees current types. Aggregates, projections and process managers all use it, so they report
// unknown, newer and corrupt events in the same words.
#pragma once

#include "evs/core/codec.hpp"
#include "evs/core/envelope.hpp"
#include "evs/core/error.hpp"
#include "evs/core/event.hpp"
#include "evs/core/registry.hpp"

#include <boost/mp11/algorithm.hpp>
#include <boost/mp11/list.hpp>

#include <algorithm>
#include <any>
#include <string>
#include <type_traits>
#include <vector>

namespace evs {

// True if `type_name` is the stable name of one of Events (their current names only).
template <Event... Events>
bool handles_type(std::string_view type_name) {
  return ((type_name == event_info_v<Events>.name) || ...);
}

// The stored type names whose events reach one of Events: their own names and every old name that upcasts
// into them (global registry). Sorted, no duplicates; for a projection's SQL type filter.
template <Event... Events>
std::vector<std::string> stored_type_names() {
  std::vector<std::string> names;
  (
      [&] {
        for (auto& n : EventRegistry::global().names_reaching(typeid(Events))) names.push_back(std::move(n));
      }(),
      ...);
  std::sort(names.begin(), names.end());
  names.erase(std::unique(names.begin(), names.end()), names.end());
  return names;
}

namespace detail {
// "<type> at <stream>@<version>", for error messages.
inline std::string event_where(const RecordedEvent& e) {
  return e.type + " at " + e.stream_id + "@" + std::to_string(e.version);
}

// The slow path of dispatch_event: an event not stored as one of Events' current (name, version).
template <Event... Events, class F>
[[nodiscard]] Result<void> dispatch_upcast(const RecordedEvent& e, std::string_view owner, F& f) {
  const EventRegistry& registry = EventRegistry::global();
  const EventTypeInfo* stored = registry.find(e.type, e.schema_version);
  if (stored == nullptr) {
    if (handles_type<Events...>(e.type))
      return Error{errc::unsupported_schema_version,
                   "event " + event_where(e) + " has schema version " + std::to_string(e.schema_version) +
                       ", which this build does not register (register the old struct and an upcaster)"};
    return Error{errc::unknown_event_type, std::string(owner) + " has no handler for event type '" + e.type +
                                               "' (stream " + e.stream_id + ")"};
  }
  auto values = registry.upcast(*stored, e.payload, e.encoding);
  if (!values) return Error{values.error().code, "event " + event_where(e) + ": " + values.error().message};
  bool handled = false;
  for (const std::any& value : *values)
    boost::mp11::mp_for_each<boost::mp11::mp_list<std::add_pointer_t<Events>...>>([&]<class E>(E*) {
      if (const E* typed = std::any_cast<E>(&value)) {
        handled = true;
        f(*typed);
      }
    });
  if (!handled && !values->empty())
    return Error{errc::unknown_event_type, std::string(owner) + " has no handler for event type '" + e.type +
                                               "' v" + std::to_string(e.schema_version) + " (stream " +
                                               e.stream_id + ") nor for what it upcasts to"};
  return {};
}
}  // namespace detail

// Errors: unknown_event_type (not one of Events, nor upcast into one; the message names `owner`),
// unsupported_schema_version (stored version newer than the code's, or an older one with no registered
// type), corrupt_payload. Exceptions thrown by `f` propagate. An upcast that yields several events calls `f`
// for each of Events among them, in order (others are skipped); one that yields none calls nothing.
// The hot path (a current type that decodes) builds no strings and does no registry lookup: messages are
// made only on failure, and older versions take the upcasting path.
template <Event... Events, class F>
[[nodiscard]] Result<void> dispatch_event(const RecordedEvent& e, std::string_view owner, F&& f) {
  [[maybe_unused]] static const bool chains_checked = detail::require_valid_upcasting_chains();
  Result<void> result;
  bool matched = false;
  boost::mp11::mp_for_each<boost::mp11::mp_list<std::add_pointer_t<Events>...>>([&]<class E>(E*) {
    if (matched || e.type != event_info_v<E>.name || e.schema_version < event_info_v<E>.version) return;
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
  if (!matched) return detail::dispatch_upcast<Events...>(e, owner, f);
  return result;
}

}  // namespace evs
