#include "pg_follower.hpp"

#include "pg_schema.hpp"

#include <poll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <optional>
#include <stdexcept>

namespace evs::pg {
namespace {

using namespace std::chrono_literals;

struct Head {
  std::uint64_t readable = 0;  // the last position below the fence
  bool waiting = false;        // committed events wait above the fence
};

Result<Head> read_head(PgConnection& c) {
  static const std::string sql = "SELECT coalesce((SELECT max(position) FROM events WHERE position < " +
                                 std::string(fence_sql) + "), 0), coalesce((SELECT max(position) FROM events), 0)";
  auto r = c.prepared(sql, {}, "follow");
  if (!r) return r.error();
  const auto readable = static_cast<std::uint64_t>(r->int64(0, 0));
  return Head{readable, static_cast<std::uint64_t>(r->int64(0, 1)) > readable};
}

}  // namespace

PgFollower::PgFollower(StoreShared& shared) : shared_(shared) {
  wake_fd_ = ::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  if (wake_fd_ < 0) throw std::runtime_error("eventfd failed");
  // The starting point is taken before the constructor returns, so every later commit is heard.
  if (auto c = PgConnection::connect(shared_.options.url, shared_.connect); c) {
    if (c->exec("SET synchronous_commit = off", "follow")) {
      if (auto head = read_head(*c)) start_ = head->readable;
      connection_.emplace(std::move(*c));
    }
  }
  thread_ = std::thread([this] { run(); });
}

PgFollower::~PgFollower() {
  stopping_ = true;
  poke();
  thread_.join();
  ::close(wake_fd_);
}

void PgFollower::committed(bool notified) {
  if (!notified) notify_wanted_ = true;
  // The head is read for this process's own followers only (commit listeners, change-token readers): a
  // process that only appends, and whose writer notified, has nothing to do here.
  if (!notified || listen_wanted_.load(std::memory_order_relaxed)) poke();
}

void PgFollower::want_notifications() {
  // Called at every change_token(): a plain load first, so the common case writes nothing.
  if (!listen_wanted_.load(std::memory_order_relaxed) && !listen_wanted_.exchange(true)) poke();
}

void PgFollower::poke() {
  const std::uint64_t one = 1;
  (void)!::write(wake_fd_, &one, sizeof one);
}

void PgFollower::run() {
  std::optional<PgConnection> c = std::move(connection_);
  std::optional<std::uint64_t> announced = start_;  // the last head the listeners heard (the start point at first)
  auto fast = 1ms;                          // the fast poll while events wait above the fence
  auto backoff = 10ms;
  const std::string listen = "LISTEN " + quote_identifier(shared_.channel);
  bool listening = false;
  while (!stopping_) {
    if (!c || c->broken()) {
      Result<void> ready = c ? c->reconnect("follow") : [&]() -> Result<void> {
        auto made = PgConnection::connect(shared_.options.url, shared_.connect);
        if (!made) return made.error();
        c.emplace(std::move(*made));
        return {};
      }();
      if (ready) ready = c->exec("SET synchronous_commit = off", "follow");
      listening = false;
      if (!ready) {
        pollfd wake{wake_fd_, POLLIN, 0};
        ::poll(&wake, 1, static_cast<int>(backoff.count()));
        backoff = std::min(backoff * 2, std::chrono::milliseconds(1000));
        continue;
      }
      backoff = 10ms;
      ++shared_.changes;  // notifications sent while away are lost: whatever happened, look
    }

    if (listen_wanted_ && !listening) {
      if (c->exec(listen, "follow")) {
        listening = true;
        ++shared_.changes;  // whoever read the token before the LISTEN looks again
      } else if (c->broken()) {
        continue;  // reconnect above; a server error leaves the connection usable: try again next turn
      }
    }
    if (notify_wanted_.exchange(false)) {
      // A failed notification only delays the other processes until their fallback poll.
      (void)c->prepared(notify_sql, notify_params(shared_.channel), "notify the followers of");
      if (c->broken()) continue;
    }
    std::chrono::milliseconds wait = shared_.options.poll_interval;
    if (shared_.listeners.empty() && !listen_wanted_) {
      // Nobody follows the log here: a wake-up only bumps the change token, without asking the server for
      // the head (with many appending processes, each commit's notification would otherwise cost one query
      // in every one of them).
      // `announced` stays: a listener added later hears the first head beyond it, covering what it missed.
    } else if (auto head = read_head(*c); head) {
      if (!announced) {
        announced = head->readable;
      } else if (head->readable > *announced) {
        announced = head->readable;
        ++shared_.changes;
        shared_.listeners.notify(head->readable);
      }
      if (head->waiting) {
        wait = std::min(fast, wait);
        fast = std::min(fast * 2, shared_.options.poll_interval);
      } else {
        fast = 1ms;
      }
    } else if (c->broken()) {
      continue;  // reconnect above; a server error leaves the connection usable: poll as usual
    }

    // Notifications that arrived during the statements above are already in libpq's queue, not on the
    // socket: they may be for commits the head read missed, so look again at once.
    bool queued = false;
    while (PGnotify* n = PQnotifies(c->handle())) {
      PQfreemem(n);
      queued = true;
    }
    if (queued) {
      ++shared_.changes;
      wait = 0ms;
    }

    pollfd fds[2] = {{wake_fd_, POLLIN, 0}, {c->socket(), POLLIN, 0}};
    if (::poll(fds, 2, static_cast<int>(wait.count())) > 0) {
      if (fds[0].revents & POLLIN) {
        std::uint64_t n;
        (void)!::read(wake_fd_, &n, sizeof n);
      }
      if (fds[1].revents & (POLLIN | POLLERR | POLLHUP)) {
        if (PQconsumeInput(c->handle()) == 0) {
          (void)c->exec("SELECT 1", "follow");  // marks the connection broken; reconnect on the next turn
          continue;
        }
        bool notified = false;
        while (PGnotify* n = PQnotifies(c->handle())) {
          PQfreemem(n);
          notified = true;
        }
        if (notified) ++shared_.changes;
      }
    }
  }
}

}  // namespace evs::pg
