// Declaring events. An event is a plain struct, described and registered once, in the same namespace,
// with a stable name, a schema version and its members:
//
//   struct OrderPlaced { std::string order_id; std::int64_t total_cents; };
//   EVS_EVENT(OrderPlaced, "shop.order_placed", 1, order_id, total_cents)
//
// EVS_EVENT with members is BOOST_DESCRIBE_STRUCT(OrderPlaced, (), (order_id, total_cents)) plus the
// registration. Without members it only registers a type described already (a struct with described
// bases, or one described elsewhere). Either way every member must be described: one left out would be
// neither stored nor fingerprinted, so it is a compile error naming the type (see checked_public_members).
//
// The name and version are stored with every event: never change them for a type that has been stored.
// Registering two types under one (name, version) stops the program at start-up with a message naming both.
// A name may have several versions: the older ones are frozen structs with an upcaster each (see
// evs/core/upcast.hpp and docs/schema-evolution.md); the highest version is the one the code raises.
#pragma once

#include "evs/core/codec.hpp"
#include "evs/core/fingerprint.hpp"
#include "evs/core/registry.hpp"

#include <boost/core/demangle.hpp>
#include <boost/describe/class.hpp>

#include <any>
#include <concepts>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <optional>
#include <string>
#include <string_view>

namespace evs {

struct EventInfo {
  std::string_view name;
  std::uint32_t version;
};

// A type registered with EVS_EVENT.
template <class T>
concept Event = requires(const T* p) {
  { evs_event_info(p) } -> std::same_as<EventInfo>;
};

template <Event T>
inline constexpr EventInfo event_info_v = evs_event_info(static_cast<const T*>(nullptr));

// The EventData for appending a typed event: its registered name, schema version and fingerprint, the encoded payload,
// `metadata`, and `event_id` or, without one, a new id. Pass a deterministic id (e.g. command_event_id) to
// make a retried append idempotent.
template <Event T>
EventData make_event_data(const T& event, Encoding encoding = Encoding::binary, EventMetadata metadata = {},
                          std::optional<Uuid> event_id = std::nullopt) {
  EventData d;
  if (event_id) d.event_id = *event_id;
  d.type = std::string(event_info_v<T>.name);
  d.schema_version = event_info_v<T>.version;
  d.fingerprint = fingerprint_v<T>;
  d.encoding = encoding;
  encode_to(d.payload, event, encoding);
  d.metadata = std::move(metadata);
  return d;
}

// The id of the `index`-th event (from 0) that the command `command_id` appends: the name-based (version 5)
// id of "evs.command-event/<index>" in the namespace command_id. A command retried with the same id raises
// the same ids, so the store's idempotent append stores its events once. On-disk format: never change.
inline Uuid command_event_id(const Uuid& command_id, std::size_t index) {
  return Uuid::name_based(command_id, "evs.command-event/" + std::to_string(index));
}

namespace detail {

template <class T>
[[nodiscard]] Result<void> validate_payload(std::string_view payload, Encoding encoding) {
  T value{};
  return decode_into(payload, encoding, value);
}

template <class T>
[[nodiscard]] Result<std::string> payload_to_json(std::string_view payload, Encoding encoding) {
  T value{};
  if (auto r = decode_into(payload, encoding, value); !r) return r.error();
  return encode(value, Encoding::json);
}

template <class T>
[[nodiscard]] Result<std::any> decode_any(std::string_view payload, Encoding encoding) {
  T value{};
  // std::any converts from anything, the error included: say which alternative this is.
  if (auto r = decode_into(payload, encoding, value); !r) return {boost::system::in_place_error, r.error()};
  return {boost::system::in_place_value, std::move(value)};
}

template <class T>
std::string any_to_json(const std::any& value) {
  return encode(std::any_cast<const T&>(value), Encoding::json);
}

// The registry entry of T (EVS_EVENT adds it to the global registry; tests build their own registries).
template <class T>
EventTypeInfo event_type_info() {
  EventTypeInfo info;
  info.name = std::string(event_info_v<T>.name);
  info.version = event_info_v<T>.version;
  info.fingerprint = fingerprint_v<T>;
  info.members = schema_members<T>();
  info.cpp_type = boost::core::demangle(typeid(T).name());
  info.type = typeid(T);
  info.validate = &validate_payload<T>;
  info.to_json = &payload_to_json<T>;
  info.decode = &decode_any<T>;
  info.any_to_json = &any_to_json<T>;
  return info;
}

template <class T>
bool register_event() {
  try {
    EventRegistry::global().add(event_type_info<T>());
  } catch (const Exception& e) {
    std::fprintf(stderr, "evs: fatal: %s\n", e.what());
    std::abort();
  }
  return true;
}

}  // namespace detail
}  // namespace evs

#define EVS_EVENT(Type, Name, Version, ...)                                                      \
  __VA_OPT__(BOOST_DESCRIBE_STRUCT(Type, (), (__VA_ARGS__)))                                       \
  static_assert(::boost::describe::has_describe_members<Type>::value,                            \
                "EVS_EVENT(" #Type "): describe it, EVS_EVENT(Type, name, version, members...)");     \
  static_assert((Version) >= 1, "EVS_EVENT(" #Type "): schema versions start at 1");             \
  [[maybe_unused]] constexpr ::evs::EventInfo evs_event_info(const Type*) { return {Name, Version}; } \
  [[maybe_unused]] inline const bool evs_event_registered_##Type = ::evs::detail::register_event<Type>();
