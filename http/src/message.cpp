#include "message.hpp"

#include "format.hpp"

namespace evs::http {

Response json_response(std::string body, int status) {
  Response r;
  r.status = status;
  r.body = std::move(body);
  return r;
}

Response error_response(int status, std::string_view message) {
  cli::JsonObject o;
  o.str("error", message);
  return json_response(o.text(), status);
}

std::optional<std::string> percent_decode(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  const auto digit = [](char c) -> int {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
  };
  for (std::size_t i = 0; i < text.size(); ++i) {
    if (text[i] != '%') {
      out.push_back(text[i]);
      continue;
    }
    if (i + 2 >= text.size()) return std::nullopt;
    const int hi = digit(text[i + 1]), lo = digit(text[i + 2]);
    if (hi < 0 || lo < 0) return std::nullopt;
    out.push_back(static_cast<char>(hi * 16 + lo));
    i += 2;
  }
  return out;
}

namespace {
std::string decoded(std::string_view text, std::string_view what) {
  auto d = percent_decode(text);
  if (!d) throw HttpError(400, "malformed percent-escape in the " + std::string(what));
  return std::move(*d);
}
}  // namespace

std::map<std::string, std::string> parse_query(std::string_view query) {
  std::map<std::string, std::string> out;
  while (!query.empty()) {
    const std::size_t amp = query.find('&');
    const std::string_view pair = query.substr(0, amp);
    query = amp == std::string_view::npos ? std::string_view() : query.substr(amp + 1);
    if (pair.empty()) continue;
    const std::size_t eq = pair.find('=');
    std::string value = eq == std::string_view::npos ? std::string() : decoded(pair.substr(eq + 1), "query");
    // Forms encode a space as '+'.
    for (char& c : value)
      if (c == '+') c = ' ';
    out[decoded(pair.substr(0, eq), "query")] = std::move(value);
  }
  return out;
}

std::vector<std::string> path_segments(std::string_view path) {
  std::vector<std::string> out;
  while (!path.empty()) {
    if (path.front() == '/') {
      path.remove_prefix(1);
      continue;
    }
    const std::size_t slash = path.find('/');
    out.push_back(decoded(path.substr(0, slash), "path"));
    path = slash == std::string_view::npos ? std::string_view() : path.substr(slash);
  }
  return out;
}

std::uint64_t parse_number(std::string_view s, std::string_view what, std::uint64_t max) {
  std::uint64_t n = 0;
  bool malformed = s.empty();
  for (char c : s) {
    if (c < '0' || c > '9' || n > (UINT64_MAX - 9) / 10) {
      malformed = true;
      break;
    }
    n = n * 10 + static_cast<std::uint64_t>(c - '0');
  }
  if (malformed)
    throw HttpError(400, std::string(what) + ": '" + std::string(s.substr(0, 40)) + "' is not a non-negative integer");
  if (n > max) throw HttpError(400, std::string(what) + ": " + std::string(s) + " is over the limit of " + std::to_string(max));
  return n;
}

std::uint64_t query_number(const Request& r, const std::string& name, std::uint64_t fallback, std::uint64_t max) {
  const auto it = r.query.find(name);
  if (it == r.query.end() || it->second.empty()) return fallback;
  return parse_number(it->second, name, max);
}

std::string query_text(const Request& r, const std::string& name) {
  const auto it = r.query.find(name);
  return it == r.query.end() ? std::string() : it->second;
}

std::string json_array(const std::vector<std::string>& values) {
  std::string out = "[";
  for (std::size_t i = 0; i < values.size(); ++i) {
    if (i > 0) out += ',';
    out += values[i];
  }
  out += ']';
  return out;
}

}  // namespace evs::http
