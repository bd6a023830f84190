#include "pg_result.hpp"

#include <bit>
#include <cassert>
#include <charconv>
#include <cstring>

#include "pg_params.hpp"

namespace evs::pg {
namespace {

std::uint64_t read_big_endian(const char* data, std::size_t length) {
  std::uint64_t v = 0;
  for (std::size_t i = 0; i < length; ++i) v = (v << 8) | static_cast<unsigned char>(data[i]);
  return v;
}

}  // namespace

std::int64_t PgResult::int64(int row, int column) const {
  const std::string_view v = raw(row, column);
  assert(PQfformat(result_.get(), column) == 1);
  switch (v.size()) {
    case 2:
      assert(column_type(column) == int2_oid);
      return static_cast<std::int16_t>(read_big_endian(v.data(), 2));
    case 4:
      assert(column_type(column) == int4_oid);
      return static_cast<std::int32_t>(read_big_endian(v.data(), 4));
    case 8:
      assert(column_type(column) == int8_oid);
      return static_cast<std::int64_t>(read_big_endian(v.data(), 8));
    default:
      assert(v.empty() && is_null(row, column));
      return 0;
  }
}

double PgResult::float64(int row, int column) const {
  const std::string_view v = raw(row, column);
  if (v.size() != 8) {
    assert(v.empty() && is_null(row, column));
    return 0;
  }
  assert(column_type(column) == float8_oid);
  return std::bit_cast<double>(read_big_endian(v.data(), 8));
}

std::int64_t PgResult::affected_rows() const {
  if (!result_) return 0;
  const char* tuples = PQcmdTuples(result_.get());
  std::int64_t n = 0;
  std::from_chars(tuples, tuples + std::strlen(tuples), n);  // "" (not a row-count command) leaves 0
  return n;
}

std::string_view PgResult::command_tag() const {
  if (!result_) return {};
  return PQcmdStatus(result_.get());
}

}  // namespace evs::pg
