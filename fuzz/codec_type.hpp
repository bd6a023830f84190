// A described type that exercises every member kind the codec supports, and the property both codec fuzz
// targets check: malformed input is a corrupt_payload error, and whatever decodes re-encodes to a fixed point.
#pragma once

#include <evs/core/codec.hpp>

#include <array>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace evs_fuzz {

enum class Color : std::uint8_t { red, green, blue };
BOOST_DESCRIBE_ENUM(Color, red, green, blue)

enum class Level : std::int16_t {};  // undescribed: encoded as a number in both encodings

struct Inner {
  std::int8_t small = 0;
  std::uint16_t medium = 0;
  std::optional<std::string> note;
  Color color = Color::red;
};
BOOST_DESCRIBE_STRUCT(Inner, (), (small, medium, note, color))

struct Base {
  std::uint32_t base_id = 0;
};
BOOST_DESCRIBE_STRUCT(Base, (), (base_id))

struct Everything : Base {
  bool flag = false;
  std::int32_t i32 = 0;
  std::int64_t i64 = 0;
  std::uint64_t u64 = 0;
  double real = 0;
  float single = 0;
  std::string text;
  Level level{};
  evs::Uuid id;
  std::chrono::system_clock::time_point at{};
  std::chrono::milliseconds took{};
  std::optional<Inner> maybe;
  std::vector<Inner> items;
  std::array<std::int16_t, 3> triple{};
  std::map<std::string, std::int64_t> by_name;
  // std::map, not unordered_map: its encoding depends on iteration order, so it has no byte-exact fixed point.
  std::map<std::int32_t, std::vector<std::uint8_t>> by_id;
};
BOOST_DESCRIBE_STRUCT(Everything, (Base), (flag, i32, i64, u64, real, single, text, level, id, at, took, maybe, items,
                                          triple, by_name, by_id))

[[noreturn]] inline void fail(const char* what) {
  std::fprintf(stderr, "codec fuzz: %s\n", what);
  std::abort();
}

// Decodes `bytes`; a successful decode must encode to bytes that decode again, and the second encoding must
// equal the first (encode(decode(x)) is a fixed point). Anything but corrupt_payload on bad input is a bug.
inline void check_codec(std::string_view bytes, evs::Encoding encoding) {
  auto first = evs::decode<Everything>(bytes, encoding);
  if (!first) {
    if (!first.error().is(evs::errc::corrupt_payload)) fail("a malformed payload was not reported as corrupt_payload");
    return;
  }
  const std::string encoded = evs::encode(*first, encoding);
  auto second = evs::decode<Everything>(encoded, encoding);
  if (!second) fail("an encoded value does not decode");
  if (evs::encode(*second, encoding) != encoded) fail("encode(decode(encode(v))) differs from encode(v)");
}

}  // namespace evs_fuzz
