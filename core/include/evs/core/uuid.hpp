// 128-bit identifiers for events. New ids are UUID version 7 (time-ordered), so the unique index on event
// ids grows at its right edge instead of splitting random pages.
#pragma once

#include <array>
#include <compare>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace evs {

class Uuid {
 public:
  constexpr Uuid() = default;  // the nil uuid
  explicit constexpr Uuid(const std::array<std::uint8_t, 16>& bytes) : bytes_(bytes) {}

  // A new random, time-ordered (version 7) id. Thread-safe.
  static Uuid generate();
  // The name-based (version 5, SHA-1) id of `name` in the namespace `namespace_id` (RFC 9562): the same
  // inputs give the same id in every build and on every machine.
  static Uuid name_based(const Uuid& namespace_id, std::string_view name);
  // Parses the canonical 36-character form (case-insensitive); nullopt on anything else.
  static std::optional<Uuid> parse(std::string_view text);
  // From exactly 16 raw bytes; nullopt on any other size.
  static std::optional<Uuid> from_bytes(std::string_view raw);

  std::string to_string() const;  // canonical lowercase 8-4-4-4-12 form
  std::string_view bytes_view() const {
    return {reinterpret_cast<const char*>(bytes_.data()), bytes_.size()};
  }
  const std::array<std::uint8_t, 16>& bytes() const { return bytes_; }
  bool is_nil() const { return *this == Uuid{}; }

  friend constexpr auto operator<=>(const Uuid&, const Uuid&) = default;

 private:
  std::array<std::uint8_t, 16> bytes_{};
};

struct UuidHash {
  std::size_t operator()(const Uuid& u) const noexcept;
};

}  // namespace evs
