// Statement parameters for PQexecParams / PQexecPrepared (internal: the libpq layer).
//
// PgParams collects $1, $2, ... in order and hands libpq its four parallel arrays (values, lengths, formats,
// types). Numbers and bytea travel in binary format (network byte order), text in text format. Storage is
// one arena per PgParams, not one allocation per parameter; clear() keeps the capacity for reuse.
#pragma once

#include <libpq-fe.h>

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace evs::pg {

// Type OIDs of the built-in types evs sends (pg_type.h is a server header, so they are repeated here).
inline constexpr Oid bool_oid = 16;
inline constexpr Oid bytea_oid = 17;
inline constexpr Oid int8_oid = 20;
inline constexpr Oid int2_oid = 21;
inline constexpr Oid int4_oid = 23;
inline constexpr Oid text_oid = 25;
inline constexpr Oid float8_oid = 701;
inline constexpr Oid varchar_oid = 1043;
inline constexpr Oid uuid_oid = 2950;

class PgParams {
 public:
  PgParams() = default;
  PgParams(PgParams&&) noexcept = default;
  PgParams& operator=(PgParams&&) noexcept = default;
  PgParams(const PgParams&) = delete;
  PgParams& operator=(const PgParams&) = delete;

  // SQL NULL. `type` 0 lets the server infer the type from the statement.
  PgParams& null(Oid type = 0);
  // Text format, copied (libpq needs it NUL-terminated). The type is left to the server to infer, so a text
  // parameter can feed a text, uuid or numeric column alike. `text` must not contain a NUL byte (PostgreSQL
  // text cannot hold one): the statement would see it cut there.
  PgParams& text(std::string_view text);
  // Binary int8.
  PgParams& int64(std::int64_t value);
  // Binary float8.
  PgParams& float64(double value);
  // Binary bytea. Not copied: `bytes` must stay valid until the statement has run.
  PgParams& bytes(std::string_view bytes);
  // Any value in binary format with its type's OID (e.g. a PgArray). Not copied, as bytes().
  PgParams& binary(std::string_view bytes, Oid type);

  // The 1-based index of the first value over PostgreSQL's 1 GB field limit (libpq lengths are int), or 0.
  // PgConnection refuses to run a statement with such a parameter (invalid_argument); it is sent as NULL.
  int oversized() const { return oversized_; }

  int size() const { return static_cast<int>(slots_.size()); }
  bool empty() const { return slots_.empty(); }
  // Forgets every parameter, keeping the storage.
  void clear();

  // The arrays libpq takes, valid until the next change to this object. Null when there are no parameters.
  const char* const* values() const;
  const int* lengths() const { return lengths_.empty() ? nullptr : lengths_.data(); }
  const int* formats() const { return formats_.empty() ? nullptr : formats_.data(); }
  const Oid* types() const { return types_.empty() ? nullptr : types_.data(); }

 private:
  struct Slot {
    const char* external;  // bytes the caller owns, or null for a value in arena_ (or SQL NULL)
    std::size_t offset;    // where it starts in arena_
    bool is_null;
  };
  void add(Slot slot, int length, int format, Oid type);
  void add_owned(const char* data, std::size_t length, int format, Oid type, bool nul_terminate);

  std::vector<Slot> slots_;
  std::string arena_;
  std::vector<int> lengths_;
  std::vector<int> formats_;
  std::vector<Oid> types_;
  int oversized_ = 0;
  mutable std::vector<const char*> values_;  // rebuilt by values(): arena_ may have moved since add()
};

}  // namespace evs::pg
