#include "router.hpp"

#include "api.hpp"
#include "assets.hpp"
#include "site.hpp"

#include "evs/core/error.hpp"

#include <boost/asio/ip/address.hpp>

#include <sodium.h>

namespace evs::http {

namespace {

std::string_view content_type_of(std::string_view name) {
  if (name.ends_with(".html")) return "text/html; charset=utf-8";
  if (name.ends_with(".js")) return "text/javascript; charset=utf-8";
  if (name.ends_with(".css")) return "text/css; charset=utf-8";
  if (name.ends_with(".svg")) return "image/svg+xml";
  if (name.ends_with(".png")) return "image/png";
  return "application/octet-stream";
}

Response method_not_allowed(std::string_view allowed) {
  Response r = error_response(405, "method not allowed here (allowed: " + std::string(allowed) + ")");
  r.headers.emplace_back("Allow", std::string(allowed));
  return r;
}

}  // namespace

Response Router::handle(const Request& request) {
  Response r;
  try {
    r = route(request);
  } catch (const HttpError& e) {
    r = error_response(e.status, e.what());
  } catch (const Exception& e) {
    r = error_response(e.code() == make_error_code(errc::unavailable) ? 503 : 500, e.what());
  } catch (const std::exception& e) {
    r = error_response(500, e.what());
  }
  r.headers.emplace_back("X-Content-Type-Options", "nosniff");
  r.headers.emplace_back("Cache-Control", "no-store");
  r.headers.emplace_back("Referrer-Policy", "no-referrer");
  if (r.content_type.starts_with("text/html"))
    r.headers.emplace_back("Content-Security-Policy",
                           "default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; "
                           "frame-ancestors 'none'; base-uri 'none'; form-action 'none'");
  return r;
}

Response Router::asset(std::string_view name) {
  for (const Asset& a : assets())
    if (a.name == name) {
      Response r;
      r.content_type = std::string(content_type_of(name));
      r.body = std::string(a.bytes);
      return r;
    }
  throw HttpError(404, "no such file");
}

void Router::authorize(const Request& request) const {
  if (site_.options().read_only) throw HttpError(403, "the server is read-only: nothing can be changed through it");
  const std::string expected = "Bearer " + site_.options().token;
  const std::string& given = request.authorization;
  // Compared in constant time, so the comparison's duration tells nothing about the token.
  if (given.size() != expected.size() ||
      sodium_memcmp(given.data(), expected.data(), expected.size()) != 0)
    throw HttpError(401, given.empty() ? "this request changes state: send Authorization: Bearer <token>"
                                       : "wrong token");
}

namespace {

// "host:port" or "[v6]:port" -> "host" / "v6", lower-cased.
std::string host_name(std::string_view host) {
  std::string name;
  if (!host.empty() && host.front() == '[') {
    const std::size_t close = host.find(']');
    name = std::string(host.substr(1, close == std::string_view::npos ? std::string_view::npos : close - 1));
  } else {
    name = std::string(host.substr(0, host.rfind(':')));
  }
  for (char& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return name;
}

bool loopback_address(const std::string& address) {
  boost::system::error_code ec;
  const auto a = boost::asio::ip::make_address(address, ec);
  if (ec) return address == "localhost";
  if (a.is_v6() && a.to_v6().is_v4_mapped())
    return boost::asio::ip::make_address_v4(boost::asio::ip::v4_mapped, a.to_v6()).is_loopback();
  return a.is_loopback();
}

}  // namespace

void Router::check_host(const Request& request) const {
  const ServeOptions& o = site_.options();
  if (o.allowed_hosts.empty() && !loopback_address(o.address)) return;
  // The loopback names and the bound address always, plus the allowed ones.
  std::vector<std::string> allowed = {"127.0.0.1", "::1", "localhost", o.address};
  allowed.insert(allowed.end(), o.allowed_hosts.begin(), o.allowed_hosts.end());
  const std::string name = host_name(request.host);
  for (const std::string& a : allowed)
    if (host_name(a) == name || a == name) return;
  throw HttpError(421, "this server does not answer to the host '" + request.host.substr(0, 100) +
                           "' (ServeOptions::allowed_hosts)");
}

Response Router::route(const Request& request) {
  check_host(request);
  const std::vector<std::string> p = path_segments(request.path);
  const bool get = request.method == "GET";
  if (p.empty() || (p.size() == 1 && p[0] == "index.html")) {
    if (!get) return method_not_allowed("GET");
    return asset("index.html");
  }
  if (p[0] == "assets") {
    if (!get) return method_not_allowed("GET");
    if (p.size() != 2) throw HttpError(404, "no such file");
    return asset(p[1]);  // only the compiled-in names match: nothing on disk is ever read
  }
  if (p.size() == 1 && p[0] == "metrics") {
    if (!get) return method_not_allowed("GET");
    Response r;
    r.content_type = "text/plain; version=0.0.4; charset=utf-8";
    r.body = site_.metrics().scrape(site_);
    return r;
  }
  if (p[0] != "api" || p.size() < 2) throw HttpError(404, "no route " + request.path);
  const std::string& what = p[1];
  const std::size_t n = p.size();
  if (what == "dead-letters" && n == 5) {
    if (request.method != "POST") return method_not_allowed("POST");
    authorize(request);
    return api_dead_letter_action(site_, request, p[2], p[3], p[4]);
  }
  if (!get) return method_not_allowed("GET");
  if (what == "overview" && n == 2) return api_overview(site_, request);
  if (what == "categories" && n == 2) return api_categories(site_, request);
  if (what == "streams" && n == 2) return api_streams(site_, request);
  if (what == "streams" && n == 3) return api_stream(site_, request, p[2]);
  if (what == "events" && n == 3) return api_event(site_, request, p[2]);
  if (what == "correlation" && n == 3) return api_correlation(site_, request, p[2]);
  if (what == "projections" && n == 2) return api_projections(site_, request);
  if (what == "dead-letters" && n == 2) return api_dead_letters(site_, request);
  if (what == "dead-letters" && n == 4) return api_dead_letter(site_, request, p[2], p[3]);
  if (what == "rebuilds" && n == 2) return api_rebuilds(site_, request);
  throw HttpError(404, "no route " + request.path);
}

}  // namespace evs::http
