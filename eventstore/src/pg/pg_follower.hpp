// The PostgreSQL store's follower (internal): watches the readable head and calls the commit listeners.
//
// One thread with its own connection (never a pooled one, never through a transaction-mode pooler). Once this
// process follows the log (want_notifications(): a commit listener, or a change_token() caller such as the
// projection engine or `evs tail`), it LISTENs on the store's channel and reads the head below the fence
// after a wake-up from this process's writers, after a notification from any process, and at least every
// PgOptions::poll_interval; when the head moved it bumps the change token and calls the listeners with it.
// A notification's payload is never trusted: it only means "look". While committed events wait above the
// fence (an older transaction is still open), it polls fast (1 ms, doubling) until the fence passes them,
// so a commit that became readable only once an older transaction ended is noticed too. After a lost
// connection it reconnects with backoff, LISTENs again and looks at once, since notifications sent meanwhile
// are lost.
//
// A process that only appends never LISTENs and reads nothing: PostgreSQL delivers every notification to
// every listening session, and with many appending processes listening for nothing the server spent four
// times the CPU of the appends on it (pg_append_multi_process). Its commits only bump the change token.
//
// The writers notify the other processes themselves, in each group's pipeline after its COMMIT (notify_sql
// in pg_schema.hpp, see pg_group_sql.hpp). The follower sends the same notification, on its own session,
// only for a group whose own one failed.
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

  // A writer of this process committed: look at the head now if this process follows the log, and notify
  // the other processes unless the writer did (`notified`). Commits made before the follower gets to it
  // share one notification.
  void committed(bool notified);
  // This process follows the log: LISTEN from now on. When the LISTEN is in place the change token moves,
  // so a caller who read the token before then looks again and misses no commit of another process.
  void want_notifications();

 private:
  void run();

  StoreShared& shared_;
  std::optional<PgConnection> connection_;  // made by the constructor, then the thread's
  std::optional<std::uint64_t> start_;      // the head when the constructor ran
  void poke();

  int wake_fd_ = -1;  // eventfd: committed() and the destructor wake the thread's poll()
  std::atomic<bool> notify_wanted_{false};
  std::atomic<bool> listen_wanted_{false};
  std::atomic<bool> stopping_{false};
  std::thread thread_;
};

}  // namespace evs::pg
