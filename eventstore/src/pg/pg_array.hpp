// One-dimensional array parameters in PostgreSQL's binary array format (internal: the libpq layer).
//
// A whole group of appended events travels as one parameter per column (`unnest($1::bigint[], ...)`), so one
// statement stores any number of rows without a parameter per value. PgArray collects the elements of one
// column; bytes() is the value to pass with PgParams::binary(bytes, array_type()).
#pragma once

#include <libpq-fe.h>

#include <cstdint>
#include <string>
#include <string_view>

namespace evs::pg {

class PgArray {
 public:
  // `element` is the element type's OID (int8_oid, int4_oid, int2_oid, text_oid, bytea_oid, uuid_oid).
  explicit PgArray(Oid element);

  PgArray& int64(std::int64_t value);
  PgArray& int32(std::int32_t value);
  PgArray& int16(std::int16_t value);
  // text, bytea and uuid elements: the raw bytes (UTF-8 text, any bytes, or the 16 bytes of a uuid).
  PgArray& raw(std::string_view bytes);
  PgArray& null();

  std::size_t size() const { return count_; }
  // Forgets the elements, keeping the storage.
  void clear();

  // The encoded array (valid until the next change), and the array type's OID for PgParams::binary.
  std::string_view bytes();
  Oid array_type() const;

 private:
  void begin_element(std::int32_t length);

  Oid element_;
  std::string data_;  // a 20-byte header (filled in by bytes()), then the elements
  std::size_t count_ = 0;
  bool has_null_ = false;
};

}  // namespace evs::pg
