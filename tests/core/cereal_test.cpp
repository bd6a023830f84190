// cereal inside evs: member types that only have cereal functions work inside events (both encodings, with
// their fingerprint rule), and described types serialize through cereal's own archives with the generic
// serialize. The byte-for-byte equality of the cereal archives with the codec is in golden_test.cpp.
#include "../support/result_printing.hpp"

#include <evs/core/cereal.hpp>
#include <evs/core/event.hpp>
#include <evs/core/fingerprint.hpp>

#include <cereal/archives/binary.hpp>
#include <cereal/archives/json.hpp>
#include <cereal/types/string.hpp>
#include <cereal/types/vector.hpp>

#include <doctest/doctest.h>

#include <sstream>
#include <string>

namespace cerealtest {

// A user's type with a member serialize and named values.
struct Money {
  std::int64_t cents = 0;
  std::string currency;
  template <class Archive>
  void serialize(Archive& ar) {
    ar(cereal::make_nvp("cents", cents), cereal::make_nvp("currency", currency));
  }
  static constexpr const char* evs_schema_name = "test.money/1";
  friend bool operator==(const Money&, const Money&) = default;
};

// A third-party type with non-member save/load and unnamed values; its schema name through ADL.
struct Point3 {
  std::int32_t x = 0, y = 0, z = 0;
  friend bool operator==(const Point3&, const Point3&) = default;
};
template <class Archive>
void save(Archive& ar, const Point3& p) {
  ar(p.x, p.y, p.z);
}
template <class Archive>
void load(Archive& ar, Point3& p) {
  ar(p.x, p.y, p.z);
}
constexpr const char* evs_schema_name(const Point3*) { return "test.point3/1"; }

// A minimal type: stored as its single value.
struct Celsius {
  double value = 0;
  template <class Archive>
  double save_minimal(const Archive&) const {
    return value;
  }
  template <class Archive>
  void load_minimal(const Archive&, const double& v) {
    value = v;
  }
  static constexpr const char* evs_schema_name = "test.celsius/1";
  friend bool operator==(const Celsius&, const Celsius&) = default;
};

struct Paid {
  std::string order_id;
  Money amount;
  std::optional<Money> tip;
  std::vector<Point3> route;
  Celsius temperature;
  friend bool operator==(const Paid&, const Paid&) = default;
};
EVS_EVENT(Paid, "test.cereal_paid", 1, order_id, amount, tip, route, temperature)

// A cereal type whose members are themselves cereal types, named and unnamed (unnamed ones are counted
// apart from named ones, as in cereal's JSON archive: "t", then "value0").
struct Reading {
  Celsius t;
  Point3 at;
  template <class Archive>
  void serialize(Archive& ar) {
    ar(cereal::make_nvp("t", t), at);
  }
  static constexpr const char* evs_schema_name = "test.reading/1";
  friend bool operator==(const Reading&, const Reading&) = default;
};

struct Logged {
  std::vector<Reading> readings;
  friend bool operator==(const Logged&, const Logged&) = default;
};
EVS_EVENT(Logged, "test.cereal_logged", 1, readings)

// A described type with its own cereal function: the generic serialize steps aside.
struct OwnWay {
  std::int32_t n = 0;
  template <class Archive>
  void serialize(Archive& ar) {
    ar(cereal::make_nvp("custom", n));
  }
};
BOOST_DESCRIBE_STRUCT(OwnWay, (), (n))

struct Plain {
  std::string name;
  std::vector<std::int32_t> values;
  friend bool operator==(const Plain&, const Plain&) = default;
};
BOOST_DESCRIBE_STRUCT(Plain, (), (name, values))

}  // namespace cerealtest

using namespace cerealtest;
using evs::Encoding;

namespace {
std::string hex(const std::string& s) {
  static const char* digits = "0123456789abcdef";
  std::string out;
  for (unsigned char c : s) {
    if (!out.empty()) out += ' ';
    out += digits[c >> 4];
    out += digits[c & 15];
  }
  return out;
}
const Paid paid{"o-1", {250, "EUR"}, Money{5, "EUR"}, {{1, -1, 2}}, {21.5}};
}  // namespace

