#include "exchange.hpp"

#include "router.hpp"

#include <boost/beast/http/field.hpp>

namespace evs::http {

namespace bhttp = boost::beast::http;

Response answer(Router& router, const BeastRequest& req) {
  const std::string_view target(req.target().data(), req.target().size());
  if (target.empty() || target.front() != '/') return error_response(400, "the request target must be a path");
  Request r;
  r.method = std::string(req.method_string());
  const std::size_t q = target.find('?');
  r.path = std::string(target.substr(0, q));
  try {
    if (q != std::string_view::npos) r.query = parse_query(target.substr(q + 1));
  } catch (const HttpError& e) {
    return error_response(e.status, e.what());
  }
  if (const auto a = req.find(bhttp::field::authorization); a != req.end()) r.authorization = std::string(a->value());
  if (const auto h = req.find(bhttp::field::host); h != req.end()) r.host = std::string(h->value());
  r.body = req.body();
  return router.handle(r);
}

BeastResponse to_beast(const Response& r, unsigned version, bool keep_alive) {
  BeastResponse res{static_cast<bhttp::status>(r.status), version};
  res.set(bhttp::field::server, "evs");
  res.set(bhttp::field::content_type, r.content_type);
  for (const auto& [name, value] : r.headers) res.set(name, value);
  res.keep_alive(keep_alive);
  res.body() = r.body;
  res.prepare_payload();
  return res;
}

}  // namespace evs::http
