#include "evs/core/error.hpp"
#include "evs/core/expected_version.hpp"

#include <ostream>

namespace evs {
namespace {

class Category final : public std::error_category {
 public:
  const char* name() const noexcept override { return "evs"; }
  std::string message(int c) const override {
    switch (static_cast<errc>(c)) {
      case errc::ok: return "ok";
      case errc::wrong_expected_version: return "wrong expected version";
      case errc::stream_not_found: return "stream not found";
      case errc::duplicate_event: return "duplicate event";
      case errc::unknown_event_type: return "unknown event type";
      case errc::corrupt_payload: return "corrupt payload";
      case errc::unsupported_schema_version: return "unsupported schema version";
      case errc::database_locked: return "database is locked";
      case errc::read_only: return "database is read-only";
      case errc::disk_full: return "disk is full";
      case errc::io_error: return "storage I/O error";
      case errc::invalid_argument: return "invalid argument";
      case errc::not_an_evs_database: return "not an evs database";
      case errc::retries_exhausted: return "retries exhausted";
      case errc::shutting_down: return "shutting down";
      case errc::timed_out: return "timed out";
      case errc::handler_failed: return "handler failed";
      case errc::rejected: return "rejected";
      case errc::schema_drift: return "event schema drift";
      case errc::unavailable: return "database server unavailable";
      case errc::fenced: return "claim lost (fenced)";
    }
    return "unknown evs error " + std::to_string(c);
  }
};

}  // namespace

const std::error_category& error_category() noexcept {
  static const Category category;
  return category;
}

std::string Error::what() const {
  std::string s = code.message();
  if (!message.empty()) s += ": " + message;
  return s;
}

std::ostream& operator<<(std::ostream& os, const Error& e) { return os << e.what(); }

void throw_exception_from_error(const Error& e, const boost::source_location&) { throw Exception(e); }

std::string ExpectedVersion::to_string() const {
  switch (kind_) {
    case Kind::any: return "any";
    case Kind::no_stream: return "no_stream";
    case Kind::stream_exists: return "stream_exists";
    case Kind::exact: return std::to_string(version_);
  }
  return "?";
}

}  // namespace evs
