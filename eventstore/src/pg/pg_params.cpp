#include "pg_params.hpp"

#include <bit>
#include <cstring>

namespace evs::pg {
namespace {

std::uint64_t to_network(std::uint64_t v) {
  if constexpr (std::endian::native == std::endian::little) return __builtin_bswap64(v);
  return v;
}

// PostgreSQL's limit for one field value (and well within libpq's int lengths).
constexpr std::size_t max_field_bytes = std::size_t{1} << 30;

}  // namespace

void PgParams::add(Slot slot, int length, int format, Oid type) {
  slots_.push_back(slot);
  lengths_.push_back(length);
  formats_.push_back(format);
  types_.push_back(type);
}

void PgParams::add_owned(const char* data, std::size_t length, int format, Oid type, bool nul_terminate) {
  if (length > max_field_bytes) {
    if (oversized_ == 0) oversized_ = size() + 1;
    null(type);
    return;
  }
  const std::size_t offset = arena_.size();
  arena_.append(data, length);
  if (nul_terminate) arena_.push_back('\0');
  add({nullptr, offset, false}, static_cast<int>(length), format, type);
}

PgParams& PgParams::null(Oid type) {
  add({nullptr, 0, true}, 0, 0, type);
  return *this;
}

PgParams& PgParams::text(std::string_view text) {
  add_owned(text.data(), text.size(), 0, 0, true);
  return *this;
}

PgParams& PgParams::int64(std::int64_t value) {
  const std::uint64_t big = to_network(static_cast<std::uint64_t>(value));
  char bytes[8];
  std::memcpy(bytes, &big, sizeof bytes);
  add_owned(bytes, sizeof bytes, 1, int8_oid, false);
  return *this;
}

PgParams& PgParams::float64(double value) {
  const std::uint64_t big = to_network(std::bit_cast<std::uint64_t>(value));
  char bytes[8];
  std::memcpy(bytes, &big, sizeof bytes);
  add_owned(bytes, sizeof bytes, 1, float8_oid, false);
  return *this;
}

PgParams& PgParams::bytes(std::string_view bytes) { return binary(bytes, bytea_oid); }

PgParams& PgParams::binary(std::string_view bytes, Oid type) {
  // libpq reads `length` bytes of a binary value; an empty value still needs a non-null pointer (null means
  // SQL NULL).
  if (bytes.size() > max_field_bytes) {
    if (oversized_ == 0) oversized_ = size() + 1;
    return null(type);
  }
  add({bytes.empty() ? "" : bytes.data(), 0, false}, static_cast<int>(bytes.size()), 1, type);
  return *this;
}

void PgParams::clear() {
  slots_.clear();
  arena_.clear();
  lengths_.clear();
  formats_.clear();
  types_.clear();
  values_.clear();
  oversized_ = 0;
}

const char* const* PgParams::values() const {
  if (slots_.empty()) return nullptr;
  values_.resize(slots_.size());
  for (std::size_t i = 0; i < slots_.size(); ++i) {
    const Slot& s = slots_[i];
    values_[i] = s.is_null ? nullptr : s.external != nullptr ? s.external : arena_.data() + s.offset;
  }
  return values_.data();
}

}  // namespace evs::pg
