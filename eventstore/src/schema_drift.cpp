#include "evs/eventstore/schema_drift.hpp"

#include <algorithm>
#include <cstdio>
#include <iomanip>
#include <sstream>

namespace evs {
namespace {

std::string hex(std::uint64_t v) {
  std::ostringstream out;
  out << std::hex << std::setw(16) << std::setfill('0') << v;
  return out.str();
}

std::string text(const SchemaMember& m) { return m.name + ":" + m.type; }

const SchemaMember* find_member(const std::vector<SchemaMember>& members, std::string_view name) {
  for (const SchemaMember& m : members)
    if (m.name == name) return &m;
  return nullptr;
}

}  // namespace

std::vector<SchemaMember> parse_schema_members(std::string_view members) {
  std::vector<SchemaMember> out;
  std::size_t start = 0;
  int depth = 0;
  const auto take = [&](std::size_t end) {
    const std::string_view one = members.substr(start, end - start);
    if (one.empty()) return;
    const std::size_t colon = one.find(':');
    if (colon == std::string_view::npos)
      out.push_back({std::string(one), ""});
    else
      out.push_back({std::string(one.substr(0, colon)), std::string(one.substr(colon + 1))});
  };
  for (std::size_t i = 0; i < members.size(); ++i) {
    const char c = members[i];
    if (c == '<' || c == '{') ++depth;
    if (c == '>' || c == '}') --depth;
    if (c == ',' && depth == 0) {
      take(i);
      start = i + 1;
    }
  }
  take(members.size());
  return out;
}

void diff_schema_members(std::string_view recorded, std::string_view registered, SchemaDrift& out) {
  const std::vector<SchemaMember> before = parse_schema_members(recorded);
  const std::vector<SchemaMember> after = parse_schema_members(registered);
  std::vector<std::size_t> removed, added;  // indexes into before / after
  for (std::size_t i = 0; i < before.size(); ++i) {
    const SchemaMember* now = find_member(after, before[i].name);
    if (now == nullptr)
      removed.push_back(i);
    else if (now->type != before[i].type)
      out.retyped.emplace_back(before[i], *now);
  }
  for (std::size_t i = 0; i < after.size(); ++i)
    if (find_member(before, after[i].name) == nullptr) added.push_back(i);
  // A member that left and one that came at the same place with the same type: a rename.
  for (auto r = removed.begin(); r != removed.end();) {
    auto a = std::find_if(added.begin(), added.end(),
                          [&](std::size_t i) { return i == *r && after[i].type == before[*r].type; });
    if (a == added.end()) {
      ++r;
      continue;
    }
    out.renamed.emplace_back(before[*r], after[*a]);
    added.erase(a);
    r = removed.erase(r);
  }
  for (std::size_t i : removed) out.removed.push_back(before[i]);
  for (std::size_t i : added) out.added.push_back(after[i]);
  // The members both sides have, in each side's order.
  std::vector<std::string> kept_before, kept_after;
  for (const SchemaMember& m : before)
    if (find_member(after, m.name)) kept_before.push_back(m.name);
  for (const SchemaMember& m : after)
    if (find_member(before, m.name)) kept_after.push_back(m.name);
  out.reordered = kept_before != kept_after;
}

std::string SchemaDrift::message() const {
  std::string m = "event type " + type + " version " + std::to_string(schema_version);
  if (!cpp_type.empty()) m += " (" + cpp_type + ")";
  m += " differs from the type that stored it";
  if (recorded_members.empty() || registered_members.empty()) {
    return m + ": its fingerprint is " + hex(registered_fingerprint) + ", the store recorded " +
           hex(recorded_fingerprint) +
           (recorded_members.empty() ? " without a member description" : " for " + recorded_members) +
           (registered_members.empty() ? "" : "; registered: " + registered_members);
  }
  std::vector<std::string> changes;
  for (const SchemaMember& a : added) changes.push_back("added " + text(a));
  for (const SchemaMember& r : removed) changes.push_back("removed " + text(r));
  for (const auto& [from, to] : renamed)
    changes.push_back("renamed " + from.name + " -> " + to.name + " (" + to.type + ")");
  for (const auto& [from, to] : retyped)
    changes.push_back("retyped " + from.name + " " + from.type + " -> " + to.type);
  if (reordered) changes.push_back("reordered members");
  if (changes.empty()) changes.push_back("fingerprints differ (" + hex(recorded_fingerprint) + " stored, " +
                                         hex(registered_fingerprint) + " registered)");
  m += ": ";
  for (std::size_t i = 0; i < changes.size(); ++i) m += (i ? "; " : "") + changes[i];
  return m + ". Stored: " + recorded_members + "; registered: " + registered_members;
}

std::string registered_members(const EventRegistry& registry, std::string_view type, std::uint32_t version,
                               std::uint64_t fingerprint) {
  for (const EventTypeInfo* info : registry.all())
    if (info->name == type && info->version == version && info->fingerprint == fingerprint) return info->members;
  return {};
}

std::vector<SchemaDrift> find_schema_drift(std::span<const RecordedSchema> recorded,
                                           const EventRegistry& registry) {
  std::vector<SchemaDrift> out;
  const std::vector<const EventTypeInfo*> types = registry.all();
  for (const RecordedSchema& r : recorded) {
    if (r.fingerprint == 0) continue;
    for (const EventTypeInfo* info : types) {
      if (info->name != r.type || info->version != r.schema_version || info->fingerprint == r.fingerprint)
        continue;
      SchemaDrift d;
      d.type = r.type;
      d.schema_version = r.schema_version;
      d.cpp_type = info->cpp_type;
      d.recorded_fingerprint = r.fingerprint;
      d.registered_fingerprint = info->fingerprint;
      d.recorded_members = r.members;
      d.registered_members = info->members;
      if (!r.members.empty()) diff_schema_members(r.members, info->members, d);
      out.push_back(std::move(d));
    }
  }
  return out;
}

SchemaDrift appended_schema_drift(const RecordedSchema& recorded, std::uint64_t fingerprint,
                                  const EventRegistry& registry) {
  SchemaDrift d;
  d.type = recorded.type;
  d.schema_version = recorded.schema_version;
  d.recorded_fingerprint = recorded.fingerprint;
  d.registered_fingerprint = fingerprint;
  d.recorded_members = recorded.members;
  for (const EventRegistry* r : {&registry, static_cast<const EventRegistry*>(&EventRegistry::global())}) {
    const EventTypeInfo* info = r->find(recorded.type, recorded.schema_version);
    if (info == nullptr || info->fingerprint != fingerprint) continue;
    d.cpp_type = info->cpp_type;
    d.registered_members = info->members;
    break;
  }
  if (!d.recorded_members.empty() && !d.registered_members.empty())
    diff_schema_members(d.recorded_members, d.registered_members, d);
  return d;
}

std::string appended_schema_drift_report(std::string_view store, std::string_view stream, const SchemaDrift& drift,
                                         bool stored) {
  return "append to stream " + std::string(stream) + " in " + std::string(store) + ": " +
         (stored ? "stored anyway (schema check warn), but its event type was changed without a schema version "
                   "bump; "
                 : "refused, nothing of this append was stored: its event type was changed without a schema "
                   "version bump; ") +
         drift.message() +
         ". Restore the stored shape, or register the new shape as the next schema version with an upcaster "
         "from this one (see docs/schema-evolution.md).";
}

std::string schema_drift_report(std::string_view store, std::span<const SchemaDrift> drift) {
  std::string m = "open " + std::string(store) + ": " + std::to_string(drift.size()) +
                  (drift.size() == 1 ? " event type was" : " event types were") +
                  " changed without a schema version bump; their stored events would not decode as the "
                  "registered types.";
  for (const SchemaDrift& d : drift) m += "\n  " + d.message();
  return m + "\nRestore the stored shape, or register the new shape as the next schema version with an "
             "upcaster from this one (see docs/schema-evolution.md).";
}

void apply_schema_check(SchemaCheck check, std::string_view store, std::span<const RecordedSchema> recorded,
                        const EventRegistry& registry, const std::function<void(const std::string&)>& warning) {
  if (check == SchemaCheck::off) return;
  const std::vector<SchemaDrift> drift = find_schema_drift(recorded, registry);
  if (drift.empty()) return;
  const std::string report = schema_drift_report(store, drift);
  if (check == SchemaCheck::refuse) throw Exception(errc::schema_drift, report);
  report_schema_warning(warning, report);
}

void report_schema_warning(const std::function<void(const std::string&)>& warning, const std::string& message) {
  if (warning)
    warning(message);
  else
    std::fprintf(stderr, "evs: warning: %s\n", message.c_str());
}

}  // namespace evs
