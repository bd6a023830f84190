// Internal: one HTTP exchange between Beast's messages and the Router's (server.cpp, and the fuzz target
// fuzz/http_request.cpp, which feeds parsed requests to the router without a socket).
#pragma once

#include "message.hpp"

#include <boost/beast/http/message.hpp>
#include <boost/beast/http/string_body.hpp>

namespace evs::http {

class Router;

using BeastRequest = boost::beast::http::request<boost::beast::http::string_body>;
using BeastResponse = boost::beast::http::response<boost::beast::http::string_body>;

// The router's answer to a parsed request (a target that is not a path, or a malformed query: 400). Never
// throws.
Response answer(Router& router, const BeastRequest& req);
BeastResponse to_beast(const Response& r, unsigned version, bool keep_alive);

}  // namespace evs::http
