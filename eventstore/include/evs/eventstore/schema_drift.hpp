// Shape drift: a registered event type that no longer matches the type that first stored its version.
//
// Every store records, per (type name, schema version), the fingerprint and the member description
// (schema_members<T>(), e.g. "order_id:string,total_cents:int64") of the type whose event was the first of
// that version it stored (EventData::fingerprint; 0 records nothing). If the application later adds,
// removes, renames, reorders or retypes a member of that type without bumping its schema version, the
// stored payloads no longer decode as the code's type (the binary encoding is positional: they would fail
// or, worse, decode into the wrong members). The comparison below finds that before anything is decoded:
// SqliteEventStore runs it at open (SqliteOptions::schema_check) and `evs check` reports it.
#pragma once

#include "evs/core/envelope.hpp"
#include "evs/core/registry.hpp"

#include <cstdint>
#include <functional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace evs {

// What a store does when a type differs from the recorded one of its (name, version): at open, a registered
// type; at append, the type of an appended event (with a fingerprint).
enum class SchemaCheck : std::uint8_t {
  refuse,  // the open fails: evs::Exception(errc::schema_drift) with a message naming every difference; an
           // append fails with errc::schema_drift and the same naming, and stores nothing
  warn,    // the open succeeds, the append is stored; the message goes to the warning callback (stderr by
           // default), once per store object and (type, version, fingerprint) for appends
  off,     // nothing is compared
};

// What a store recorded for one (type name, schema version).
struct RecordedSchema {
  std::string type;                 // the stable event type name
  std::uint32_t schema_version = 1;
  std::uint64_t fingerprint = 0;    // of the type that appended the first event of this version
  std::string members;              // its schema_members(); empty if that process had not registered it
  Timestamp recorded_at{};

  friend bool operator==(const RecordedSchema&, const RecordedSchema&) = default;
};

// One member of a description: its name and its type ("total_cents", "int64").
struct SchemaMember {
  std::string name;
  std::string type;
  friend bool operator==(const SchemaMember&, const SchemaMember&) = default;
};

// How a registered type differs from the recorded one of the same (name, version).
struct SchemaDrift {
  std::string type;
  std::uint32_t schema_version = 1;
  std::string cpp_type;  // the registered C++ type, for the message
  std::uint64_t recorded_fingerprint = 0;
  std::uint64_t registered_fingerprint = 0;
  std::string recorded_members;    // empty when the store has no description
  std::string registered_members;
  std::vector<SchemaMember> added;    // in the registered type only
  std::vector<SchemaMember> removed;  // in the recorded type only
  // Renamed: a removed and an added member at the same place with the same type. first: recorded,
  // second: registered.
  std::vector<std::pair<SchemaMember, SchemaMember>> renamed;
  // Retyped: the same name with another type. first: recorded, second: registered.
  std::vector<std::pair<SchemaMember, SchemaMember>> retyped;
  bool reordered = false;  // the members both have appear in another order

  // One paragraph: "event type shop.order_placed version 1 (OrderPlaced) differs from the type that stored
  // it: added currency:string; renamed customer -> buyer (string); ... stored: ...; registered: ...".
  std::string message() const;
};

// The top-level members of a description, in order. Commas inside <> and {} belong to a member's type.
std::vector<SchemaMember> parse_schema_members(std::string_view members);

// Fills added / removed / renamed / retyped / reordered of a drift from two descriptions.
void diff_schema_members(std::string_view recorded, std::string_view registered, SchemaDrift& out);

// The member description of the type registered in `registry` as (type, version) with `fingerprint`, or an
// empty string when there is none (a store records that as "no description").
std::string registered_members(const EventRegistry& registry, std::string_view type, std::uint32_t version,
                               std::uint64_t fingerprint);

// One SchemaDrift per recorded (type, version) whose registered type has another fingerprint, in the order
// of `recorded`. A recorded (type, version) that is not registered is no drift: this code does not read it.
std::vector<SchemaDrift> find_schema_drift(std::span<const RecordedSchema> recorded,
                                           const EventRegistry& registry);

// The message of a store open that found `drift` (every drift's message, then what to do about it).
std::string schema_drift_report(std::string_view store, std::span<const SchemaDrift> drift);

// The drift of an appended event of (recorded.type, recorded.schema_version) whose `fingerprint` differs from
// the recorded one. Its members and C++ type come from the type registered in `registry` (or else in the
// global registry) with that fingerprint; unknown, they are empty and only the fingerprints are compared.
SchemaDrift appended_schema_drift(const RecordedSchema& recorded, std::uint64_t fingerprint,
                                  const EventRegistry& registry);

// The message of an append to `stream` in `store` that met `drift`: refused (nothing stored) or, with
// `stored`, stored anyway (SchemaCheck::warn).
std::string appended_schema_drift_report(std::string_view store, std::string_view stream, const SchemaDrift& drift,
                                         bool stored);

// Passes a schema-check warning to `warning`, or prints it on stderr ("evs: warning: ...") when it is empty.
void report_schema_warning(const std::function<void(const std::string&)>& warning, const std::string& message);

// Applies `check` to what a store recorded: off does nothing; otherwise a drift either throws
// evs::Exception(errc::schema_drift) with schema_drift_report (refuse) or passes the report to `warning`,
// or to stderr when `warning` is empty (warn).
void apply_schema_check(SchemaCheck check, std::string_view store, std::span<const RecordedSchema> recorded,
                        const EventRegistry& registry, const std::function<void(const std::string&)>& warning);

}  // namespace evs
