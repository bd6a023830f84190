// Time values are stored as microseconds; decoding one into a finer or narrower duration must not overflow.
#include "../support/result_printing.hpp"

#include <evs/core/codec.hpp>

#include <doctest/doctest.h>

#include <chrono>
#include <cstdint>
#include <limits>

namespace codectime {

// What a time member is on disk: a signed count of microseconds, under the member's name.
struct Micros {
  std::int64_t at = 0;
  std::int64_t took = 0;
};
BOOST_DESCRIBE_STRUCT(Micros, (), (at, took))

struct Stamped {
  std::chrono::system_clock::time_point at{};         // nanoseconds in libstdc++: 1000 ticks per microsecond
  std::chrono::duration<std::int32_t, std::milli> took{};  // a narrow representation
};
BOOST_DESCRIBE_STRUCT(Stamped, (), (at, took))

}  // namespace codectime

TEST_CASE("a stored time the member's duration cannot hold is corrupt_payload, not an overflow") {
  using codectime::Micros;
  using codectime::Stamped;
  constexpr std::int64_t max = std::numeric_limits<std::int64_t>::max();
  for (auto encoding : {evs::Encoding::binary, evs::Encoding::json}) {
    CAPTURE(static_cast<int>(encoding));
    // Too many microseconds for system_clock's nanosecond count, in both directions.
    for (std::int64_t at : {max / 2, -(max / 2), max, std::numeric_limits<std::int64_t>::min()}) {
      CAPTURE(at);
      auto r = evs::decode<Stamped>(evs::encode(Micros{at, 0}, encoding), encoding);
      REQUIRE_FALSE(r);
      CHECK(r.error().is(evs::errc::corrupt_payload));
    }
    // Too many milliseconds for an int32 count.
    auto narrow = evs::decode<Stamped>(evs::encode(Micros{0, 10'000'000'000'000}, encoding), encoding);
    REQUIRE_FALSE(narrow);
    CHECK(narrow.error().is(evs::errc::corrupt_payload));

    // The largest values that fit decode exactly.
    const std::int64_t at = max / 1000;
    const std::int64_t took = std::int64_t{std::numeric_limits<std::int32_t>::max()} * 1000;
    auto ok = evs::decode<Stamped>(evs::encode(Micros{-at, took}, encoding), encoding);
    REQUIRE(ok);
    CHECK(ok->at.time_since_epoch() == std::chrono::microseconds(-at));
    CHECK(ok->took.count() == std::numeric_limits<std::int32_t>::max());
  }
}
