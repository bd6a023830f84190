#include "pg_writer.hpp"

#include "pg_group_commit.hpp"
#include "pg_schema.hpp"

#include <algorithm>
#include <chrono>

namespace evs::pg {
namespace {

using SteadyClock = std::chrono::steady_clock;

// Retries of a group that lost a race (a deadlock, an id inserted by another process, a schema record made
// meanwhile) before its appends fail with the last error.
constexpr int max_race_retries = 16;

Error unknown_outcome(const Error& cause, std::chrono::milliseconds waited) {
  return {errc::unavailable, cause.message + "; gave up reconnecting after " + std::to_string(waited.count()) +
                                 " ms (PgOptions::reconnect_timeout). The outcome of this append is unknown: it may "
                                 "or may not be stored. Appending it again with the same event ids is safe"};
}

}  // namespace

PgWriter::PgWriter(StoreShared& shared, std::function<void(bool)> committed)
    : shared_(shared), committed_(std::move(committed)) {
  const std::size_t n = std::max<std::size_t>(shared_.options.writers, 1);
  for (std::size_t i = 0; i < n; ++i) threads_.emplace_back([this, i] { run(i); });
}

PgWriter::~PgWriter() {
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
  }
  queued_.notify_all();
  for (std::thread& t : threads_) t.join();
}

void PgWriter::submit(PendingAppend append) {
  {
    std::lock_guard lock(mutex_);
    queue_.push_back(std::move(append));
  }
  queued_.notify_one();
}

std::vector<PendingAppend> PgWriter::take_group(std::unique_lock<std::mutex>& lock) {
  queued_.wait(lock, [&] { return stopping_ || !queue_.empty(); });
  std::vector<PendingAppend> group;
  std::size_t bytes = 0, events = 0;
  while (!queue_.empty() && group.size() < shared_.options.max_group) {
    const PendingAppend& next = queue_.front();
    if (!group.empty() && (bytes + next.bytes > shared_.options.max_group_bytes ||
                           events + next.events.size() > max_events_per_transaction))
      break;
    bytes += next.bytes;
    events += next.events.size();
    group.push_back(std::move(queue_.front()));
    queue_.pop_front();
  }
  if (!queue_.empty()) queued_.notify_one();  // another writer can start on the rest
  return group;
}

void PgWriter::run(std::size_t) {
  std::optional<PgConnection> connection;
  const auto connect = [&]() -> Result<void> {
    PgConnectOptions writer = shared_.connect;
    writer.index_plans = true;
    auto c = PgConnection::connect(shared_.options.url, writer);
    if (!c) return c.error();
    connection.emplace(std::move(*c));
    return {};
  };
  // Connected before the first append arrives, so that it does not wait for it; a failure here is retried
  // when a group needs the connection.
  (void)connect();
  for (;;) {
    std::vector<PendingAppend> group;
    {
      std::unique_lock lock(mutex_);
      group = take_group(lock);
      if (group.empty()) return;  // stopping, and nothing is left
    }

    GroupOutcome outcome;
    int races = 0;
    std::optional<SteadyClock::time_point> lost_since;
    auto backoff = std::chrono::milliseconds(10);
    for (;;) {
      if (!connection || connection->broken()) {
        Result<void> ready = connection ? connection->reconnect("append to") : connect();
        if (!ready) {
          outcome.kind = GroupOutcome::Kind::failed;
          outcome.error = ready.error();
        }
      }
      if (connection && !connection->broken()) outcome = commit_group(shared_, *connection, group);
      if (outcome.kind == GroupOutcome::Kind::committed) break;
      if (outcome.kind == GroupOutcome::Kind::retry && ++races <= max_race_retries) continue;
      if (!outcome.error.is(errc::unavailable)) break;
      // The server went away: reconnect and run the same group again until reconnect_timeout.
      const auto now = SteadyClock::now();
      if (!lost_since) lost_since = now;
      const auto waited = std::chrono::duration_cast<std::chrono::milliseconds>(now - *lost_since);
      if (waited >= shared_.options.reconnect_timeout) {
        outcome.error = unknown_outcome(outcome.error, waited);
        break;
      }
      std::this_thread::sleep_for(backoff);
      backoff = std::min(backoff * 2, std::chrono::milliseconds(1000));
    }

    const bool committed = outcome.kind == GroupOutcome::Kind::committed;
    if (committed) {
      for (const std::string& w : outcome.warnings) report_schema_warning(shared_.options.schema_warning, w);
      if (outcome.stored) committed_(outcome.notified);
    }
    shared_.observers.report([&](detail::AppendObservers::Group& observed) {
      for (std::size_t i = 0; i < group.size(); ++i)
        observed.add(group[i].started, committed ? detail::AppendObservers::stored(outcome.results[i]) : 0,
                     !committed || !outcome.results[i]);
    });
    for (std::size_t i = 0; i < group.size(); ++i)
      group[i].done(committed ? std::move(outcome.results[i]) : Result<AppendResult>(outcome.error));
  }
}

}  // namespace evs::pg