TEST_CASE("a member type with only cereal functions is stored in binary with what its functions write") {
  const std::string bytes = evs::encode(paid, Encoding::binary);
  // "o-1", Money{250 zigzag = f4 03, "EUR"}, tip present + Money{5 -> 0a, "EUR"}, route: 1 x (1, -1, 2), 21.5
  CHECK(hex(bytes) ==
        "03 6f 2d 31 f4 03 03 45 55 52 01 0a 03 45 55 52 01 02 01 04 00 00 00 00 00 80 35 40");
  auto back = evs::decode<Paid>(bytes, Encoding::binary);
  REQUIRE(back);
  CHECK(*back == paid);
  CHECK(evs::encode_cereal(paid, Encoding::binary) == bytes);
}

TEST_CASE("a member type with only cereal functions is a JSON object named by make_nvp or value0, value1...") {
  const std::string json = evs::encode(paid, Encoding::json);
  CHECK(json ==
        R"({"order_id":"o-1","amount":{"cents":250,"currency":"EUR"},"tip":{"cents":5,"currency":"EUR"},)"
        R"("route":[{"value0":1,"value1":-1,"value2":2}],"temperature":21.5})");
  auto back = evs::decode<Paid>(json, Encoding::json);
  REQUIRE(back);
  CHECK(*back == paid);
  CHECK(evs::encode_cereal(paid, Encoding::json) == json);
  // The registry's JSON view goes through the same path.
  const auto* info = evs::EventRegistry::global().find("test.cereal_paid");
  REQUIRE(info != nullptr);
  auto shown = info->to_json(evs::encode(paid, Encoding::binary), Encoding::binary);
  REQUIRE(shown);
  CHECK(*shown == json);
  // A missing member of a cereal object is corrupt, like any missing member.
  auto bad = evs::decode<Paid>(R"({"order_id":"o","amount":{"cents":1},"route":[],"temperature":1})", Encoding::json);
  REQUIRE_FALSE(bad);
  CHECK(bad.error().code == evs::errc::corrupt_payload);
}

TEST_CASE("cereal types nest inside cereal types, minimal ones as their value under their name") {
  const Logged logged{{{{-2.5}, {1, 2, 3}}}};
  const std::string json = evs::encode(logged, Encoding::json);
  CHECK(json == R"({"readings":[{"t":-2.5,"value0":{"value0":1,"value1":2,"value2":3}}]})");
  auto from_json = evs::decode<Logged>(json, Encoding::json);
  REQUIRE(from_json);
  CHECK(*from_json == logged);
  const std::string bytes = evs::encode(logged, Encoding::binary);
  CHECK(hex(bytes) == "01 00 00 00 00 00 00 04 c0 02 04 06");
  auto from_binary = evs::decode<Logged>(bytes, Encoding::binary);
  REQUIRE(from_binary);
  CHECK(*from_binary == logged);
}

TEST_CASE("a cereal-only member type enters the fingerprint by its evs_schema_name") {
  // Changing a cereal type's schema name changes the event's fingerprint; its C++ layout is not seen.
  constexpr auto h = evs::detail::fnv(14695981039346656037ULL, "cereal<test.money/1>;");
  CHECK(evs::detail::type_signature<Money>(14695981039346656037ULL) == h);
  CHECK(evs::fingerprint_v<Paid> != 0);
  CHECK(evs::detail::type_signature<Point3>(14695981039346656037ULL) ==
        evs::detail::fnv(14695981039346656037ULL, "cereal<test.point3/1>;"));
}

TEST_CASE("described types serialize through cereal's own archives with the generic serialize") {
  std::ostringstream json;
  {
    cereal::JSONOutputArchive ar(json, cereal::JSONOutputArchive::Options::NoIndent());
    ar(cereal::make_nvp("plain", Plain{"p", {1, 2}}), cereal::make_nvp("own", OwnWay{7}));
  }
  std::string text = json.str();
  std::erase(text, '\n');
  CHECK(text == R"({"plain": {"name": "p","values": [1,2]},"own": {"custom": 7}})");

  std::stringstream bin;
  {
    cereal::BinaryOutputArchive out(bin);
    out(Plain{"abc", {5}});
  }
  Plain back;
  {
    cereal::BinaryInputArchive in(bin);
    in(back);
  }
  CHECK(back == Plain{"abc", {5}});
}
