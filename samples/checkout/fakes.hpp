// In-process stand-ins for the outside world, with counters so the demo and the tests can check that
// every effect happened exactly once.
#pragma once

#include <map>
#include <mutex>
#include <stdexcept>
#include <string>

namespace checkout {

// A mail server that is down for the next `outage` connection attempts, and refuses malformed addresses.
class MailServer {
 public:
  void go_down_for(int attempts) { std::lock_guard lock(mutex_); outage_ = attempts; }

  // Sends one message. `message_id` identifies it (the demo checks that none is sent twice).
  void send(const std::string& to, const std::string& subject, const std::string& message_id) {
    std::lock_guard lock(mutex_);
    ++attempts_;
    if (outage_ > 0) {
      --outage_;
      throw std::runtime_error("mail server unreachable (connection refused)");
    }
    if (to.find('@') == std::string::npos) throw std::runtime_error("550 no such mailbox: " + to);
    ++sent_[message_id];
    last_subject_ = subject;
  }

  int attempts() const { std::lock_guard lock(mutex_); return attempts_; }
  int sent() const { std::lock_guard lock(mutex_); return static_cast<int>(sent_.size()); }
  int sent_twice() const {
    std::lock_guard lock(mutex_);
    int n = 0;
    for (const auto& [id, count] : sent_) n += count > 1;
    return n;
  }
  bool down() const { std::lock_guard lock(mutex_); return outage_ > 0; }

 private:
  mutable std::mutex mutex_;
  int outage_ = 0;
  int attempts_ = 0;
  std::map<std::string, int> sent_;  // message id -> deliveries
  std::string last_subject_;
};

// The warehouse's pick-list API.
class Warehouse {
 public:
  void pick(const std::string& order_id) { std::lock_guard lock(mutex_); ++picks_[order_id]; }
  int orders() const { std::lock_guard lock(mutex_); return static_cast<int>(picks_.size()); }
  int picked_twice() const {
    std::lock_guard lock(mutex_);
    int n = 0;
    for (const auto& [id, count] : picks_) n += count > 1;
    return n;
  }

 private:
  mutable std::mutex mutex_;
  std::map<std::string, int> picks_;
};

}  // namespace checkout
