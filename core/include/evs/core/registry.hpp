// The event registry: stable type name <-> C++ type <-> schema version <-> fingerprint, filled by EVS_EVENT
// at static-initialization time. Tools use it to check and display stored payloads without knowing the
// types at compile time.
#pragma once

#include "evs/core/envelope.hpp"
#include "evs/core/error.hpp"

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <typeindex>
#include <vector>

namespace evs {

struct EventTypeInfo {
  std::string name;             // stable name, part of the on-disk format
  std::uint32_t version = 1;    // current schema version, part of the on-disk format
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
};

class EventRegistry {
 public:
  EventRegistry();
  ~EventRegistry();
  EventRegistry(const EventRegistry&) = delete;
  EventRegistry& operator=(const EventRegistry&) = delete;

  // The process-wide registry EVS_EVENT registers into.
  static EventRegistry& global();

  // Adds a type. Registering the same C++ type under the same name again is a no-op. Throws
  // evs::Exception(invalid_argument) naming both types when the name belongs to another type, or when the
  // type is already registered under another name. Thread-safe.
  void add(EventTypeInfo info);

  // The type registered under `name`, or null. Thread-safe; the pointer stays valid for the registry's life.
  const EventTypeInfo* find(std::string_view name) const;
  const EventTypeInfo* find(std::type_index type) const;
  // Every registered type, ordered by name.
  std::vector<const EventTypeInfo*> all() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace evs
