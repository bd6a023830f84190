// Error model: expected outcomes are values (evs::Result), broken invariants and unrecoverable I/O throw
// evs::Exception. Both carry an evs::errc code and a message a user can act on.
#pragma once

#include <boost/assert/source_location.hpp>
#include <boost/system/result.hpp>

#include <iosfwd>
#include <stdexcept>
#include <string>
#include <system_error>

namespace evs {

// Error codes. The numeric values are part of the public API (they appear in CLI exit reports): never renumber.
enum class errc : int {
  ok = 0,
  wrong_expected_version = 1,  // the stream's version did not match the append's expectation
  stream_not_found = 2,        // the stream has no events
  duplicate_event = 3,         // an event id is already stored elsewhere, or a retry overlaps only partially
  unknown_event_type = 4,      // a stored type name is not registered / not handled here
  corrupt_payload = 5,         // a payload or snapshot does not decode
  unsupported_schema_version = 6,  // a stored schema version is newer than the code knows
  database_locked = 7,         // another process holds the database lock beyond the busy timeout
  read_only = 8,               // the database (file or directory) cannot be written
  disk_full = 9,               // the disk or quota is full; nothing of the failed append was stored
  io_error = 10,               // any other storage failure
  invalid_argument = 11,       // a caller passed something that can never work (empty stream id, ...)
  not_an_evs_database = 12,    // the file is not an evs store, or its schema is newer than this build
  retries_exhausted = 13,      // a bounded retry loop gave up
  shutting_down = 14,          // the store or engine is closing and accepts no new work
  timed_out = 15,              // a wait ran out of time
  handler_failed = 16,         // a projection or process-manager handler threw
  rejected = 17,               // the domain refused the command (a business rule said no; see evs::reject)
  schema_drift = 18,           // a registered event type differs from the one that first stored its version
  unavailable = 19,            // the database server cannot be reached or closed the connection; retry later
  fenced = 20,                 // this node's claim on a projection partition had gone: its batch was rolled back
};

}  // namespace evs

template <>
struct std::is_error_code_enum<evs::errc> : std::true_type {};

namespace evs {

const std::error_category& error_category() noexcept;

inline std::error_code make_error_code(errc e) noexcept { return {static_cast<int>(e), error_category()}; }

// An error value: a code to branch on plus a human-readable message with the specifics.
struct Error {
  std::error_code code;
  std::string message;

  Error() = default;
  Error(errc c, std::string msg = {}) : code(make_error_code(c)), message(std::move(msg)) {}
  Error(std::error_code c, std::string msg = {}) : code(c), message(std::move(msg)) {}

  bool is(errc c) const noexcept { return code == make_error_code(c); }
  // "wrong expected version: stream order-1 is at version 3, expected 2"
  std::string what() const;
};

std::ostream& operator<<(std::ostream& os, const Error& e);

// Thrown for broken invariants and unrecoverable I/O, and by Result::value() on an error.
class Exception : public std::system_error {
 public:
  explicit Exception(const Error& e) : std::system_error(e.code, e.message), error_(e) {}
  Exception(errc c, const std::string& msg) : Exception(Error{c, msg}) {}
  const Error& error() const noexcept { return error_; }

 private:
  Error error_;
};

// Called by boost::system::result<T, Error>::value() when it holds an error.
[[noreturn]] void throw_exception_from_error(const Error& e, const boost::source_location& loc);

template <class T>
using Result = boost::system::result<T, Error>;

// A decision's refusal: `if (balance < cents) return evs::reject("insufficient funds");`. The command
// stores nothing and returns this error (errc::rejected) to its caller as is.
inline Error reject(std::string reason) { return Error{errc::rejected, std::move(reason)}; }

}  // namespace evs
