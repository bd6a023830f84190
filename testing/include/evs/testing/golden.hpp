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
//
// An older version's golden files, once the event has a newer version, in one line:
//
//   evs::testing::check_golden_upcast<v1::OrderPlaced>("golden/checkout.order_placed.v1.bin", expected_v2);
//
// passes when (1) the file decodes as the old type and re-encodes to its bytes exactly, and (2) upcasting the
// decoded value through the global registry's chains (EVS_UPCAST) gives exactly one event, of `expected`'s
// type, that encodes to the same bytes as `expected` (in binary: the comparison needs no operator==).
// check_golden_upcast_event<Old>(dir, expected) checks both encodings, in the files named after Old's stored
// name and version. These checks never write a file: an old version's files were written by check_golden
// while it was current. Failures throw ScenarioFailure, as above; a wrong value names both as JSON.
#pragma once

#include "evs/core/codec.hpp"
#include "evs/core/event.hpp"
#include "evs/core/registry.hpp"
#include "evs/testing/aggregate_scenario.hpp"  // ScenarioFailure

#include <any>
#include <concepts>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <sstream>
#include <string>
#include <typeindex>

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

inline std::string read_golden(const std::filesystem::path& file) {
  std::ifstream in(file, std::ios::binary);
  const std::string stored((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  if (!in.good() && !in.eof()) throw ScenarioFailure("cannot read golden file " + file.string());
  return stored;
}

// The value `stored` (the bytes of `file`) decodes to, after checking that it re-encodes to them exactly.
template <class T>
T decode_golden(const std::filesystem::path& file, const std::string& stored, Encoding encoding) {
  T decoded{};
  if (auto r = decode_into(stored, encoding, decoded); !r)
    throw ScenarioFailure("golden file " + file.string() + " does not decode: " + r.error().what());
  if (const std::string again = encode(decoded, encoding); again != stored)
    throw ScenarioFailure(golden_diff("golden file " + file.string() + " re-encodes differently", stored, again));
  return decoded;
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
  const std::string stored = detail::read_golden(file);
  const T decoded = detail::decode_golden<T>(file, stored, encoding);
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

template <Event Old, Event Current>
void check_golden_upcast(const std::filesystem::path& file, const Current& expected) {
  const Encoding encoding = detail::golden_encoding(file);
  if (!std::filesystem::exists(file))
    throw ScenarioFailure("golden file " + file.string() + " is missing (an old version's golden files are "
                          "written by check_golden while it is the current one)");
  const std::string stored = detail::read_golden(file);
  detail::decode_golden<Old>(file, stored, encoding);

  const EventRegistry& registry = EventRegistry::global();
  const EventTypeInfo* old_info = registry.find(event_info_v<Old>.name, event_info_v<Old>.version);
  if (old_info == nullptr || old_info->type != std::type_index(typeid(Old)))
    throw ScenarioFailure("golden file " + file.string() + ": the old type is not the one registered for '" +
                          std::string(event_info_v<Old>.name) + "' v" + std::to_string(event_info_v<Old>.version));
  auto values = registry.upcast(*old_info, stored, encoding);
  if (!values) throw ScenarioFailure("golden file " + file.string() + " does not upcast: " + values.error().what());
  if (values->size() != 1)
    throw ScenarioFailure("golden file " + file.string() + " upcasts to " + std::to_string(values->size()) +
                          " events, not one");
  const Current* got = std::any_cast<Current>(&values->front());
  if (got == nullptr) {
    auto cpp_type = [&](std::type_index t) {
      const EventTypeInfo* info = registry.find(t);
      return info != nullptr ? info->cpp_type : std::string("an unregistered type");
    };
    throw ScenarioFailure("golden file " + file.string() + " upcasts to " + cpp_type(values->front().type()) +
                          ", not " + cpp_type(typeid(Current)));
  }
  if (encode(*got, Encoding::binary) != encode(expected, Encoding::binary))
    throw ScenarioFailure("golden file " + file.string() + " upcasts to " + encode(*got, Encoding::json) +
                          ", not the expected " + encode(expected, Encoding::json));
}

template <Event Old, Event Current>
void check_golden_upcast_event(const std::filesystem::path& dir, const Current& expected) {
  const std::string stem = std::string(event_info_v<Old>.name) + ".v" + std::to_string(event_info_v<Old>.version);
  check_golden_upcast<Old>(dir / (stem + ".bin"), expected);
  check_golden_upcast<Old>(dir / (stem + ".json"), expected);
}

}  // namespace evs::testing
