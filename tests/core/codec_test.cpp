#include "../support/result_printing.hpp"

#include <evs/core/codec.hpp>
#include <evs/core/fingerprint.hpp>

#include <boost/pfr/tuple_size.hpp>

#include <doctest/doctest.h>

#include <cmath>
#include <cstring>
#include <limits>

namespace codectest {

enum class Status : std::uint8_t { pending = 1, paid = 2, shipped = 7 };
BOOST_DESCRIBE_ENUM(Status, pending, paid, shipped)
enum class Raw : int { a = -3, b = 9 };  // not described: stored as its number

struct Address {
  std::string street;
  std::optional<std::string> zip;
  friend bool operator==(const Address&, const Address&) = default;
};
BOOST_DESCRIBE_STRUCT(Address, (), (street, zip))

struct Everything {
  bool flag = false;
  std::int8_t i8 = 0;
  std::uint16_t u16 = 0;
  std::int32_t i32 = 0;
  std::int64_t i64 = 0;
  std::uint64_t u64 = 0;
  double d = 0;
  float f = 0;
  std::string text;
  Status status = Status::pending;
  Raw raw = Raw::a;
  std::optional<std::int64_t> maybe;
  std::optional<Address> maybe_address;
  std::vector<Address> addresses;
  std::vector<std::vector<int>> nested;
  std::array<std::uint8_t, 3> fixed{};
  std::map<std::string, std::int64_t> by_name;
  std::unordered_map<std::int64_t, std::string> by_id;
  evs::Uuid id;
  evs::Timestamp when{};
  std::chrono::milliseconds timeout{};

  friend bool operator==(const Everything&, const Everything&) = default;
};
BOOST_DESCRIBE_STRUCT(Everything, (),
                      (flag, i8, u16, i32, i64, u64, d, f, text, status, raw, maybe, maybe_address, addresses,
                       nested, fixed, by_name, by_id, id, when, timeout))

}  // namespace codectest

using namespace codectest;
using evs::Encoding;

