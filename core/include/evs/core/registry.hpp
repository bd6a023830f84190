// The event registry: stable type name <-> C++ type <-> schema version <-> fingerprint, filled by EVS_EVENT
// at static-initialization time, plus the upcasters (EVS_UPCAST) that turn an older version of an event into
// the current type(s). Tools use it to check and display stored payloads without knowing the types at
// compile time; dispatch_event uses it for events stored at an older version or under an old name.
#pragma once

#include "evs/core/envelope.hpp"
#include "evs/core/error.hpp"

#include <any>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <typeindex>
#include <vector>

namespace evs {

struct EventTypeInfo {
  std::string name;             // stable name, part of the on-disk format
  std::uint32_t version = 1;    // this type's schema version, part of the on-disk format
  std::uint64_t fingerprint = 0;
  std::string cpp_type;         // demangled C++ type name, for messages
  std::type_index type = typeid(void);
  // Checks that a payload decodes as this type (corrupt_payload otherwise).
  Result<void> (*validate)(std::string_view payload, Encoding encoding) = nullptr;
  // Decodes a payload and re-encodes it as JSON.
  Result<std::string> (*to_json)(std::string_view payload, Encoding encoding) = nullptr;
  // The readable member description, schema_members<T>() (see fingerprint.hpp): what a store records next
  // to the fingerprint so that a shape drift can be named member by member.
  std::string members;
  // Decodes a payload into a std::any holding this type (used to upcast older versions).
  Result<std::any> (*decode)(std::string_view payload, Encoding encoding) = nullptr;
  // Encodes a std::any holding this type as compact JSON.
  std::string (*any_to_json)(const std::any& value) = nullptr;
};

// A type-erased upcaster (see evs/core/upcast.hpp): turns one value of `from` into one or more values whose
// types are among `to`. Pure: no I/O, no state.
struct UpcasterInfo {
  std::type_index from = typeid(void);
  std::string from_cpp_type;          // for messages
  std::vector<std::type_index> to;    // every type it may produce
  std::function<std::vector<std::any>(const std::any& from)> fn;
};

class EventRegistry {
 public:
  EventRegistry();
  ~EventRegistry();
  EventRegistry(const EventRegistry&) = delete;
  EventRegistry& operator=(const EventRegistry&) = delete;

  // The process-wide registry EVS_EVENT and EVS_UPCAST register into.
  static EventRegistry& global();

  // Adds a type under its (name, version). Registering the same C++ type under the same (name, version)
  // again is a no-op. Throws evs::Exception(invalid_argument) naming both types when the (name, version)
  // belongs to another type, or when the type is already registered under another (name, version).
  // Thread-safe.
  void add(EventTypeInfo info);
  // Adds the upcaster of `upcaster.from`. Throws evs::Exception(invalid_argument) when that type has one
  // already (every older version has exactly one). Thread-safe.
  void add_upcaster(UpcasterInfo upcaster);

  // The highest version registered under `name` (the current one unless the name was renamed away), or
  // null. Thread-safe; the pointer stays valid for the registry's life.
  const EventTypeInfo* find(std::string_view name) const;
  // The type registered for exactly (name, version), or null.
  const EventTypeInfo* find(std::string_view name, std::uint32_t version) const;
  const EventTypeInfo* find(std::type_index type) const;
  // The upcaster registered for `type`, or null: a type without one is current (events of it are handed to
  // the code as they are).
  const UpcasterInfo* upcaster_of(std::type_index type) const;
  // Every registered type, ordered by name, then version.
  std::vector<const EventTypeInfo*> all() const;

  // Checks the upcasting chains: every version of a name below its highest has exactly one upcaster; a
  // name's versions have no gaps; an upcaster's types are registered and never go back to a lower version of
  // the same name; following upcasters never loops, so every chain ends at current types. The error
  // (invalid_argument) names each broken link, one per line. The result is cached until the next add.
  [[nodiscard]] Result<void> validate() const;

  // Decodes `payload` as `stored` and applies upcasters until every value is of a current type; a current
  // `stored` gives its one value. Validates the chains first (once). Errors: corrupt_payload (the payload
  // does not decode as `stored`), invalid_argument (a broken chain, as validate()).
  [[nodiscard]] Result<std::vector<std::any>> upcast(const EventTypeInfo& stored, std::string_view payload,
                                                     Encoding encoding) const;

  // The stored names whose events reach `current` through upcasters, `current`'s own name included; sorted,
  // no duplicates. Projections subscribe to these so old names still reach their handlers.
  std::vector<std::string> names_reaching(std::type_index current) const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

namespace detail {
// Validates the global registry's upcasting chains; on a broken chain prints the links and aborts. Runs once
// per process: at start-up (a Repository's constructor, ProjectionEngine::add, and so ProcessManager::attach)
// and at the latest on the first dispatch_event, so a broken deploy stops before it serves or decodes.
bool require_valid_upcasting_chains();
}  // namespace detail

}  // namespace evs
