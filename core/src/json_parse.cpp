#include "evs/core/detail/json_parse.hpp"

#include <rapidjson/encodedstream.h>
#include <rapidjson/error/en.h>
#include <rapidjson/memorystream.h>
#include <rapidjson/reader.h>

#include <charconv>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <limits>
#include <locale.h>
#include <system_error>

namespace evs::detail {
namespace {

// Forwards every SAX event to the document, converting numbers (which arrive as text, as RapidJSON validated
// them: JSON number syntax, or NaN / Infinity / -Infinity) itself. A number beyond the double range stops the
// parse with too_big set.
class Forwarder {
 public:
  explicit Forwarder(rapidjson::Document& doc) : doc_(doc) {}
  bool Null() { return doc_.Null(); }
  bool Bool(bool b) { return doc_.Bool(b); }
  bool Int(int i) { return doc_.Int(i); }
  bool Uint(unsigned u) { return doc_.Uint(u); }
  bool Int64(std::int64_t i) { return doc_.Int64(i); }
  bool Uint64(std::uint64_t u) { return doc_.Uint64(u); }
  bool Double(double d) { return doc_.Double(d); }
  bool RawNumber(const char* str, rapidjson::SizeType length, bool) {
    const std::string_view text(str, length);
    const bool minus = !text.empty() && text.front() == '-';
    const std::string_view magnitude = minus ? text.substr(1) : text;
    if (magnitude == "NaN") return Double(std::numeric_limits<double>::quiet_NaN());
    if (magnitude == "Infinity" || magnitude == "Inf")
      return Double(minus ? -std::numeric_limits<double>::infinity() : std::numeric_limits<double>::infinity());
    const char* first = text.data();
    const char* last = text.data() + text.size();
    if (magnitude.find_first_of(".eE") == std::string_view::npos) {
      if (minus) {
        std::int64_t v = 0;
        if (auto [p, ec] = std::from_chars(first, last, v); ec == std::errc{} && p == last) return Int64(v);
      } else {
        std::uint64_t v = 0;
        if (auto [p, ec] = std::from_chars(first, last, v); ec == std::errc{} && p == last) return Uint64(v);
      }
    }
    double d = 0;
    if (auto [p, ec] = std::from_chars(first, last, d, std::chars_format::general); ec == std::errc{} && p == last)
      return Double(d);
    // Out of range: from_chars leaves the value untouched, so tell overflow from underflow with strtod
    // (in the C locale, whatever the process's locale), which rounds to ±HUGE_VAL or to zero / a denormal.
    static const locale_t c_locale = newlocale(LC_ALL_MASK, "C", static_cast<locale_t>(nullptr));
    d = strtod_l(std::string(text).c_str(), nullptr, c_locale);
    too_big = std::isinf(d);
    return !too_big && Double(d);
  }
  bool String(const char* str, rapidjson::SizeType length, bool copy) { return doc_.String(str, length, copy); }
  bool StartObject() { return doc_.StartObject(); }
  bool Key(const char* str, rapidjson::SizeType length, bool copy) { return doc_.Key(str, length, copy); }
  bool EndObject(rapidjson::SizeType members) { return doc_.EndObject(members); }
  bool StartArray() { return doc_.StartArray(); }
  bool EndArray(rapidjson::SizeType elements) { return doc_.EndArray(elements); }

  bool too_big = false;

 private:
  rapidjson::Document& doc_;
};

}  // namespace

std::string parse_json(std::string_view text, rapidjson::Document& doc) {
  constexpr unsigned flags = rapidjson::kParseNanAndInfFlag | rapidjson::kParseNumbersAsStringsFlag;
  rapidjson::ParseResult result;
  bool too_big = false;
  auto generate = [&](rapidjson::Document& target) {
    rapidjson::MemoryStream bytes(text.data(), text.size());
    rapidjson::EncodedInputStream<rapidjson::UTF8<>, rapidjson::MemoryStream> in(bytes);
    Forwarder forward(target);
    rapidjson::Reader reader;
    result = reader.Parse<flags>(in, forward);
    // The reader takes a NUL byte for the end of the text: whatever follows one is trailing content too.
    if (!result.IsError() && bytes.Tell() != text.size())
      result.Set(rapidjson::kParseErrorDocumentRootNotSingular, bytes.Tell());
    too_big = forward.too_big;
    return !result.IsError();
  };
  doc.Populate(generate);
  if (!result.IsError()) return {};
  const rapidjson::ParseErrorCode code = too_big ? rapidjson::kParseErrorNumberTooBig : result.Code();
  return "invalid JSON at offset " + std::to_string(result.Offset()) + ": " + rapidjson::GetParseError_En(code);
}

}  // namespace evs::detail
