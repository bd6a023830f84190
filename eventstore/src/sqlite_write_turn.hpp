// WriteTurn: cross-process turn-taking for the writers of one SQLite store file (internal).
//
// SQLite's own lock keeps writers apart, but its busy handler waits by sleeping in growing steps, so a
// process that waits can sleep through every moment the lock is free while the other writers retake it at
// once, and fail with database_locked although every transaction is short. Writers of evs therefore take
// turns through the sidecar file `<store>-lock` first, with Linux open-file-description locks (fcntl
// F_OFD_SETLK) on two bytes of it, in a turnstile:
//   1. lock byte 0 (the queue);  2. lock byte 1 (the turn);  3. unlock byte 0.
// The turn is held for one write transaction and released right after its COMMIT. A writer that just
// released the turn must take the queue byte again, which the next writer holds while it waits for the
// turn, so no process can write twice in a row while another waits.
// Waiting is bounded: a lock that is not free is retried every poll_interval (a fraction of a
// millisecond, so a waiter takes a freed turn almost at once; blocking F_OFD_SETLKW cannot be given a time
// limit without a signal handler) until the caller's timeout (SqliteOptions::busy_timeout), so a stopped
// or hung process that holds the turn (or the queue) makes the others fail with database_locked instead
// of waiting forever, as SQLite's own lock does.
// SQLite's lock stays the one that guarantees exclusion; the sidecar only orders evs writers, so a foreign
// program (the sqlite3 shell) that holds SQLite's lock still meets busy_timeout and database_locked.
// Locks die with their file description: a killed process never leaves one behind.
//
// The sidecar is created (empty, with the store file's permission bits) by the first write. When it cannot
// be opened or locked (a file system without OFD locks, a file owned by another user) WriteTurn stops
// using it and writers fall back to SQLite's busy handler: fairness is lost, never correctness.
// One WriteTurn per writer connection; acquire/release are called by one thread at a time.
#pragma once

#include <chrono>
#include <string>

namespace evs::sqlite {

class WriteTurn {
 public:
  // How often a waiting writer retries a lock that is held.
  static constexpr std::chrono::microseconds poll_interval{200};

  explicit WriteTurn(std::string store_path) : store_path_(std::move(store_path)), path_(store_path_ + "-lock") {}
  ~WriteTurn();
  WriteTurn(const WriteTurn&) = delete;
  WriteTurn& operator=(const WriteTurn&) = delete;

  // Waits up to `timeout` (negative: 0) until this writer holds the turn. True when it does, or when the
  // sidecar turned out to be unusable (the writer then relies on SQLite's lock alone); false when another
  // process held the turn (or the queue before it) for the whole `timeout`: nothing is held then.
  bool acquire(std::chrono::milliseconds timeout) noexcept;
  // Gives the turn up; a no-op when not held.
  void release() noexcept;

  // The sidecar's path (for messages and documentation).
  const std::string& path() const { return path_; }

 private:
  bool open() noexcept;
  void disable() noexcept;

  std::string store_path_;
  std::string path_;
  int fd_ = -1;
  bool disabled_ = false;
  bool held_ = false;
};

}  // namespace evs::sqlite
