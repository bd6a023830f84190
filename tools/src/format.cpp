#include "format.hpp"

#include "evs/core/detail/json_parse.hpp"

#include <rapidjson/document.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <algorithm>
#include <any>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <ctime>
#include <typeindex>

namespace evs::cli {
namespace {

using JsonWriter = rapidjson::Writer<rapidjson::StringBuffer, rapidjson::UTF8<>, rapidjson::UTF8<>,
                                     rapidjson::CrtAllocator, rapidjson::kWriteNanAndInfFlag>;
bool parse_json(std::string_view text, rapidjson::Document& doc) { return detail::parse_json(text, doc).empty(); }

}  // namespace

// ---- Values

std::string iso_time(std::int64_t us) {
  std::int64_t seconds = us / 1'000'000;
  std::int64_t micros = us % 1'000'000;
  if (micros < 0) {
    micros += 1'000'000;
    --seconds;
  }
  const std::time_t t = static_cast<std::time_t>(seconds);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[64];
  std::snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02d.%06dZ", tm.tm_year + 1900, tm.tm_mon + 1,
                tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, static_cast<int>(micros));
  return buf;
}

std::string plural(std::uint64_t n, std::string_view one, std::string_view many) {
  return std::to_string(n) + " " + std::string(n == 1 ? one : many);
}

std::string iso_time(Timestamp t) { return iso_time(static_cast<std::int64_t>(t.time_since_epoch().count())); }

namespace {

// Reads exactly `digits` decimal digits at `at` (advancing it); nullopt otherwise.
std::optional<int> fixed_digits(std::string_view text, std::size_t& at, std::size_t digits) {
  if (text.size() - at < digits) return std::nullopt;
  int value = 0;
  for (std::size_t i = 0; i < digits; ++i) {
    const char c = text[at + i];
    if (c < '0' || c > '9') return std::nullopt;
    value = value * 10 + (c - '0');
  }
  at += digits;
  return value;
}

bool expect(std::string_view text, std::size_t& at, std::string_view chars) {
  if (at >= text.size() || chars.find(text[at]) == std::string_view::npos) return false;
  ++at;
  return true;
}

}  // namespace

std::optional<Timestamp> parse_time(std::string_view text) {
  using namespace std::chrono;
  std::size_t at = 0;
  const auto y = fixed_digits(text, at, 4);
  if (!y || !expect(text, at, "-")) return std::nullopt;
  const auto mo = fixed_digits(text, at, 2);
  if (!mo || !expect(text, at, "-")) return std::nullopt;
  const auto d = fixed_digits(text, at, 2);
  if (!d || !expect(text, at, "Tt ")) return std::nullopt;
  const auto h = fixed_digits(text, at, 2);
  if (!h || !expect(text, at, ":")) return std::nullopt;
  const auto mi = fixed_digits(text, at, 2);
  if (!mi || !expect(text, at, ":")) return std::nullopt;
  const auto s = fixed_digits(text, at, 2);
  if (!s) return std::nullopt;
  const year_month_day date{year{*y}, month{static_cast<unsigned>(*mo)}, day{static_cast<unsigned>(*d)}};
  if (!date.ok() || *h > 23 || *mi > 59 || *s > 59) return std::nullopt;

  std::int64_t micros = 0;  // the fraction, to the microsecond (finer digits are dropped)
  if (at < text.size() && text[at] == '.') {
    ++at;
    std::size_t digits = 0;
    for (; at < text.size() && text[at] >= '0' && text[at] <= '9'; ++at, ++digits)
      if (digits < 6) micros = micros * 10 + (text[at] - '0');
    if (digits == 0) return std::nullopt;
    for (; digits < 6; ++digits) micros *= 10;
  }
  std::int64_t offset_minutes = 0;  // no zone: UTC
  if (at < text.size()) {
    if (text[at] == 'Z' || text[at] == 'z') {
      ++at;
    } else if (text[at] == '+' || text[at] == '-') {
      const bool negative = text[at++] == '-';
      const auto oh = fixed_digits(text, at, 2);
      if (!oh || !expect(text, at, ":")) return std::nullopt;
      const auto om = fixed_digits(text, at, 2);
      if (!om || *oh > 23 || *om > 59) return std::nullopt;
      offset_minutes = (negative ? -1 : 1) * (*oh * 60 + *om);
    }
  }
  if (at != text.size()) return std::nullopt;  // trailing characters
  const auto local = sys_days{date} + hours{*h} + minutes{*mi} + seconds{*s};
  return Timestamp{duration_cast<microseconds>(local.time_since_epoch()) - minutes{offset_minutes} +
                   microseconds{micros}};
}

