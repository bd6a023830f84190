// The expectation every append carries (optimistic concurrency).
//
// Versions are 1-based: the first event of a stream has version 1, and a stream's version is the number of
// events in it. A stream that does not exist has version 0, so ExpectedVersion::exact(0) == no_stream.
#pragma once

#include <cstdint>
#include <string>

namespace evs {

class ExpectedVersion {
 public:
  enum class Kind : std::uint8_t { any, no_stream, stream_exists, exact };

  static constexpr ExpectedVersion any() { return {Kind::any, 0}; }
  static constexpr ExpectedVersion no_stream() { return {Kind::no_stream, 0}; }
  static constexpr ExpectedVersion stream_exists() { return {Kind::stream_exists, 0}; }
  static constexpr ExpectedVersion exact(std::uint64_t version) {
    return version == 0 ? no_stream() : ExpectedVersion{Kind::exact, version};
  }

  constexpr Kind kind() const { return kind_; }
  constexpr std::uint64_t version() const { return version_; }

  // True when a stream currently at `current` (0 = absent) satisfies this expectation.
  constexpr bool accepts(std::uint64_t current) const {
    switch (kind_) {
      case Kind::any: return true;
      case Kind::no_stream: return current == 0;
      case Kind::stream_exists: return current > 0;
      case Kind::exact: return current == version_;
    }
    return false;
  }

  std::string to_string() const;  // "any", "no_stream", "stream_exists" or the number

  friend constexpr bool operator==(const ExpectedVersion&, const ExpectedVersion&) = default;

 private:
  constexpr ExpectedVersion(Kind k, std::uint64_t v) : kind_(k), version_(v) {}
  Kind kind_;
  std::uint64_t version_;
};

}  // namespace evs
