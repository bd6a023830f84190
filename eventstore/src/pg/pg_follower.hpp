// The PostgreSQL store's follower (internal): watches the readable head and calls the commit listeners.
//
// One thread with its own connection (never a pooled one, never through a transaction-mode pooler) that
// LISTENs on the store's channel. It reads the head below the fence after a wake-up from this process's
// writers, after a notification from any process, and at least every PgOptions::poll_interval; when the
// head moved it bumps the change token and calls the listeners with it. A notification's payload is never
// trusted: it only means "look". While committed events wait above the fence (an older transaction is
// still open), it polls fast (1 ms, doubling) until the fence passes them. After a lost connection it
// reconnects with backoff, LISTENs again and looks at once, since notifications sent meanwhile are lost.
// Without listeners it reads nothing: a notification or a commit of this process only bumps the change
// token.
//
// It also sends this process's notifications: after a commit, `pg_notify` in a transaction of its own on
// the follower's session, with synchronous_commit off. Never inside the append's transaction: a transaction
// that notified holds the cluster's notify queue lock through its WAL flush, which would serialize every
// commit. Its own notification wakes it too; that costs one head read.
#pragma once

#include <atomic>
#include <mutex>
#include <optional>
#include <thread>

#include "pg_store_impl.hpp"

namespace evs::pg {

class PgFollower {
 public:
  // Starts following; the first head read is the starting point (listeners hear only later commits).
  explicit PgFollower(StoreShared& shared);
  ~PgFollower();
  PgFollower(const PgFollower&) = delete;
  PgFollower& operator=(const PgFollower&) = delete;

  // A writer of this process committed: look at the head now, and notify the other processes. Commits
  // made before the follower gets to it share one notification.
  void committed();

 private:
  void run();

  StoreShared& shared_;
  std::optional<PgConnection> connection_;  // made by the constructor, then the thread's
  std::optional<std::uint64_t> start_;      // the head when the constructor ran
  void poke();

  int wake_fd_ = -1;  // eventfd: committed() and the destructor wake the thread's poll()
  std::atomic<bool> notify_wanted_{false};
  std::atomic<bool> stopping_{false};
  std::thread thread_;
};

}  // namespace evs::pg