std::string human_size(std::uint64_t bytes) {
  const char* units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  double v = static_cast<double>(bytes);
  int u = 0;
  while (v >= 1024 && u < 4) {
    v /= 1024;
    ++u;
  }
  char buf[32];
  if (u == 0)
    std::snprintf(buf, sizeof buf, "%llu B", static_cast<unsigned long long>(bytes));
  else
    std::snprintf(buf, sizeof buf, "%.1f %s", v, units[u]);
  return buf;
}

std::string human_duration(double seconds) {
  char buf[32];
  if (seconds < 60) {
    std::snprintf(buf, sizeof buf, "%.1fs", seconds);
  } else if (seconds < 3600) {
    const auto s = static_cast<long long>(seconds);
    std::snprintf(buf, sizeof buf, "%lldm %02llds", s / 60, s % 60);
  } else if (seconds < 86400) {
    const auto s = static_cast<long long>(seconds);
    std::snprintf(buf, sizeof buf, "%lldh %02lldm", s / 3600, (s % 3600) / 60);
  } else {
    const auto s = static_cast<long long>(seconds);
    std::snprintf(buf, sizeof buf, "%lldd %02lldh", s / 86400, (s % 86400) / 3600);
  }
  return buf;
}

std::string hex(std::string_view bytes, std::size_t max_bytes) {
  static constexpr char digits[] = "0123456789abcdef";
  const std::size_t n = std::min(bytes.size(), max_bytes);
  std::string out;
  out.reserve(n * 2);
  for (std::size_t i = 0; i < n; ++i) {
    const auto b = static_cast<unsigned char>(bytes[i]);
    out.push_back(digits[b >> 4]);
    out.push_back(digits[b & 15]);
  }
  return out;
}

namespace {
constexpr char b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
}

std::string base64_encode(std::string_view bytes) {
  std::string out;
  out.reserve((bytes.size() + 2) / 3 * 4);
  std::size_t i = 0;
  for (; i + 3 <= bytes.size(); i += 3) {
    const std::uint32_t v = (static_cast<unsigned char>(bytes[i]) << 16) |
                            (static_cast<unsigned char>(bytes[i + 1]) << 8) | static_cast<unsigned char>(bytes[i + 2]);
    out.push_back(b64[v >> 18]);
    out.push_back(b64[(v >> 12) & 63]);
    out.push_back(b64[(v >> 6) & 63]);
    out.push_back(b64[v & 63]);
  }
  if (const std::size_t rest = bytes.size() - i; rest > 0) {
    std::uint32_t v = static_cast<unsigned char>(bytes[i]) << 16;
    if (rest == 2) v |= static_cast<unsigned char>(bytes[i + 1]) << 8;
    out.push_back(b64[v >> 18]);
    out.push_back(b64[(v >> 12) & 63]);
    out.push_back(rest == 2 ? b64[(v >> 6) & 63] : '=');
    out.push_back('=');
  }
  return out;
}

