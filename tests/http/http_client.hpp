// A small blocking HTTP/1.1 client for the server tests (Boost.Beast), and a raw socket for requests no
// well-behaved client sends.
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <optional>
#include <string>

namespace evs::test {

struct HttpReply {
  int status = 0;
  std::string content_type;
  std::string body;
  std::map<std::string, std::string> headers;  // by lower-case name
};

// One request on a new connection to 127.0.0.1:port. Throws on a network error.
HttpReply http_request(std::uint16_t port, const std::string& method, const std::string& target,
                       const std::map<std::string, std::string>& headers = {}, const std::string& body = {});
inline HttpReply http_get(std::uint16_t port, const std::string& target) { return http_request(port, "GET", target); }

// A raw connection: writes bytes and reads whatever comes back until the server closes or `wait` passes.
class RawConnection {
 public:
  explicit RawConnection(std::uint16_t port);
  ~RawConnection();
  RawConnection(const RawConnection&) = delete;
  RawConnection& operator=(const RawConnection&) = delete;
  void send(const std::string& bytes);
  // What arrives until the server closes the connection (nullopt: still open after `wait`).
  std::optional<std::string> read_until_closed(std::chrono::milliseconds wait);

 private:
  int fd_ = -1;
};

}  // namespace evs::test
