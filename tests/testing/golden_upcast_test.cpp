// check_golden_upcast: an old version's golden file decodes as its old type, re-encodes byte for byte, and
// upcasts to exactly the expected current event. The files are written here from the old types, as the code
// of that time wrote them.
#include "../support/temp_dir.hpp"
#include "../support/upcast_events.hpp"

#include <evs/testing/golden.hpp>

#include <doctest/doctest.h>

#include <fstream>
#include <string>

using namespace updomain;
using evs::testing::check_golden_upcast;
using evs::testing::check_golden_upcast_event;
using evs::testing::ScenarioFailure;

namespace {

void write(const std::filesystem::path& file, const std::string& bytes) {
  std::ofstream(file, std::ios::binary) << bytes;
}

// Writes `old` in both encodings as <dir>/<name>.v<version>.bin and .json.
template <class Old>
void write_golden(const std::filesystem::path& dir, const Old& old) {
  const std::string stem = std::string(evs::event_info_v<Old>.name) + ".v" + std::to_string(evs::event_info_v<Old>.version);
  write(dir / (stem + ".bin"), evs::encode(old, evs::Encoding::binary));
  write(dir / (stem + ".json"), evs::encode(old, evs::Encoding::json));
}

// The message of the ScenarioFailure that `check` throws ("" when it passes).
template <class F>
std::string failure(F&& check) {
  try {
    check();
  } catch (const ScenarioFailure& e) {
    return e.what();
  }
  return "";
}

bool has(const std::string& text, const std::string& part) { return text.find(part) != std::string::npos; }

}  // namespace

TEST_CASE("check_golden_upcast passes when an old file upcasts, through the whole chain, to the expected value") {
  evs::test::TempDir dir;
  write_golden(dir.path(), v1::Credited{"acc-1", 7});  // v1 (dollars) -> v2 (cents) -> current (currency)
  write_golden(dir.path(), v1::Funded{"acc-2", 250});  // renamed into up.credited
  CHECK(failure([&] { check_golden_upcast_event<v1::Credited>(dir.path(), Credited{"acc-1", 700, "USD"}); }) == "");
  CHECK(failure([&] { check_golden_upcast<v1::Funded>(dir / "up.funded.v1.json", Credited{"acc-2", 250, "EUR"}); }) ==
        "");
}

TEST_CASE("check_golden_upcast fails on another value, another type, several events or a missing file") {
  evs::test::TempDir dir;
  write_golden(dir.path(), v1::Credited{"acc-1", 7});
  write_golden(dir.path(), v1::Transferred{"acc-1", "acc-2", 300});

  const auto wrong = failure([&] { check_golden_upcast_event<v1::Credited>(dir.path(), Credited{"acc-1", 7, "USD"}); });
  CHECK(has(wrong, "up.credited.v1.bin upcasts to {\"account\":\"acc-1\",\"cents\":700,\"currency\":\"USD\"}, not the "
                   "expected {\"account\":\"acc-1\",\"cents\":7,\"currency\":\"USD\"}"));
  CHECK(has(failure([&] { check_golden_upcast<v1::Credited>(dir / "up.credited.v1.bin", Debited{"acc-1", 700}); }),
            "upcasts to updomain::Credited, not updomain::Debited"));
  CHECK(has(failure([&] { check_golden_upcast<v1::Transferred>(dir / "up.transferred.v1.bin", Debited{"acc-1", 300}); }),
            "upcasts to 2 events, not one"));
  CHECK(has(failure([&] { check_golden_upcast<v1::Funded>(dir / "up.funded.v1.bin", Credited{"a", 1, "EUR"}); }),
            "up.funded.v1.bin is missing"));
}

TEST_CASE("check_golden_upcast fails when the old file does not decode as the old type, or not byte for byte") {
  evs::test::TempDir dir;
  // Cut short: a string that claims 5 bytes and has 3.
  write(dir / "up.credited.v1.bin", std::string("\x05" "acc", 4));
  CHECK(has(failure([&] { check_golden_upcast<v1::Credited>(dir / "up.credited.v1.bin", Credited{"acc", 0, "USD"}); }),
            "up.credited.v1.bin does not decode"));
  write(dir / "up.credited.v1.json", R"({"account": "acc-1", "dollars": 7})");
  CHECK(has(failure([&] { check_golden_upcast<v1::Credited>(dir / "up.credited.v1.json", Credited{"acc-1", 700, "USD"}); }),
            "up.credited.v1.json re-encodes differently"));  // the codec writes no spaces
}