std::optional<std::string> base64_decode(std::string_view text) {
  auto value = [](char c) -> int {
    if (c >= 'A' && c <= 'Z') return c - 'A';
    if (c >= 'a' && c <= 'z') return c - 'a' + 26;
    if (c >= '0' && c <= '9') return c - '0' + 52;
    if (c == '+') return 62;
    if (c == '/') return 63;
    return -1;
  };
  if (text.size() % 4 != 0) return std::nullopt;
  std::string out;
  out.reserve(text.size() / 4 * 3);
  for (std::size_t i = 0; i < text.size(); i += 4) {
    const bool last = i + 4 == text.size();
    int v[4];
    int pad = 0;
    for (int k = 0; k < 4; ++k) {
      const char c = text[i + static_cast<std::size_t>(k)];
      if (c == '=' && last && k >= 2) {
        v[k] = 0;
        ++pad;
        continue;
      }
      if (pad > 0) return std::nullopt;  // data after padding
      v[k] = value(c);
      if (v[k] < 0) return std::nullopt;
    }
    const std::uint32_t n = (static_cast<std::uint32_t>(v[0]) << 18) | (static_cast<std::uint32_t>(v[1]) << 12) |
                            (static_cast<std::uint32_t>(v[2]) << 6) | static_cast<std::uint32_t>(v[3]);
    out.push_back(static_cast<char>(n >> 16));
    if (pad < 2) out.push_back(static_cast<char>((n >> 8) & 255));
    if (pad < 1) out.push_back(static_cast<char>(n & 255));
  }
  return out;
}

const char* encoding_name(Encoding e) {
  switch (e) {
    case Encoding::binary: return "binary";
    case Encoding::json: return "json";
  }
  return "unknown";
}

std::string one_line(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (std::size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    if (c == '\n' || c == '\r') {
      while (!out.empty() && out.back() == ' ') out.pop_back();
      if (!out.empty() && i + 1 < text.size()) out += "; ";
      while (i + 1 < text.size() && (text[i + 1] == '\n' || text[i + 1] == '\r' || text[i + 1] == ' ')) ++i;
    } else {
      out.push_back(c);
    }
  }
  while (!out.empty() && (out.back() == ' ' || out.back() == ';')) out.pop_back();
  return out;
}

// ---- JSON

struct JsonObject::Impl {
  rapidjson::StringBuffer buffer;
  JsonWriter writer{buffer};
  Impl() { writer.StartObject(); }
  void key(std::string_view k) { writer.Key(k.data(), static_cast<rapidjson::SizeType>(k.size())); }
};

JsonObject::JsonObject() : impl_(std::make_unique<Impl>()) {}
JsonObject::~JsonObject() = default;
JsonObject::JsonObject(JsonObject&&) noexcept = default;
JsonObject& JsonObject::operator=(JsonObject&&) noexcept = default;

JsonObject& JsonObject::str(std::string_view key, std::string_view value) {
  impl_->key(key);
  impl_->writer.String(value.data(), static_cast<rapidjson::SizeType>(value.size()));
  return *this;
}
JsonObject& JsonObject::str_or_null(std::string_view key, std::string_view value) {
  return value.empty() ? null(key) : str(key, value);
}
JsonObject& JsonObject::num(std::string_view key, std::uint64_t value) {
  impl_->key(key);
  impl_->writer.Uint64(value);
  return *this;
}
JsonObject& JsonObject::inum(std::string_view key, std::int64_t value) {
  impl_->key(key);
  impl_->writer.Int64(value);
  return *this;
}
JsonObject& JsonObject::real(std::string_view key, double value) {
  impl_->key(key);
  impl_->writer.Double(value);
  return *this;
}
JsonObject& JsonObject::boolean(std::string_view key, bool value) {
  impl_->key(key);
  impl_->writer.Bool(value);
  return *this;
}
JsonObject& JsonObject::null(std::string_view key) {
  impl_->key(key);
  impl_->writer.Null();
  return *this;
}
bool JsonObject::raw(std::string_view key, std::string_view json) {
  rapidjson::Document doc;
  if (!parse_json(json, doc)) return false;
  impl_->key(key);
  doc.Accept(impl_->writer);
  return true;
}
JsonObject& JsonObject::object(std::string_view key, const std::map<std::string, std::string>& map) {
  impl_->key(key);
  impl_->writer.StartObject();
  for (const auto& [k, v] : map) {
    impl_->key(k);
    impl_->writer.String(v.data(), static_cast<rapidjson::SizeType>(v.size()));
  }
  impl_->writer.EndObject();
  return *this;
}
JsonObject& JsonObject::object(std::string_view key, const JsonObject& nested) {
  impl_->key(key);
  const std::string text = nested.text();
  impl_->writer.RawValue(text.data(), text.size(), rapidjson::kObjectType);
  return *this;
}
JsonObject& JsonObject::strings(std::string_view key, const std::vector<std::string>& values) {
  impl_->key(key);
  impl_->writer.StartArray();
  for (const auto& v : values) impl_->writer.String(v.data(), static_cast<rapidjson::SizeType>(v.size()));
  impl_->writer.EndArray();
  return *this;
}

