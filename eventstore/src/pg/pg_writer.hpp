// The PostgreSQL store's writers: group commit over PgOptions::writers connections (internal).
//
// Each writer thread connects when it starts. Appends queue up; each writer thread takes everything queued
// (up to max_group appends, max_group_bytes and 2^20 - 1 events) and commits it as one transaction:
//   1. BEGIN; advisory locks on the group's streams, in key order (deadlock-free, and no transaction id is
//      taken before every lock is held, so a stream's next version always gets a larger position);
//   2. the streams' versions, the event ids already stored, the schema records; each append's outcome is
//      decided in C++ on its own (conflict, idempotent replay, duplicate, schema drift, accepted), so one
//      failing append fails alone without a savepoint per append;
//   3. the transaction id (positions), type names, streams, schema records and events, in bulk; COMMIT.
// A group whose every append the server can check by itself (distinct streams, known types and schemas) is
// committed in one round trip instead: BEGIN, the locks, one statement that checks and writes, COMMIT
// (pg_fast_group.hpp). When a check fails there it writes nothing, and the group goes the way above.
// A group that fails as a whole because the connection was lost is retried on a fresh connection, with the
// same event ids, until PgOptions::reconnect_timeout: an append that committed before the reply was lost is
// then an idempotent replay, never a second copy. Deadlocks, serialization failures and an event id
// inserted concurrently by another process are retried too. The last statement of a group's pipeline, after
// its COMMIT, notifies the other processes (notify_sql in pg_schema.hpp): one notification per commit
// group, with no round trip of its own. After each commit `committed` runs: it wakes this process's
// follower when this process follows the log, and has it notify when the group's own notification failed.
#pragma once

#include "evs/eventstore/event_store.hpp"

#include <chrono>
#include <condition_variable>
#include <deque>
#include <functional>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "../pending_event.hpp"
#include "pg_store_impl.hpp"

namespace evs::pg {

using detail::PendingEvent;

struct PendingAppend {
  std::string stream;
  ExpectedVersion expected;
  std::vector<PendingEvent> events;
  std::size_t bytes = 0;
  EventStore::AppendCallback done;
  std::chrono::steady_clock::time_point started = std::chrono::steady_clock::now();  // for append latency
};

class PgWriter {
 public:
  // `committed(notified)` runs after each group that stored events; `notified`: the group's own pipeline
  // told the other processes (notify_sql), so nobody else needs to.
  PgWriter(StoreShared& shared, std::function<void(bool notified)> committed);
  ~PgWriter();  // commits what is queued, then stops
  PgWriter(const PgWriter&) = delete;
  PgWriter& operator=(const PgWriter&) = delete;

  // Queues an append; its callback runs on a writer thread once the outcome is known.
  void submit(PendingAppend append);

 private:
  void run(std::size_t index);
  std::vector<PendingAppend> take_group(std::unique_lock<std::mutex>& lock);

  StoreShared& shared_;
  std::function<void(bool)> committed_;
  std::mutex mutex_;
  std::condition_variable queued_;
  std::deque<PendingAppend> queue_;
  bool stopping_ = false;
  std::vector<std::thread> threads_;
};

}  // namespace evs::pg
