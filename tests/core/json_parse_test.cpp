// evs::detail::parse_json: the JSON parser under the codec and the tool converts numbers exactly and turns
// every malformed or out-of-range number into an error, never a crash.
#include "../support/result_printing.hpp"

#include <evs/core/codec.hpp>
#include <evs/core/detail/json_parse.hpp>

#include <doctest/doctest.h>

#include <cmath>
#include <cstdint>
#include <limits>
#include <string>

namespace {

struct Reading {
  double value = 0;
  std::int64_t count = 0;
};
BOOST_DESCRIBE_STRUCT(Reading, (), (value, count))

rapidjson::Document parsed(const std::string& text) {
  rapidjson::Document doc;
  const std::string error = evs::detail::parse_json(text, doc);
  INFO(text.substr(0, 80));
  REQUIRE_MESSAGE(error.empty(), error);
  return doc;
}

std::string error_of(const std::string& text) {
  rapidjson::Document doc;
  return evs::detail::parse_json(text, doc);
}

}  // namespace

TEST_CASE("long mantissas with large negative exponents parse without reading out of bounds") {
  // RapidJSON's full-precision conversion indexes its power-of-ten table out of range for these (found by the
  // codec_json fuzzer); the values are tiny, so they round to a denormal or zero.
  const std::string digits(700, '7');
  for (const std::string& text : {"0." + digits + "e-400", "7." + digits + "e-330", "0." + digits + "e-1000",
                                  "1." + digits + "e-2147483640", "0." + std::string(400, '0') + digits,
                                  "-0." + digits + "e-999999999999"}) {
    auto doc = parsed(text);
    REQUIRE(doc.IsDouble());
    CHECK(std::fabs(doc.GetDouble()) < 1e-300);
    CHECK(std::fpclassify(doc.GetDouble()) != FP_NAN);
  }
  CHECK(parsed("7." + digits + "e-320").GetDouble() == doctest::Approx(7.7777777e-320).epsilon(0.01));
}

TEST_CASE("numbers keep their integer or double kind and their exact value") {
  CHECK(parsed("0").IsUint64());
  CHECK(parsed("18446744073709551615").GetUint64() == std::numeric_limits<std::uint64_t>::max());
  CHECK(parsed("-9223372036854775808").GetInt64() == std::numeric_limits<std::int64_t>::min());
  auto big = parsed("18446744073709551616");  // 2^64: no integer holds it
  REQUIRE(big.IsDouble());
  CHECK(big.GetDouble() == 18446744073709551616.0);
  CHECK(parsed("-12").GetInt64() == -12);
  CHECK(parsed("-12").IsInt());
  CHECK(parsed("0.1").GetDouble() == 0.1);
  CHECK(parsed("2.2250738585072014e-308").GetDouble() == std::numeric_limits<double>::min());
  CHECK(parsed("4.9406564584124654e-324").GetDouble() == std::numeric_limits<double>::denorm_min());
  CHECK(parsed("1.7976931348623157e308").GetDouble() == std::numeric_limits<double>::max());
  CHECK(parsed("1E+2").GetDouble() == 100.0);
  CHECK(std::signbit(parsed("-0.0").GetDouble()));
  CHECK(std::isnan(parsed("NaN").GetDouble()));
  CHECK(parsed("Infinity").GetDouble() == std::numeric_limits<double>::infinity());
  CHECK(parsed("-Infinity").GetDouble() == -std::numeric_limits<double>::infinity());
  CHECK(parsed(R"({"a":[1,-2,3.5,"x",null,true],"b":{}})")["a"][2].GetDouble() == 3.5);
}

TEST_CASE("malformed JSON and numbers beyond the double range are errors naming the offset") {
  CHECK(error_of("1e400") == "invalid JSON at offset 0: Number too big to be stored in double.");
  CHECK(error_of(R"({"v":-1e999})") == "invalid JSON at offset 5: Number too big to be stored in double.");
  CHECK(error_of("1.8e308") == "invalid JSON at offset 0: Number too big to be stored in double.");
  CHECK(error_of("[17976931348623159e292]").find("Number too big to be stored in double.") != std::string::npos);
  CHECK(error_of("1.5e99999999999999999999").find("invalid JSON at offset") == 0);
  CHECK(error_of("{} x").find("invalid JSON at offset 3") == 0);
  CHECK(!error_of("01").empty());
  CHECK(!error_of("1.").empty());
  CHECK(!error_of("-").empty());
  CHECK(!error_of("Nan").empty());
  CHECK(!error_of("").empty());
  CHECK(error_of(std::string("1\0", 2)) ==
        "invalid JSON at offset 1: The document root must not be followed by other values.");
  CHECK(!error_of(std::string("{}\0{}", 5)).empty());
}

TEST_CASE("the JSON codec reports an out-of-range number in a payload as corrupt_payload") {
  auto ok = evs::decode<Reading>(R"({"value":0.)" + std::string(700, '3') + R"(e-900,"count":3})", evs::Encoding::json);
  REQUIRE(ok);
  CHECK(ok->value == 0.0);
  CHECK(ok->count == 3);
  auto bad = evs::decode<Reading>(R"({"value":1e400,"count":3})", evs::Encoding::json);
  REQUIRE(!bad);
  CHECK(bad.error().code == evs::errc::corrupt_payload);
  CHECK(bad.error().message.find("Number too big") != std::string::npos);
}
