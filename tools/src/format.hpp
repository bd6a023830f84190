// Internal: how the tool renders things. Human output is aligned tables and indented event blocks; --json
// output is one compact JSON object per line.
#pragma once

#include "evs/core/envelope.hpp"
#include "evs/core/registry.hpp"

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <ostream>
#include <string>
#include <string_view>
#include <vector>

namespace evs::cli {

// ---- Values

// "2025-01-07T10:11:12.123456Z" (UTC, microseconds).
std::string iso_time(std::int64_t microseconds_since_epoch);
std::string iso_time(Timestamp t);
// Parses an RFC 3339 time: "2026-11-22T15:00:00Z", with an optional fraction of a second (".123456",
// precise to the microsecond) and a zone ("Z" or "+01:00"; none means UTC). The separator may also be 't' or
// a space. nullopt for anything else, including trailing characters and out-of-range fields.
std::optional<Timestamp> parse_time(std::string_view text);
// "1 event", "3 events".
std::string plural(std::uint64_t n, std::string_view one, std::string_view many);
// "1.2 MiB", "512 B".
std::string human_size(std::uint64_t bytes);
// "3m 20s", "1.5s", "2h 05m".
std::string human_duration(double seconds);
// Lowercase hex of at most `max_bytes` bytes.
std::string hex(std::string_view bytes, std::size_t max_bytes = SIZE_MAX);
std::string base64_encode(std::string_view bytes);
// nullopt on malformed input.
std::optional<std::string> base64_decode(std::string_view text);
const char* encoding_name(Encoding e);
// The message of an exception or error on one line (newlines folded into "; ").
std::string one_line(std::string_view text);

// ---- JSON

// Builds one JSON object. Keys appear in insertion order.
class JsonObject {
 public:
  JsonObject();
  ~JsonObject();
  JsonObject(JsonObject&&) noexcept;
  JsonObject& operator=(JsonObject&&) noexcept;

  JsonObject& str(std::string_view key, std::string_view value);
  JsonObject& str_or_null(std::string_view key, std::string_view value);  // null when empty
  JsonObject& num(std::string_view key, std::uint64_t value);
  JsonObject& inum(std::string_view key, std::int64_t value);
  JsonObject& real(std::string_view key, double value);
  JsonObject& boolean(std::string_view key, bool value);
  JsonObject& null(std::string_view key);
  // `json` is an already-serialized JSON value; it is re-serialized compactly (false if it does not parse,
  // and then nothing is added).
  bool raw(std::string_view key, std::string_view json);
  JsonObject& object(std::string_view key, const std::map<std::string, std::string>& map);
  JsonObject& object(std::string_view key, const JsonObject& nested);
  JsonObject& strings(std::string_view key, const std::vector<std::string>& values);
  JsonObject& numbers(std::string_view key, const std::vector<std::uint64_t>& values);
  JsonObject& objects(std::string_view key, const std::vector<JsonObject>& values);

  std::string text() const;  // "{...}"

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// Compacts `json` (re-serializes it); nullopt when it does not parse. Accepts NaN/Infinity (codec extension).
std::optional<std::string> compact_json(std::string_view json);

// ---- Tables

class Table {
 public:
  explicit Table(std::vector<std::string> headers, std::vector<bool> right_aligned = {});
  void row(std::vector<std::string> cells);
  bool empty() const { return rows_.empty(); }
  void print(std::ostream& out) const;

 private:
  std::vector<std::string> headers_;
  std::vector<bool> right_;
  std::vector<std::vector<std::string>> rows_;
};

// ---- Events

// A payload as the tool shows it.
struct PayloadView {
  std::optional<std::string> json;  // the payload as compact JSON (stored JSON, or binary decoded)
  std::string problem;              // why it is not JSON: "not registered", "does not decode: ..."
};
PayloadView view_payload(const RecordedEvent& e, const EventRegistry& registry);

// An event stored at an older (type, schema version) that the registry upcasts: what it reads as today.
struct UpcastView {
  struct Current {
    std::string type;
    std::uint32_t schema_version = 0;
    std::string json;  // compact JSON of the current value
  };
  bool applies = false;         // the stored (type, version) has an upcaster
  std::vector<Current> events;  // the current events, in order (several after a split, none if dropped)
  std::string problem;          // why upcasting failed (corrupt payload, broken chain)
};
UpcastView view_upcast(const RecordedEvent& e, const EventRegistry& registry);

// "<23 bytes: 0a6f72...>" (hex of the first 64 bytes).
std::string payload_hex_summary(std::string_view payload);

// The human form: a header line and indented envelope/payload lines.
void print_event(std::ostream& out, const RecordedEvent& e, const EventRegistry& registry);

// The JSON-lines form shared by read, tail and export (and accepted by import): the full envelope, then
// "payload" (a JSON payload, as JSON) or "payload_base64" (binary bytes, or a JSON payload that does not
// parse). With `decode_binary`, a registered binary payload is also shown decoded as "payload".
std::string event_json(const RecordedEvent& e, const EventRegistry& registry, bool decode_binary);

}  // namespace evs::cli