JsonObject& JsonObject::numbers(std::string_view key, const std::vector<std::uint64_t>& values) {
  impl_->key(key);
  impl_->writer.StartArray();
  for (auto v : values) impl_->writer.Uint64(v);
  impl_->writer.EndArray();
  return *this;
}
JsonObject& JsonObject::objects(std::string_view key, const std::vector<JsonObject>& values) {
  impl_->key(key);
  impl_->writer.StartArray();
  for (const auto& v : values) {
    const std::string text = v.text();
    impl_->writer.RawValue(text.data(), text.size(), rapidjson::kObjectType);
  }
  impl_->writer.EndArray();
  return *this;
}

std::string JsonObject::text() const { return std::string(impl_->buffer.GetString(), impl_->buffer.GetSize()) + "}"; }

std::optional<std::string> compact_json(std::string_view json) {
  rapidjson::Document doc;
  if (!parse_json(json, doc)) return std::nullopt;
  rapidjson::StringBuffer buffer;
  JsonWriter writer(buffer);
  doc.Accept(writer);
  return std::string(buffer.GetString(), buffer.GetSize());
}

// ---- Tables

namespace {
// Display width: counts UTF-8 code points, not bytes.
std::size_t width(std::string_view s) {
  std::size_t n = 0;
  for (char c : s)
    if ((static_cast<unsigned char>(c) & 0xC0) != 0x80) ++n;
  return n;
}
}  // namespace

Table::Table(std::vector<std::string> headers, std::vector<bool> right_aligned)
    : headers_(std::move(headers)), right_(std::move(right_aligned)) {
  right_.resize(headers_.size(), false);
}

void Table::row(std::vector<std::string> cells) {
  cells.resize(headers_.size());
  rows_.push_back(std::move(cells));
}

void Table::print(std::ostream& out) const {
  std::vector<std::size_t> w(headers_.size());
  for (std::size_t c = 0; c < headers_.size(); ++c) {
    w[c] = width(headers_[c]);
    for (const auto& r : rows_) w[c] = std::max(w[c], width(r[c]));
  }
  auto line = [&](const std::vector<std::string>& cells) {
    std::string text;
    for (std::size_t c = 0; c < cells.size(); ++c) {
      const std::size_t pad = w[c] - width(cells[c]);
      const bool last = c + 1 == cells.size();
      if (right_[c]) text.append(pad, ' ');
      text += cells[c];
      if (!right_[c] && !last) text.append(pad, ' ');
      if (!last) text += "  ";
    }
    while (!text.empty() && text.back() == ' ') text.pop_back();
    out << text << '\n';
  };
  line(headers_);
  for (const auto& r : rows_) line(r);
}

// ---- Events

PayloadView view_payload(const RecordedEvent& e, const EventRegistry& registry) {
  PayloadView v;
  if (e.encoding == Encoding::json) {
    v.json = compact_json(e.payload);
    if (!v.json) v.problem = "stored as JSON but is not valid JSON";
    return v;
  }
  if (e.encoding != Encoding::binary) {
    v.problem = "unknown encoding " + std::to_string(static_cast<int>(e.encoding));
    return v;
  }
  const EventTypeInfo* info = registry.find(e.type, e.schema_version);
  if (info == nullptr || info->to_json == nullptr) {
    const EventTypeInfo* latest = registry.find(e.type);
    if (latest == nullptr)
      v.problem = registry.all().empty() ? "not decoded: no registry" : "type not registered";
    else if (e.schema_version > latest->version)
      v.problem = "schema version " + std::to_string(e.schema_version) + " is newer than the registered " +
                  std::to_string(latest->version);
    else
      v.problem = "schema version " + std::to_string(e.schema_version) + " is not registered";
    return v;
  }
  auto json = info->to_json(e.payload, e.encoding);
  if (!json) {
    v.problem = "does not decode as " + info->cpp_type + ": " + json.error().message;
    return v;
  }
  v.json = std::move(*json);
  return v;
}

