// copy_store: a whole store into an empty one, through the two stores' StoreTransfer.
#include "evs/eventstore/store_transfer.hpp"

#include <chrono>
#include <optional>
#include <string>
#include <thread>

namespace evs {
namespace {

std::string count(std::uint64_t n, std::string_view one, std::string_view many) {
  return std::to_string(n) + " " + std::string(n == 1 ? one : many);
}

std::string describe(const StoreContents& c) {
  return count(c.events, "event", "events") + ", " + count(c.streams, "stream", "streams") + ", " +
         count(c.snapshots, "snapshot", "snapshots") + ", " + count(c.schemas, "schema record", "schema records");
}

}  // namespace

Result<CopyStats> copy_store(EventStore& from, EventStore& to, const CopyOptions& options) {
  const std::size_t batch = options.batch_size == 0 ? 1 : options.batch_size;
  auto source = open_transfer(from);
  if (!source) return source.error();
  auto target = open_transfer(to);
  if (!target) return target.error();

  auto held = (*target)->contents();
  if (!held) return held.error();
  if (!held->empty())
    return Error{errc::invalid_argument,
                 "the target store is not empty (it holds " + describe(*held) + "): a copy goes only into an empty store"};
  auto total = (*source)->contents();
  if (!total) return total.error();

  CopyProgress progress;
  progress.total_events = total->events;
  progress.total_snapshots = total->snapshots;
  const auto report = [&](CopyProgress::Stage stage) {
    progress.stage = stage;
    if (options.progress) options.progress(progress);
  };
  CopyStats stats;
  // A failure after something was written: say how far the copy got.
  const auto stopped = [&](const Error& e) {
    std::string where = progress.events == 0 ? "before any event was copied"
                                             : "after " + count(progress.events, "event", "events") +
                                                   " (up to position " + std::to_string(progress.last_position) + ")";
    return Error{e.code, "the copy stopped " + where + ": " + e.message +
                             "; the target holds a partial copy: empty it before copying again"};
  };

  // 1. The schema records.
  report(CopyProgress::Stage::schemas);
  auto schemas = from.recorded_schemas();
  if (!schemas) return schemas.error();
  if (auto r = (*target)->import_schemas(*schemas); !r) return stopped(r.error());
  stats.schemas = schemas->size();

  // 2. The events, in log order, one transaction per batch.
  report(CopyProgress::Stage::events);
  ReadAllBatch page;
  std::optional<std::chrono::steady_clock::time_point> waiting_since;
  for (std::uint64_t next = 1;;) {
    if (auto r = from.read_all_into(page, next, batch); !r) return stopped(r.error());
    if (page.events.empty()) {
      // The readable end. Readers may lag commits (PostgreSQL's fence): wait for what the source held.
      if (progress.events >= total->events) break;
      const auto now = std::chrono::steady_clock::now();
      if (!waiting_since) waiting_since = now;
      if (now - *waiting_since > options.wait_for_readers)
        return stopped(Error{errc::timed_out,
                             "the source held " + count(total->events, "event", "events") + " when the copy started, "
                             "but only " + std::to_string(progress.events) + " are readable after waiting " +
                             std::to_string(options.wait_for_readers.count()) +
                             " ms: a transaction open somewhere holds the source's readers back (on PostgreSQL, "
                             "see pg_stat_activity for a session idle in transaction)"});
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
      continue;
    }
    waiting_since.reset();
    if (auto r = (*target)->import_events(page.events); !r) return stopped(r.error());
    progress.events += page.events.size();
    progress.last_position = page.events.back().position;
    report(CopyProgress::Stage::events);
    if (page.next_position == next) break;
    next = page.next_position;
  }
  stats.events = progress.events;
  stats.last_position = progress.last_position;

  // 3. The snapshots (after the events: a snapshot's stream must be there).
  report(CopyProgress::Stage::snapshots);
  for (std::string after;;) {
    auto snapshots = (*source)->read_snapshots(after, batch);
    if (!snapshots) return stopped(snapshots.error());
    if (snapshots->empty()) break;
    if (auto r = (*target)->import_snapshots(*snapshots); !r) return stopped(r.error());
    progress.snapshots += snapshots->size();
    report(CopyProgress::Stage::snapshots);
    if (snapshots->size() < batch) break;
    after = snapshots->back().stream_id;
  }
  stats.snapshots = progress.snapshots;

  if (auto r = (*target)->finish_import(); !r) return stopped(r.error());
  auto copied = (*target)->contents();
  if (!copied) return copied.error();
  stats.streams = copied->streams;
  report(CopyProgress::Stage::done);
  return stats;
}

}  // namespace evs