namespace {

Everything sample() {
  Everything e;
  e.flag = true;
  e.i8 = -128;
  e.u16 = 65535;
  e.i32 = std::numeric_limits<std::int32_t>::min();
  e.i64 = std::numeric_limits<std::int64_t>::min();
  e.u64 = std::numeric_limits<std::uint64_t>::max();
  e.d = -1.5e300;
  e.f = 0.25f;
  e.text = std::string("quote \" backslash \\ nul \0 end utf8 \xc3\xa9", 34);
  e.status = Status::shipped;
  e.raw = Raw::b;
  e.maybe = std::numeric_limits<std::int64_t>::max();
  e.maybe_address = Address{"Main St", std::nullopt};
  e.addresses = {{"A", "1000"}, {"B", std::nullopt}};
  e.nested = {{1, 2}, {}, {3}};
  e.fixed = {1, 2, 255};
  e.by_name = {{"x", -1}, {"y", 9007199254740993LL}};
  e.by_id = {{-7, "neg"}, {42, "answer"}};
  e.id = evs::Uuid::generate();
  e.when = evs::Timestamp(std::chrono::microseconds(1'700'000'000'123'456LL));
  e.timeout = std::chrono::milliseconds(1500);
  return e;
}

}  // namespace

TEST_CASE("every supported member type round-trips through both encodings") {
  const Everything original = sample();
  for (Encoding enc : {Encoding::binary, Encoding::json}) {
    CAPTURE(static_cast<int>(enc));
    const std::string bytes = evs::encode(original, enc);
    auto decoded = evs::decode<Everything>(bytes, enc);
    REQUIRE(decoded);
    CHECK(*decoded == original);
  }
  const Everything empty{};
  for (Encoding enc : {Encoding::binary, Encoding::json}) CHECK(evs::decode<Everything>(evs::encode(empty, enc), enc).value() == empty);
}

TEST_CASE("JSON uses member names, enumerator names and null for absent optionals") {
  Address a{"Elm", std::nullopt};
  CHECK(evs::encode(a, Encoding::json) == R"({"street":"Elm","zip":null})");
  Everything e;
  e.status = Status::paid;
  const std::string json = evs::encode(e, Encoding::json);
  CHECK(json.find(R"("status":"paid")") != std::string::npos);
  CHECK(json.find(R"("raw":-3)") != std::string::npos);
  // Members may come in any order, and a missing optional reads as absent.
  auto parsed = evs::decode<Address>(R"({"zip":"123","street":"Oak"})", Encoding::json).value();
  CHECK(parsed.street == "Oak");
  CHECK(parsed.zip == "123");
  CHECK_FALSE(evs::decode<Address>(R"({"street":"Oak"})", Encoding::json).value().zip.has_value());
}

TEST_CASE("the binary encoding is compact: small integers take one byte") {
  CHECK(evs::encode(Address{"ab", std::nullopt}, Encoding::binary) == std::string("\x02" "ab" "\x00", 4));
}

TEST_CASE("corrupt payloads are reported as corrupt_payload, never as garbage values") {
  const std::string good = evs::encode(sample(), Encoding::binary);
  SUBCASE("truncated binary") {
    for (std::size_t cut : {std::size_t{0}, std::size_t{1}, good.size() / 2, good.size() - 1}) {
      auto r = evs::decode<Everything>(std::string_view(good).substr(0, cut), Encoding::binary);
      REQUIRE_FALSE(r);
      CHECK(r.error().is(evs::errc::corrupt_payload));
    }
  }
  SUBCASE("trailing bytes") {
    auto r = evs::decode<Everything>(good + "zz", Encoding::binary);
    REQUIRE_FALSE(r);
    CHECK(r.error().message.find("trailing") != std::string::npos);
  }
  SUBCASE("a huge element count does not allocate, it fails") {
    std::string bad = "\x01\xff\xff\xff\xff\xff\xff\xff\xff\x7f";
    CHECK(evs::decode<std::vector<std::int64_t>>(bad.substr(1), Encoding::binary).error().is(evs::errc::corrupt_payload));
  }
  SUBCASE("out-of-range integer") {
    CHECK_FALSE(evs::decode<std::int8_t>(evs::encode(std::int64_t{300}, Encoding::binary), Encoding::binary));
  }
  SUBCASE("malformed JSON, wrong types, missing members, unknown enumerators") {
    CHECK(evs::decode<Address>("{not json", Encoding::json).error().is(evs::errc::corrupt_payload));
    CHECK(evs::decode<Address>(R"({"street":5})", Encoding::json).error().is(evs::errc::corrupt_payload));
    auto missing = evs::decode<Address>(R"({"zip":"1"})", Encoding::json);
    REQUIRE_FALSE(missing);
    CHECK(missing.error().message.find("street") != std::string::npos);
    CHECK_FALSE(evs::decode<Status>(R"("refunded")", Encoding::json));
  }
}

namespace fp {
struct V1 { std::string id; std::int64_t amount; };
BOOST_DESCRIBE_STRUCT(V1, (), (id, amount))
struct Renamed { std::string id; std::int64_t amount; };  // other struct name, same members
BOOST_DESCRIBE_STRUCT(Renamed, (), (id, amount))
struct MemberRenamed { std::string id; std::int64_t total; };
BOOST_DESCRIBE_STRUCT(MemberRenamed, (), (id, total))
struct Retyped { std::string id; std::int32_t amount; };
BOOST_DESCRIBE_STRUCT(Retyped, (), (id, amount))
struct Reordered { std::int64_t amount; std::string id; };
BOOST_DESCRIBE_STRUCT(Reordered, (), (amount, id))
struct Added { std::string id; std::int64_t amount; std::optional<std::string> note; };
BOOST_DESCRIBE_STRUCT(Added, (), (id, amount, note))
struct Outer1 { std::vector<V1> items; };
BOOST_DESCRIBE_STRUCT(Outer1, (), (items))
struct Outer2 { std::vector<Retyped> items; };
BOOST_DESCRIBE_STRUCT(Outer2, (), (items))
}  // namespace fp

TEST_CASE("the schema fingerprint is a compile-time function of member names, order and types") {
  static_assert(evs::fingerprint_v<fp::V1> == evs::fingerprint_v<fp::Renamed>);
  static_assert(evs::fingerprint_v<fp::V1> != 0);
  CHECK(evs::fingerprint_v<fp::V1> != evs::fingerprint_v<fp::MemberRenamed>);
  CHECK(evs::fingerprint_v<fp::V1> != evs::fingerprint_v<fp::Retyped>);
  CHECK(evs::fingerprint_v<fp::V1> != evs::fingerprint_v<fp::Reordered>);
  CHECK(evs::fingerprint_v<fp::V1> != evs::fingerprint_v<fp::Added>);
  // Nested types count too.
  CHECK(evs::fingerprint_v<fp::Outer1> != evs::fingerprint_v<fp::Outer2>);
}

namespace codectest {
enum class Level : std::uint8_t { low = 1, high = 200 };
BOOST_DESCRIBE_ENUM(Level, low, high)
enum class Wide : std::uint8_t { x = 250 };  // undescribed, unsigned
struct Base { std::int64_t id = 0; };
BOOST_DESCRIBE_STRUCT(Base, (), (id))
struct Derived : Base { std::string name; Level level = Level::low; Wide wide = Wide::x; double ratio = 0; };
BOOST_DESCRIBE_STRUCT(Derived, (Base), (name, level, wide, ratio))
}  // namespace codectest

TEST_CASE("Boost.PFR counts every member kind once, as the described-member check needs") {
  // The check compares these counts with the described ones: a miscount would refuse a complete
  // description (or let a missing member through).
  static_assert(boost::pfr::tuple_size_v<Everything> == 21);  // nested structs, arrays, optionals, enums, maps...
  static_assert(boost::pfr::tuple_size_v<Address> == 2);
  static_assert(evs::detail::real_member_count<Everything, evs::detail::public_members<Everything>>() == 21);
  // A struct with bases is not counted (PFR cannot): its described members are taken as they are.
  static_assert(evs::detail::real_member_count<Derived, evs::detail::public_members<Derived>>() == 5);
  CHECK(evs::decode<Derived>(evs::encode(Derived{}, Encoding::binary), Encoding::binary).has_value());
}

TEST_CASE("inherited members, unsigned enums above 127 and non-finite doubles round-trip") {
  Derived d;
  d.id = 77;
  d.name = "n";
  d.level = Level::high;
  d.ratio = std::numeric_limits<double>::infinity();
  for (Encoding enc : {Encoding::binary, Encoding::json}) {
    CAPTURE(static_cast<int>(enc));
    auto back = evs::decode<Derived>(evs::encode(d, enc), enc);
    REQUIRE(back);
    CHECK(back->id == 77);
    CHECK(back->level == Level::high);
    CHECK(back->wide == Wide::x);
    CHECK(back->ratio == std::numeric_limits<double>::infinity());
  }
  CHECK(evs::encode(d, Encoding::json).find(R"("id":77)") != std::string::npos);
  d.ratio = std::numeric_limits<double>::quiet_NaN();
  auto nan = evs::decode<Derived>(evs::encode(d, Encoding::json), Encoding::json);
  REQUIRE(nan);
  CHECK(std::isnan(nan->ratio));
  // The base's members are part of the fingerprint.
  CHECK(evs::fingerprint_v<Derived> != evs::fingerprint_v<Base>);
}

TEST_CASE("every finite double round-trips bit for bit through the JSON encoding") {
  // JSON prints the shortest text that names the double; reading it back must round correctly (a fast
  // approximate parse gets some values wrong by one unit in the last place). Found by the codec_json fuzzer.
  std::uint64_t state = 0x9e3779b97f4a7c15ull;  // fixed-seed xorshift: the same values every run
  int checked = 0;
  for (int i = 0; i < 20000; ++i) {
    state ^= state << 13;
    state ^= state >> 7;
    state ^= state << 17;
    double value = 0;
    std::memcpy(&value, &state, sizeof value);
    if (!std::isfinite(value)) continue;
    Derived d;
    d.ratio = value;
    auto back = evs::decode<Derived>(evs::encode(d, Encoding::json), Encoding::json);
    REQUIRE(back);
    std::uint64_t bits = 0;
    std::memcpy(&bits, &back->ratio, sizeof bits);
    if (bits != state) FAIL_CHECK("JSON changed " << evs::encode(d, Encoding::json) << " on the way back");
    ++checked;
  }
  CHECK(checked > 19000);
}
