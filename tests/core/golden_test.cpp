// Golden payloads: files in tests/golden/ were written by the codec before its binary format moved onto a
// cereal archive, and every later codec must decode them and write them again byte for byte. The type
// below uses every member type the codec supports. Never regenerate these files: they stand for payloads
// that stores hold forever. A new case gets new files (EVS_WRITE_GOLDEN=1 writes missing ones).
#include <evs/core/cereal.hpp>
#include <evs/core/codec.hpp>
#include <evs/testing/golden.hpp>

#include <doctest/doctest.h>

#include <array>
#include <chrono>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <limits>
#include <map>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

namespace goldentest {

enum class Colour : std::int16_t { red = -1, green = 0, blue = 300 };
BOOST_DESCRIBE_ENUM(Colour, red, green, blue)
enum class Flags : std::uint32_t { none = 0, many = 4000000000u };  // not described: stored as its number

struct Point {
  std::int32_t x = 0;
  std::int32_t y = 0;
  friend bool operator==(const Point&, const Point&) = default;
};
BOOST_DESCRIBE_STRUCT(Point, (), (x, y))

struct Tagged {
  std::string tag;
  friend bool operator==(const Tagged&, const Tagged&) = default;
};
BOOST_DESCRIBE_STRUCT(Tagged, (), (tag))

// Members of a described base come first.
struct AllTypes : Tagged {
  bool flag = false;
  std::int8_t i8 = 0;
  std::int16_t i16 = 0;
  std::int32_t i32 = 0;
  std::int64_t i64 = 0;
  std::uint8_t u8 = 0;
  std::uint16_t u16 = 0;
  std::uint32_t u32 = 0;
  std::uint64_t u64 = 0;
  float f = 0;
  double d = 0;
  std::string text;
  Colour colour = Colour::green;
  Flags flags = Flags::none;
  evs::Uuid id;
  evs::Timestamp when{};
  std::chrono::milliseconds timeout{};
  std::optional<std::int64_t> maybe;
  std::optional<Point> maybe_point;
  std::vector<Point> points;
  std::vector<std::vector<std::string>> nested;
  std::array<std::uint16_t, 3> fixed{};
  std::map<std::string, std::int64_t> by_name;
  std::map<std::int32_t, Point> by_number;
  std::unordered_map<std::string, bool> one_entry;  // one entry: the iteration order is not stored
  Point point;

  friend bool operator==(const AllTypes&, const AllTypes&) = default;
};
BOOST_DESCRIBE_STRUCT(AllTypes, (Tagged),
                      (flag, i8, i16, i32, i64, u8, u16, u32, u64, f, d, text, colour, flags, id, when, timeout,
                       maybe, maybe_point, points, nested, fixed, by_name, by_number, one_entry, point))

inline AllTypes full() {
  AllTypes v;
  v.tag = "base";
  v.flag = true;
  v.i8 = -128;
  v.i16 = 300;
  v.i32 = -70000;
  v.i64 = std::numeric_limits<std::int64_t>::min();
  v.u8 = 255;
  v.u16 = 65535;
  v.u32 = 4000000000u;
  v.u64 = std::numeric_limits<std::uint64_t>::max();
  v.f = 0.1f;
  v.d = -1234.5678e-9;
  v.text = "tab\t \"quote\" \\ caf\xc3\xa9 \xe2\x82\xac";
  v.colour = Colour::blue;
  v.flags = Flags::many;
  v.id = *evs::Uuid::parse("0190f5a2-7c3e-7b1a-9f00-00c0ffee0001");
  v.when = evs::Timestamp(std::chrono::microseconds(1767225600123456));
  v.timeout = std::chrono::milliseconds(-2500);
  v.maybe = 300;
  v.maybe_point = Point{-1, 1};
  v.points = {{1, 2}, {-3, 4}};
  v.nested = {{"a", ""}, {}, {"bc"}};
  v.fixed = {1, 128, 65535};
  v.by_name = {{"one", 1}, {"minus", -1}};
  v.by_number = {{-5, {5, 5}}, {10, {0, 0}}};
  v.one_entry = {{"k", true}};
  v.point = {7, -7};
  return v;
}

inline const std::filesystem::path dir = EVS_GOLDEN_DIR;

}  // namespace goldentest

using namespace goldentest;

TEST_CASE("golden files of a type with every member type decode and re-encode byte for byte") {
  CHECK_NOTHROW(evs::testing::check_golden(dir / "evs.all_types.full.bin", full()));
  CHECK_NOTHROW(evs::testing::check_golden(dir / "evs.all_types.full.json", full()));
  CHECK_NOTHROW(evs::testing::check_golden(dir / "evs.all_types.empty.bin", AllTypes{}));
  CHECK_NOTHROW(evs::testing::check_golden(dir / "evs.all_types.empty.json", AllTypes{}));
}

TEST_CASE("check_golden fails on a value that differs from the file, and on a missing file") {
  AllTypes other = full();
  other.point.y = 8;
  CHECK_THROWS_WITH_AS(evs::testing::check_golden(dir / "evs.all_types.full.bin", other),
                       doctest::Contains("the expected value encodes differently"), evs::testing::ScenarioFailure);
  CHECK_THROWS_WITH_AS(evs::testing::check_golden(dir / "evs.all_types.full.json", other),
                       doctest::Contains("the expected value encodes differently"), evs::testing::ScenarioFailure);
  // A file from another type does not decode as this one.
  CHECK_THROWS_WITH_AS(evs::testing::check_golden(dir / "evs.all_types.empty.bin", Point{}),
                       doctest::Contains("does not decode"), evs::testing::ScenarioFailure);
  if (std::getenv("EVS_WRITE_GOLDEN") == nullptr)
    CHECK_THROWS_WITH_AS(evs::testing::check_golden(dir / "evs.no_such_file.bin", Point{}),
                         doctest::Contains("is missing"), evs::testing::ScenarioFailure);
}

TEST_CASE("the cereal archives read and write every golden file byte for byte") {
  for (const char* name : {"evs.all_types.full", "evs.all_types.empty"}) {
    for (const evs::Encoding encoding : {evs::Encoding::binary, evs::Encoding::json}) {
      const std::string ext = encoding == evs::Encoding::binary ? ".bin" : ".json";
      CAPTURE(name);
      CAPTURE(ext);
      const auto file = dir / (std::string(name) + ext);
      std::ifstream in(file, std::ios::binary);
      const std::string stored((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
      REQUIRE_FALSE(stored.empty());
      AllTypes decoded;
      REQUIRE(evs::decode_cereal(stored, encoding, decoded));
      CHECK(decoded == (std::string(name) == "evs.all_types.full" ? full() : AllTypes{}));
      CHECK(evs::encode_cereal(decoded, encoding) == stored);
    }
  }
}
