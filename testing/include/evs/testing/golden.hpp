// Golden payload files: stored bytes that must keep decoding, for applications' tests, in one line:
//
//   evs::testing::check_golden<OrderPlaced>("golden/checkout.order_placed.v1.bin", expected);
//
// The file's extension names the encoding: `.bin` is Encoding::binary, `.json` is Encoding::json. The check
// passes when (1) the file decodes as T, (2) re-encoding the decoded value gives the file's bytes exactly,
// and (3) encoding `expected` gives the same bytes (and, when T has operator==, the decoded value equals
// `expected`). Anything else throws evs::testing::ScenarioFailure naming the file and, for bytes, the first
// differing offset, so it works with any test framework.
//
// For a registered event, check_golden_event(dir, expected) checks both encodings, in the files named after
// the event's stored name and schema version: `<dir>/<name>.v<version>.bin` and `.json`.
//
// Writing a golden file: when the file does not exist and the environment variable EVS_WRITE_GOLDEN is set
// (to anything), the check writes `expected`'s encoding to it and passes; commit the file. An existing file
// is never overwritten: a golden file is a payload that some store holds forever.
#pragma once

#include "evs/core/codec.hpp"
#include "evs/core/event.hpp"
#include "evs/testing/aggregate_scenario.hpp"  // ScenarioFailure

#include <concepts>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <sstream>
#include <string>

namespace evs::testing {

namespace detail {

inline Encoding golden_encoding(const std::filesystem::path& file) {
  const auto ext = file.extension();
  if (ext == ".bin") return Encoding::binary;
  if (ext == ".json") return Encoding::json;
  throw ScenarioFailure("golden file " + file.string() + ": the extension must be .bin or .json");
}

inline std::string golden_diff(const std::string& what, const std::string& want, const std::string& got) {
  std::size_t i = 0;
  while (i < want.size() && i < got.size() && want[i] == got[i]) ++i;
  std::ostringstream s;
  s << what << " (" << got.size() << " bytes, the file has " << want.size() << "; first difference at byte " << i
    << ")";
  return s.str();
}

}  // namespace detail

template <class T>
void check_golden(const std::filesystem::path& file, const T& expected) {
  const Encoding encoding = detail::golden_encoding(file);
  const std::string expected_bytes = encode(expected, encoding);
  if (!std::filesystem::exists(file)) {
    if (std::getenv("EVS_WRITE_GOLDEN") == nullptr)
      throw ScenarioFailure("golden file " + file.string() + " is missing (set EVS_WRITE_GOLDEN=1 to write it)");
    std::ofstream out(file, std::ios::binary);
    out.write(expected_bytes.data(), static_cast<std::streamsize>(expected_bytes.size()));
    if (!out.flush()) throw ScenarioFailure("cannot write golden file " + file.string());
    return;
  }
  std::ifstream in(file, std::ios::binary);
  const std::string stored((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  if (!in.good() && !in.eof()) throw ScenarioFailure("cannot read golden file " + file.string());

  T decoded{};
  if (auto r = decode_into(stored, encoding, decoded); !r)
    throw ScenarioFailure("golden file " + file.string() + " does not decode: " + r.error().what());
  if (const std::string again = encode(decoded, encoding); again != stored)
    throw ScenarioFailure(detail::golden_diff("golden file " + file.string() + " re-encodes differently", stored, again));
  if (expected_bytes != stored)
    throw ScenarioFailure(
        detail::golden_diff("golden file " + file.string() + ": the expected value encodes differently", stored,
                            expected_bytes));
  if constexpr (std::equality_comparable<T>) {
    if (!(decoded == expected))
      throw ScenarioFailure("golden file " + file.string() + " decodes to a value other than the expected one");
  }
}

template <Event T>
void check_golden_event(const std::filesystem::path& dir, const T& expected) {
  const std::string stem = std::string(event_info_v<T>.name) + ".v" + std::to_string(event_info_v<T>.version);
  check_golden(dir / (stem + ".bin"), expected);
  check_golden(dir / (stem + ".json"), expected);
}

}  // namespace evs::testing
