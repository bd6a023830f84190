// evs::detail::parse_json: RapidJSON parsing with exact number conversion, shared by the JSON codec and the
// tool. Include it from .cpp files only: it brings in RapidJSON, which stays out of evs's public headers.
#pragma once

#include <rapidjson/document.h>

#include <string>
#include <string_view>

namespace evs::detail {

// Parses `text` (one JSON value, surrounded by nothing but whitespace) into `doc`. Returns "" on success, or
// an error message naming the offset ("invalid JSON at offset N: ..."); `doc` is then unspecified.
// Accepts NaN, Infinity and -Infinity. Numbers are converted with std::from_chars, so a double comes back
// bit for bit as written by a shortest round-trip writer: an integer that fits an int64/uint64 stays an
// integer, a larger one becomes a double, a number beyond the double range is an error ("Number too big ..."),
// and one below it underflows to zero or a denormal. (RapidJSON's own full-precision conversion reads out of
// bounds on some long mantissas with large negative exponents, so it is never used.)
[[nodiscard]] std::string parse_json(std::string_view text, rapidjson::Document& doc);

}  // namespace evs::detail
