// Small pieces shared by the SQLite store's writer and readers (internal): value conversions and the
// StorageFailure that carries an error out of straight-line SQL code.
#pragma once

#include <chrono>
#include <cstdint>
#include <limits>
#include <utility>

#include "evs/core/envelope.hpp"
#include "evs/core/error.hpp"

namespace evs::sqlite {

inline constexpr auto int64_max = std::numeric_limits<std::int64_t>::max();

// Unsigned API values as SQLite integers; values beyond int64 (the "no bound" sentinels) clamp.
inline std::int64_t to_db(std::uint64_t value) {
  return value > std::uint64_t(int64_max) ? int64_max : std::int64_t(value);
}
inline std::uint64_t to_u64(std::int64_t value) { return static_cast<std::uint64_t>(value); }

inline std::int64_t now_us() {
  return std::chrono::duration_cast<std::chrono::microseconds>(Clock::now().time_since_epoch()).count();
}
inline Timestamp from_us(std::int64_t us) { return Timestamp(std::chrono::microseconds(us)); }

// What ends a read (a storage error, a missing stream, an undecodable row), one append of a write group
// or a whole write group (a storage error). Thrown by must() and the read and write helpers, caught at the
// boundary that reports it (the store's read wrapper, the writer's per-append savepoint or commit), so the
// SQL code reads straight through. Never escapes the store.
struct StorageFailure {
  Error error;
};

template <class T>
T must(Result<T>&& result) {
  if (!result) throw StorageFailure{result.error()};
  return std::move(*result);
}
inline void must(Result<void>&& result) {
  if (!result) throw StorageFailure{result.error()};
}

}  // namespace evs::sqlite
