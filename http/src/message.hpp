// Internal: a request and a response as the routes see them, without Beast (only server.cpp includes it),
// and the small helpers every route uses.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace evs::http {

struct Request {
  std::string method;                         // "GET", "POST", ...
  std::string path;                           // as sent, without the query (path_segments decodes it)
  std::map<std::string, std::string> query;   // decoded query parameters (the last of a repeated name wins)
  std::string authorization;                  // the Authorization header, or empty
  std::string host;                           // the Host header, or empty
  std::string body;
};

struct Response {
  int status = 200;
  std::string content_type = "application/json";
  std::string body;
  std::vector<std::pair<std::string, std::string>> headers;  // extra headers
};

// A route's way out with an error: becomes {"error": message} with `status`.
struct HttpError : std::runtime_error {
  HttpError(int code, const std::string& message) : std::runtime_error(message), status(code) {}
  int status;
};

Response json_response(std::string body, int status = 200);
Response error_response(int status, std::string_view message);

// Percent-decoding ('+' stays '+'); nullopt for a malformed escape.
std::optional<std::string> percent_decode(std::string_view text);
// Splits "a=1&b=x%20y" into decoded pairs; throws HttpError(400) for a malformed escape.
std::map<std::string, std::string> parse_query(std::string_view query);
// The path split at '/' into decoded segments ("/api/streams/order-1" -> {"api", "streams", "order-1"});
// throws HttpError(400) for a malformed escape.
std::vector<std::string> path_segments(std::string_view path);

// A decimal number; HttpError(400) naming `what` when it is not one or is over `max`.
std::uint64_t parse_number(std::string_view text, std::string_view what, std::uint64_t max);
// Query parameters: a missing one is `fallback`; a malformed one is HttpError(400) naming it.
std::uint64_t query_number(const Request& r, const std::string& name, std::uint64_t fallback, std::uint64_t max);
std::string query_text(const Request& r, const std::string& name);

// "[a,b,c]" of already-serialized JSON values.
std::string json_array(const std::vector<std::string>& values);

}  // namespace evs::http
