// Internal: maps a request to its route (the list is in docs/operations.md) and applies the rules every
// route shares: the bearer token and read-only mode for state-changing requests, 404/405 for unknown
// routes and methods, errors as {"error": ...} (HttpError's status; 503 for a store that is unavailable,
// 500 for any other failure), and the security headers.
#pragma once

#include "message.hpp"

namespace evs::http {

class Site;

class Router {
 public:
  explicit Router(Site& site) : site_(site) {}
  // Never throws.
  Response handle(const Request& request);

 private:
  Response route(const Request& request);
  Response asset(std::string_view name);
  void authorize(const Request& request) const;
  void check_host(const Request& request) const;

  Site& site_;
};

}  // namespace evs::http