UpcastView view_upcast(const RecordedEvent& e, const EventRegistry& registry) {
  UpcastView v;
  const EventTypeInfo* stored = registry.find(e.type, e.schema_version);
  if (stored == nullptr || registry.upcaster_of(stored->type) == nullptr) return v;
  v.applies = true;
  auto values = registry.upcast(*stored, e.payload, e.encoding);
  if (!values) {
    v.problem = values.error().message;
    return v;
  }
  for (const std::any& value : *values) {
    const EventTypeInfo* info = registry.find(std::type_index(value.type()));
    if (info == nullptr || info->any_to_json == nullptr) {
      v.problem = "upcast to an unregistered type";
      v.events.clear();
      return v;
    }
    v.events.push_back({info->name, info->version, info->any_to_json(value)});
  }
  return v;
}

std::string payload_hex_summary(std::string_view payload) {
  constexpr std::size_t shown = 64;
  return "<" + std::to_string(payload.size()) + " bytes: " + hex(payload, shown) +
         (payload.size() > shown ? "..." : "") + ">";
}

void print_event(std::ostream& out, const RecordedEvent& e, const EventRegistry& registry) {
  out << '#' << e.position << "  " << e.stream_id << " v" << e.version << "  " << e.type << " (schema "
      << e.schema_version << ", " << encoding_name(e.encoding) << ")  " << iso_time(e.recorded_at) << '\n';
  out << "  id           " << e.event_id.to_string() << '\n';
  if (!e.metadata.correlation_id.empty()) out << "  correlation  " << e.metadata.correlation_id << '\n';
  if (!e.metadata.causation_id.empty()) out << "  causation    " << e.metadata.causation_id << '\n';
  if (!e.metadata.user.empty()) {
    JsonObject m;
    for (const auto& [k, val] : e.metadata.user) m.str(k, val);
    out << "  metadata     " << m.text() << '\n';
  }
  const PayloadView v = view_payload(e, registry);
  if (v.json)
    out << "  payload      " << *v.json << '\n';
  else
    out << "  payload      " << payload_hex_summary(e.payload) << " (" << v.problem << ")\n";
  // An older version: what the application reads today, after upcasting.
  const UpcastView u = view_upcast(e, registry);
  if (!u.applies) return;
  if (!u.problem.empty())
    out << "  current      (not upcast: " << u.problem << ")\n";
  else if (u.events.empty())
    out << "  current      (none: the upcaster drops this event)\n";
  for (const auto& c : u.events)
    out << "  current      " << c.type << " (schema " << c.schema_version << ")  " << c.json << '\n';
}

std::string event_json(const RecordedEvent& e, const EventRegistry& registry, bool decode_binary) {
  JsonObject o;
  o.num("position", e.position)
      .str("stream", e.stream_id)
      .num("version", e.version)
      .str("event_id", e.event_id.to_string())
      .str("type", e.type)
      .num("schema_version", e.schema_version)
      .str("encoding", encoding_name(e.encoding))
      .str("recorded_at", iso_time(e.recorded_at))
      .str_or_null("correlation_id", e.metadata.correlation_id)
      .str_or_null("causation_id", e.metadata.causation_id)
      .object("metadata", e.metadata.user);
  if (e.encoding != Encoding::json || !o.raw("payload", e.payload)) {
    o.str("payload_base64", base64_encode(e.payload));
    if (decode_binary) {
      const PayloadView v = view_payload(e, registry);
      if (v.json)
        o.raw("payload", *v.json);
      else
        o.str("payload_problem", v.problem);
    }
  }
  // An older version: "payload" stays the stored one (import reads it back); "current" is what the
  // application reads today, after upcasting.
  const UpcastView u = view_upcast(e, registry);
  if (u.applies) {
    if (!u.problem.empty()) {
      o.str("current_problem", u.problem);
    } else {
      std::vector<JsonObject> current;
      for (const auto& c : u.events) {
        JsonObject& j = current.emplace_back();
        j.str("type", c.type).num("schema_version", c.schema_version);
        j.raw("payload", c.json);
      }
      o.objects("current", current);
    }
  }
  return o.text();
}

}  // namespace evs::cli
