#include "pg_array.hpp"

#include "pg_params.hpp"

#include <bit>
#include <cstring>

namespace evs::pg {
namespace {

constexpr std::size_t header_bytes = 20;  // ndim, flags, element type, then one dimension: size, lower bound

template <class T>
void put(std::string& out, T value) {
  using U = std::make_unsigned_t<T>;
  U v = static_cast<U>(value);
  if constexpr (std::endian::native == std::endian::little) {
    if constexpr (sizeof(U) == 8) v = __builtin_bswap64(v);
    if constexpr (sizeof(U) == 4) v = __builtin_bswap32(v);
    if constexpr (sizeof(U) == 2) v = __builtin_bswap16(v);
  }
  char bytes[sizeof v];
  std::memcpy(bytes, &v, sizeof v);
  out.append(bytes, sizeof v);
}

template <class T>
void put_at(std::string& out, std::size_t at, T value) {
  std::string tmp;
  put(tmp, value);
  std::memcpy(out.data() + at, tmp.data(), tmp.size());
}

}  // namespace

PgArray::PgArray(Oid element) : element_(element) { data_.resize(header_bytes); }

void PgArray::begin_element(std::int32_t length) {
  put(data_, length);
  ++count_;
}

PgArray& PgArray::int64(std::int64_t value) {
  begin_element(8);
  put(data_, value);
  return *this;
}

PgArray& PgArray::int32(std::int32_t value) {
  begin_element(4);
  put(data_, value);
  return *this;
}

PgArray& PgArray::int16(std::int16_t value) {
  begin_element(2);
  put(data_, value);
  return *this;
}

PgArray& PgArray::raw(std::string_view bytes) {
  begin_element(static_cast<std::int32_t>(bytes.size()));
  data_.append(bytes);
  return *this;
}

PgArray& PgArray::null() {
  begin_element(-1);
  has_null_ = true;
  return *this;
}

void PgArray::clear() {
  data_.resize(header_bytes);
  count_ = 0;
  has_null_ = false;
}

std::string_view PgArray::bytes() {
  if (count_ == 0) {
    // An empty array has no dimensions: ndim 0, flags, element type.
    put_at(data_, 0, std::int32_t{0});
    put_at(data_, 4, std::int32_t{0});
    put_at(data_, 8, static_cast<std::int32_t>(element_));
    return std::string_view(data_).substr(0, 12);
  }
  put_at(data_, 0, std::int32_t{1});
  put_at(data_, 4, std::int32_t{has_null_ ? 1 : 0});
  put_at(data_, 8, static_cast<std::int32_t>(element_));
  put_at(data_, 12, static_cast<std::int32_t>(count_));
  put_at(data_, 16, std::int32_t{1});
  return data_;
}

Oid PgArray::array_type() const {
  switch (element_) {
    case int8_oid: return 1016;
    case int4_oid: return 1007;
    case int2_oid: return 1005;
    case text_oid: return 1009;
    case bytea_oid: return 1001;
    case uuid_oid: return 2951;
    default: return 0;
  }
}

}  // namespace evs::pg
