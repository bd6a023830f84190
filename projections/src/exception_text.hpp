// Internal: the message of an exception caught as std::exception_ptr (for error reports and health).
#pragma once

#include <exception>
#include <string>

namespace evs::detail {

inline std::string exception_text(std::exception_ptr e) {
  try {
    std::rethrow_exception(e);
  } catch (const std::exception& x) {
    return x.what();
  } catch (...) {
    return "unknown exception";
  }
}

}  // namespace evs::detail
