// The projection engine. Layout:
//   - Lane: one partition of one projection: its database connection, checkpoint and batch processing
//   - Runner: one projection: the read loop (catch-up, live wait, polling), partitions, health, waiters
//   - ProjectionEngine::Impl: the io_context, the commit listener, start/stop
//
// Threading: every Runner's loop is a coroutine on its own strand; the lanes of a partitioned projection
// run on strands of their own, in parallel. While catching up, a Runner reads its next batch as it
// processes the current one (in parallel when the io_context has a second thread). SQLite calls block the
// io thread they run on (they are short).
#include "evs/projections/engine.hpp"

#include "projection_store.hpp"
#include "exception_text.hpp"

#include "evs/core/fingerprint.hpp"

#include <boost/asio/bind_executor.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/experimental/as_tuple.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <atomic>
#include <condition_variable>
#include <deque>
#include <future>
#include <list>
#include <map>
#include <mutex>
#include <random>
#include <thread>

namespace evs {

namespace asio = boost::asio;
using Strand = asio::strand<asio::io_context::executor_type>;
using SteadyClock = std::chrono::steady_clock;

std::string_view to_string(ProjectionState state) {
  switch (state) {
    case ProjectionState::starting: return "starting";
    case ProjectionState::catching_up: return "catching_up";
    case ProjectionState::live: return "live";
    case ProjectionState::stalled: return "stalled";
    case ProjectionState::stopped: return "stopped";
    case ProjectionState::failed: return "failed";
  }
  return "?";
}

namespace {

constexpr auto use_tuple = asio::experimental::as_tuple(asio::use_awaitable);

// Waits `d` on `executor`, in slices, returning early (false) once `stop` is set.
asio::awaitable<bool> sleep_unless_stopped(std::chrono::milliseconds d, const std::atomic<bool>& stop) {
  asio::steady_timer timer(co_await asio::this_coro::executor);
  const auto until = SteadyClock::now() + d;
  while (!stop.load()) {
    const auto left = until - SteadyClock::now();
    if (left <= SteadyClock::duration::zero()) co_return true;
    timer.expires_after(std::min<SteadyClock::duration>(left, std::chrono::milliseconds(50)));
    co_await timer.async_wait(use_tuple);
  }
  co_return false;
}

std::chrono::milliseconds backoff_before(int attempt, const RetryPolicy& p) {
  // attempt >= 2: initial * multiplier^(attempt-2), capped, then +/- jitter.
  double ms = static_cast<double>(p.initial_backoff.count());
  for (int i = 2; i < attempt; ++i) ms *= p.multiplier;
  ms = std::min(ms, static_cast<double>(p.max_backoff.count()));
  thread_local std::mt19937 rng{std::random_device{}()};
  const double j = std::uniform_real_distribution<double>(-p.jitter, p.jitter)(rng);
  return std::chrono::milliseconds(static_cast<std::int64_t>(std::max(0.0, ms * (1.0 + j))));
}

template <class T>
T value_or(const Result<T>& r, T fallback) {
  return r ? *r : fallback;
}

std::string describe(std::exception_ptr e) { return detail::exception_text(e); }

// The partition of a stream: a stable hash (FNV-1a, the same on every platform and build), because
// per-partition checkpoints are stored and must route each stream to the same partition after a restart.
std::size_t partition_of(std::string_view stream_id, std::size_t partitions) {
  return partitions == 1 ? 0 : static_cast<std::size_t>(detail::fnv(14695981039346656037ULL, stream_id) % partitions);
}

// How a lane's batch ended, in increasing order of severity (a batch ends with its lanes' worst).
enum class LaneOutcome { done, retry, stopped, failed };

}  // namespace

// ---- Lane -----------------------------------------------------------------------------------------------

// One partition of one projection. Processes its share of a batch: handles each event (with retries),
// parks or stops on exhausted retries, and commits its checkpoint (with the read model's changes for SQL).
struct Lane {
  Projection& projection;
  const std::string name;
  const ProjectionOptions& options;
  const std::size_t index;
  std::optional<detail::ProjectionDb> db;   // sql and effect; memory when options.database is set
  std::optional<SqlSession> session;        // sql
  std::uint64_t checkpoint = 0;             // everything at or before it is processed (committed)
  std::uint64_t parked_in_memory = 0;       // memory projections without a database
  Strand strand;

  Lane(Projection& p, const ProjectionOptions& o, std::size_t i, asio::io_context& io)
      : projection(p), name(p.name()), options(o), index(i), strand(asio::make_strand(io)) {}

  ProjectionKind kind() const { return projection.kind(); }

  // Handles one event; returns the error text on failure. `guarded` (SQL): the handler runs inside a
  // savepoint, so a failure undoes its writes alone; unguarded, a failure leaves them in the open
  // transaction and the caller must abort the batch.
  std::optional<std::string> attempt(const RecordedEvent& e, bool guarded = true) {
    guarded = guarded && kind() == ProjectionKind::sql;
    if (guarded) db->savepoint();
    try {
      projection.handle(e, session ? &*session : nullptr);
    } catch (...) {
      if (guarded) db->rollback_to_savepoint();
      return describe(std::current_exception());
    }
    if (guarded) db->release();
    if (kind() == ProjectionKind::sql) db->check_transaction();  // still inside the batch's transaction
    if (kind() == ProjectionKind::effect) {
      // The effect happened: record it in the inbox and move the checkpoint past it, together.
      db->begin();
      db->inbox_add(name, e.event_id);
      db->save_checkpoint(name, index, options.partitions, std::max(checkpoint, e.position));
      db->commit();
      checkpoint = std::max(checkpoint, e.position);
    }
    return std::nullopt;
  }

  void open_batch() {
    if (kind() != ProjectionKind::sql) return;
    db->begin();
    // The stored checkpoint is the truth: a rebuild may have swapped in a newer read model meanwhile.
    if (auto stored = db->load_checkpoint(name, index)) checkpoint = stored->position;
  }
  // Commits everything up to `position` (SQL: the read model's changes and the checkpoint together).
  void close_batch(std::uint64_t position) {
    if (position <= checkpoint && kind() != ProjectionKind::sql) return;
    if (db && kind() != ProjectionKind::memory) {
      const bool own = !db->in_transaction();
      if (own) db->begin();
      db->save_checkpoint(name, index, options.partitions, std::max(position, checkpoint));
      db->commit();
    }
    checkpoint = std::max(position, checkpoint);
  }
  void abort_batch() noexcept {
    if (db) db->rollback();
  }

  void park(const RecordedEvent& e, const std::string& error, int attempts) {
    if (db) {
      db->begin();
      db->park(name, e, error, attempts);
      if (kind() != ProjectionKind::memory) db->save_checkpoint(name, index, options.partitions, e.position);
      db->commit();
    } else {
      ++parked_in_memory;
    }
    checkpoint = e.position;
  }
};

// ---- Runner ---------------------------------------------------------------------------------------------

struct Waiter {
  std::uint64_t position;
  std::function<void(Result<void>)> done;
  std::shared_ptr<asio::steady_timer> timer;
};

struct Runner {
  Projection& projection;
  const std::string name;
  ProjectionOptions options;
  ReadAllFilter filter;
  EventStore& store;
  const EngineOptions& engine_options;
  asio::io_context& io;
  Strand strand;
  Strand waiter_strand;  // waiters' deadline timers: never delayed by a batch in progress on `strand`
  asio::steady_timer wake;
  bool wake_pending = false;  // a commit arrived while not waiting (strand only)
  std::vector<std::unique_ptr<Lane>> lanes;
  std::atomic<bool> stop_requested{false};
  std::promise<void> finished;
  std::uint64_t memory_resume = 0;  // memory views: where a restart of the same engine continues

  // Shared state, guarded by `mutex`.
  mutable std::mutex mutex;
  ProjectionState state = ProjectionState::starting;
  std::uint64_t position = 0;
  std::uint64_t head = 0;
  std::uint64_t processed = 0;
  std::uint64_t dead_letters = 0;
  std::string last_error;
  SteadyClock::time_point last_progress = SteadyClock::now();
  std::deque<std::pair<SteadyClock::time_point, std::uint64_t>> rate_samples;
  std::list<Waiter> waiters;

  Runner(Projection& p, ProjectionOptions o, EventStore& s, const EngineOptions& eo, asio::io_context& ctx)
      : projection(p), name(p.name()), options(std::move(o)), store(s), engine_options(eo), io(ctx),
        strand(asio::make_strand(ctx)), waiter_strand(asio::make_strand(ctx)), wake(strand) {
    filter.event_types = p.event_types();
    options.partitions = std::max<std::size_t>(options.partitions, 1);
    options.batch_size = std::max<std::size_t>(options.batch_size, 1);
    options.retry.max_attempts = std::max(options.retry.max_attempts, 1);
  }

  // Opens the lanes' databases, runs setup, loads checkpoints. Throws evs::Exception.
  void open() {
    lanes.clear();
    const auto busy = std::chrono::milliseconds(10000);
    for (std::size_t i = 0; i < options.partitions; ++i) {
      auto lane = std::make_unique<Lane>(projection, options, i, io);
      if (projection.kind() == ProjectionKind::memory) lane->checkpoint = memory_resume;  // its state is still there
      if (!options.database.empty()) lane->db.emplace(detail::ProjectionDb::open(options.database, busy));
      if (projection.kind() == ProjectionKind::sql) lane->session.emplace(lane->db->connection());
      lanes.push_back(std::move(lane));
    }
    Lane& first = *lanes.front();
    std::uint64_t parked = 0;
    if (first.db) {
      if (projection.kind() != ProjectionKind::memory) {
        if (auto stored = first.db->stored_partitions(name); stored && *stored != options.partitions)
          throw Exception(errc::invalid_argument,
                          "projection " + name + " was checkpointed with " + std::to_string(*stored) +
                              " partitions and is now configured with " + std::to_string(options.partitions) +
                              "; rebuild it to change the partition count");
        for (auto& lane : lanes)
          if (auto c = lane->db->load_checkpoint(name, lane->index)) lane->checkpoint = c->position;
      }
      parked = first.db->dead_letter_count(name);
      if (projection.kind() == ProjectionKind::sql) {
        first.db->begin();
        try {
          projection.setup(*first.session);
        } catch (...) {
          first.db->rollback();
          throw Exception(errc::handler_failed, "setup of projection " + name + " failed: " +
                                                    describe(std::current_exception()));
        }
        first.db->commit();
      }
    }
    std::lock_guard lock(mutex);
    state = ProjectionState::starting;
    position = min_checkpoint();
    dead_letters = parked;
    processed = 0;
    last_error.clear();
    last_progress = SteadyClock::now();
    stop_requested = false;
    finished = {};
  }

  std::uint64_t min_checkpoint() const {
    std::uint64_t m = lanes.front()->checkpoint;
    for (const auto& lane : lanes) m = std::min(m, lane->checkpoint);
    return m;
  }

  void set_state(ProjectionState s, std::string error = {}) {
    std::lock_guard lock(mutex);
    state = s;
    if (!error.empty()) last_error = std::move(error);
  }

  // Called on the strand when the store reports a commit (or stop() asks to wake up).
  void poke() {
    wake_pending = true;
    wake.cancel();
  }

  // Records progress to `p` and completes the waiters it satisfies.
  void advance(std::uint64_t p, std::uint64_t handled) {
    std::vector<std::function<void(Result<void>)>> ready;
    {
      std::lock_guard lock(mutex);
      if (p > position || handled > 0) last_progress = SteadyClock::now();
      position = std::max(position, p);
      head = std::max(head, position);
      processed += handled;
      const auto now = SteadyClock::now();
      rate_samples.emplace_back(now, processed);
      while (rate_samples.size() > 2 && now - rate_samples.front().first > std::chrono::seconds(5))
        rate_samples.pop_front();
      for (auto it = waiters.begin(); it != waiters.end();) {
        if (it->position <= position) {
          if (it->timer) asio::post(waiter_strand, [t = it->timer] { t->cancel(); });
          ready.push_back(std::move(it->done));
          it = waiters.erase(it);
        } else {
          ++it;
        }
      }
    }
    for (auto& done : ready) done(Result<void>{});
  }

  void fail_waiters(const Error& error) {
    std::list<Waiter> all;
    {
      std::lock_guard lock(mutex);
      all.swap(waiters);
    }
    for (auto& w : all) {
      if (w.timer) asio::post(waiter_strand, [t = w.timer] { t->cancel(); });
      w.done(error);
    }
  }

  // The next batch, read on any thread of the io_context while the runner processes the current one, into
  // a buffer the runner hands over (the buffers of a processed batch: see read_all_into). The outcome is
  // handed back on the runner's strand. The read touches only the store (which outlives the engine) and
  // what it copied; the runner awaits take() before it finishes.
  struct ReadAhead {
    const std::uint64_t from;
    ReadAllBatch batch;
    std::optional<Result<void>> result;  // strand only
    asio::steady_timer ready;            // cancelled once `result` is set

    ReadAhead(std::uint64_t f, ReadAllBatch buffer, const Strand& strand)
        : from(f), batch(std::move(buffer)), ready(strand, asio::steady_timer::time_point::max()) {}

    static std::shared_ptr<ReadAhead> start(Runner& r, std::uint64_t from, ReadAllBatch buffer) {
      auto a = std::make_shared<ReadAhead>(from, std::move(buffer), r.strand);
      asio::post(r.io, [a, store = &r.store, filter = r.filter, max = r.options.batch_size, strand = r.strand] {
        auto read = store->read_all_into(a->batch, a->from, max, filter);
        asio::post(strand, [a, read = std::move(read)]() mutable {
          a->result.emplace(std::move(read));
          a->ready.cancel();
        });
      });
      return a;
    }
    asio::awaitable<Result<void>> take() {
      while (!result) co_await ready.async_wait(use_tuple);
      co_return std::move(*result);
    }
  };

  // The read loop: catch up in batches, then wait for commits; until stop is requested.
  asio::awaitable<void> run() {
    std::shared_ptr<ReadAhead> ahead;
    ReadAllBatch spare;  // a processed batch: the next read reuses its buffers
    std::uint64_t token = value_or(store.change_token(), std::uint64_t{0});
    auto poll = engine_options.poll_min;
    while (!stop_requested) {
      if (!redeliver_dead_letters()) {
        co_await sleep_unless_stopped(engine_options.poll_max * 10, stop_requested);
        continue;
      }
      const std::uint64_t from = position_now() + 1;
      ReadAllBatch batch;
      std::optional<Result<void>> read;  // set once `batch` holds the batch starting at `from`
      if (ahead) {
        auto ahead_read = co_await ahead->take();
        if (ahead->from == from) {  // else the position moved back (a retry): read again
          batch = std::move(ahead->batch);
          read = std::move(ahead_read);
        }
        ahead.reset();
      }
      if (!read) {
        batch = std::move(spare);
        batch.next_position = from;
        if (from <= options.until_position) {
          read = store.read_all_into(batch, from, options.batch_size, filter);
        } else {
          batch.events.clear();
          read.emplace();
        }
      }
      if (*read && options.until_position != std::numeric_limits<std::uint64_t>::max()) {
        std::erase_if(batch.events, [&](const RecordedEvent& e) { return e.position > options.until_position; });
        batch.next_position = std::min(batch.next_position, options.until_position + 1);
      }
      if (!*read) {
        set_state(ProjectionState::stalled, read->error().what());
        co_await sleep_unless_stopped(engine_options.poll_max * 10, stop_requested);
        continue;
      }
      if (batch.events.empty()) {
        if (batch.next_position > from)  // skipped events of unhandled types
          advance(std::min(batch.next_position - 1, options.until_position), 0);
        set_state(ProjectionState::live);
        // Wait for a commit signal, or poll the change token at a growing interval.
        for (;;) {
          if (stop_requested) break;
          if (wake_pending) {
            wake_pending = false;
            poll = engine_options.poll_min;
            break;
          }
          wake.expires_after(poll);
          auto [ec] = co_await wake.async_wait(use_tuple);
          if (ec) continue;  // cancelled: poked (wake_pending set) or stopping
          const std::uint64_t now_token = value_or(store.change_token(), token + 1);
          if (now_token != token) {
            token = now_token;
            poll = engine_options.poll_min;
            break;
          }
          poll = std::min(poll * 2, engine_options.poll_max);
        }
        continue;
      }
      if (state_now() != ProjectionState::live || batch.events.size() >= options.batch_size)
        set_state(ProjectionState::catching_up);
      // Catching up (a full batch): read the next batch on another thread while this one is processed.
      if (batch.events.size() >= options.batch_size && batch.next_position <= options.until_position)
        ahead = ReadAhead::start(*this, batch.next_position, std::move(spare));
      const LaneOutcome outcome = co_await process(batch);
      if (outcome == LaneOutcome::done && batch.events.size() < options.batch_size) set_state(ProjectionState::live);
      // Keep a full batch's buffers for the next read; a short one means live: let it go.
      spare = batch.events.size() >= options.batch_size ? std::move(batch) : ReadAllBatch{};
      if (outcome == LaneOutcome::failed) {
        set_state(ProjectionState::failed);
        fail_waiters(Error{errc::handler_failed, "projection " + name + " failed: " + error_now()});
        break;
      }
      if (outcome == LaneOutcome::stopped) break;
      if (outcome == LaneOutcome::retry) {
        set_state(ProjectionState::stalled);
        co_await sleep_unless_stopped(engine_options.poll_max * 10, stop_requested);
      }
    }
    if (ahead) co_await ahead->take();  // its read uses the store: finish before the runner does
    co_return;
  }

  // Re-delivers the dead letters an operator marked 'retry' (one attempt each; success marks them
  // 'retried', failure parks them again). Runs between batches, when no lane is busy (a read-ahead of the
  // store may be running). False on a storage error (recorded as the last error).
  bool redeliver_dead_letters() {
    if (!lanes.front()->db) return true;  // dead letters are only kept in a database
    try {
      for (auto [id, at] : lanes.front()->db->retry_requests(name)) {
        auto found = store.read_all(at, 1);
        if (!found) throw Exception(found.error());
        Lane& lane = *lanes.front();
        if (found->events.empty() || found->events.front().position != at) {
          lane.db->settle_retry(id, "the event at position " + std::to_string(at) + " is not in the store");
          continue;
        }
        const RecordedEvent& e = found->events.front();
        Lane& owner = *lanes[partition_of(e.stream_id, lanes.size())];
        owner.open_batch();
        auto error = owner.attempt(e);
        if (error) owner.abort_batch();
        if (owner.kind() == ProjectionKind::sql && !error) {
          owner.db->settle_retry(id, std::nullopt);
          owner.db->commit();
        } else {
          owner.db->settle_retry(id, error);
        }
        std::lock_guard lock(mutex);
        dead_letters = owner.db->dead_letter_count(name);
        if (error) last_error = "retried dead letter " + std::to_string(id) + " failed again: " + *error;
      }
      return true;
    } catch (...) {
      for (auto& lane : lanes) lane->abort_batch();
      record_error(describe(std::current_exception()));
      return false;
    }
  }

  ProjectionState state_now() const {
    std::lock_guard lock(mutex);
    return state;
  }

  std::uint64_t position_now() const {
    std::lock_guard lock(mutex);
    return position;
  }
  std::string error_now() const {
    std::lock_guard lock(mutex);
    return last_error;
  }

  // Processes one batch across the lanes; advances the position when every lane is done.
  asio::awaitable<LaneOutcome> process(const ReadAllBatch& batch) {
    const std::uint64_t end = batch.next_position - 1;
    std::vector<std::vector<const RecordedEvent*>> shares(lanes.size());
    for (const RecordedEvent& e : batch.events)
      shares[partition_of(e.stream_id, lanes.size())].push_back(&e);

    std::vector<LaneOutcome> outcomes(lanes.size(), LaneOutcome::done);
    std::vector<std::uint64_t> handled(lanes.size(), 0);
    if (lanes.size() == 1) {
      outcomes[0] = co_await process_lane(*lanes[0], shares[0], end, handled[0]);
    } else {
      // Run the lanes in parallel on their strands; resume here (on our strand) when all are done.
      std::size_t remaining = lanes.size();
      asio::steady_timer all_done(strand, asio::steady_timer::time_point::max());
      for (std::size_t i = 0; i < lanes.size(); ++i) {
        asio::co_spawn(
            lanes[i]->strand,
            [this, i, &shares, end, &handled]() -> asio::awaitable<LaneOutcome> {
              // co_spawn starts inline on an idle strand: queue first, so the lanes really run in parallel.
              co_await asio::post(asio::use_awaitable);
              co_return co_await process_lane(*lanes[i], shares[i], end, handled[i]);
            },
            asio::bind_executor(strand, [&, i](std::exception_ptr ex, LaneOutcome o) {
              outcomes[i] = ex ? LaneOutcome::retry : o;
              if (--remaining == 0) all_done.cancel();
            }));
      }
      while (remaining > 0) co_await all_done.async_wait(use_tuple);
    }
    std::uint64_t total = 0;
    for (auto h : handled) total += h;
    LaneOutcome result = LaneOutcome::done;
    for (auto o : outcomes) result = std::max(result, o);
    // The projection's position: every lane finished the batch, or the slowest lane's checkpoint.
    advance(result == LaneOutcome::done ? end : min_checkpoint(), total);
    co_return result;
  }

  // Processes a lane's share of a batch ending at `end`. Storage errors propagate as exceptions and are
  // handled by the caller: nothing uncommitted counts, the batch is read again.
  //
  // SQL lanes run the batch optimistically first, without a savepoint per event (a quarter of a rebuild's
  // time): if every handler succeeds, the batch commits as is. If one fails, the whole transaction is
  // rolled back and the batch runs again with savepoints, that failure counting as the event's first
  // attempt; so the handlers before it run twice, and only the second run's writes are committed.
  asio::awaitable<LaneOutcome> process_lane(Lane& lane, const std::vector<const RecordedEvent*>& events,
                                            std::uint64_t end, std::uint64_t& handled) {
    std::optional<std::pair<std::uint64_t, std::string>> first_failure;  // (position, error)
    try {
      if (lane.kind() == ProjectionKind::sql) {
        lane.open_batch();
        std::uint64_t count = 0;
        for (const RecordedEvent* e : events) {
          if (e->position <= lane.checkpoint) continue;  // processed before a restart
          if (auto error = lane.attempt(*e, false)) {
            first_failure.emplace(e->position, std::move(*error));
            break;
          }
          ++count;
        }
        if (!first_failure) {
          lane.close_batch(end);
          handled += count;
          co_return LaneOutcome::done;
        }
        lane.abort_batch();
      }
      lane.open_batch();
      for (const RecordedEvent* e : events) {
        if (e->position <= lane.checkpoint) continue;  // processed before a restart
        if (lane.kind() == ProjectionKind::effect && lane.db->inbox_contains(name, e->event_id)) continue;
        // The event that failed in the optimistic run is not run again here: that was its first attempt.
        auto error = first_failure && first_failure->first == e->position ? std::move(first_failure->second)
                                                                           : lane.attempt(*e);
        if (!error) {
          ++handled;
          continue;
        }
        // Keep what succeeded so far, then retry this event alone with backoff.
        lane.close_batch(e->position - 1);
        int attempts = 1;
        while (error && attempts < options.retry.max_attempts) {
          record_error(*error);
          if (!co_await sleep_unless_stopped(backoff_before(attempts + 1, options.retry), stop_requested)) {
            co_return LaneOutcome::stopped;
          }
          ++attempts;
          lane.open_batch();
          error = lane.attempt(*e);
          if (error) lane.abort_batch();
          else lane.close_batch(e->position);
        }
        if (error) {
          const std::string message = "event " + e->type + " at " + e->stream_id + "@" + std::to_string(e->version) +
                                      " (position " + std::to_string(e->position) + ") failed " +
                                      std::to_string(attempts) + " time(s): " + *error;
          record_error(message);
          if (options.retry.on_exhausted == OnFailure::stop) co_return LaneOutcome::failed;
          lane.park(*e, *error, attempts);
          const std::uint64_t parked = lane.db ? lane.db->dead_letter_count(name) : 0;
          std::lock_guard lock(mutex);
          dead_letters = lane.db ? parked : dead_letters + 1;
        } else {
          ++handled;
        }
        lane.open_batch();
      }
      lane.close_batch(end);
    } catch (...) {
      // A storage failure: nothing uncommitted counts; the runner reads the batch again after a pause.
      lane.abort_batch();
      record_error(describe(std::current_exception()));
      co_return LaneOutcome::retry;
    }
    co_return LaneOutcome::done;
  }

  void record_error(std::string error) {
    std::lock_guard lock(mutex);
    last_error = std::move(error);
  }

  ProjectionHealth health() {
    ProjectionHealth h;
    h.name = name;
    h.kind = projection.kind();
    {
      std::lock_guard lock(mutex);
      h.state = state;
      h.position = position;
      h.processed = processed;
      h.dead_letters = dead_letters;
      h.last_error = last_error;
      if (rate_samples.size() >= 2) {
        const double dt = std::chrono::duration<double>(rate_samples.back().first - rate_samples.front().first).count();
        if (dt > 0) h.events_per_second = static_cast<double>(rate_samples.back().second - rate_samples.front().second) / dt;
      }
    }
    const auto since_progress = [&] {
      std::lock_guard lock(mutex);
      return SteadyClock::now() - last_progress;
    }();
    h.head = std::max(value_or(store.last_position(), h.position), h.position);
    // Lag counts only events the projection handles, up to the head.
    if (h.head > h.position) {
      auto next = store.read_all(h.position + 1, 1, filter);
      if (next && !next->events.empty()) {
        h.lag_events = h.head - h.position;
        h.lag_seconds = std::max(0.0, std::chrono::duration<double>(Clock::now() - next->events.front().recorded_at).count());
      }
    }
    if ((h.state == ProjectionState::catching_up || h.state == ProjectionState::live) && h.lag_events > 0 &&
        since_progress > engine_options.stall_after)
      h.state = ProjectionState::stalled;
    return h;
  }
};

// ---- ProjectionEngine -----------------------------------------------------------------------------------

struct ProjectionEngine::Impl {
  EventStore& store;
  EngineOptions options;
  std::unique_ptr<asio::io_context> owned_io;
  asio::io_context& io;
  std::vector<std::unique_ptr<Runner>> runners;
  std::vector<std::thread> threads;
  std::optional<asio::executor_work_guard<asio::io_context::executor_type>> work;
  std::optional<std::uint64_t> listener;
  bool running = false;
  std::mutex mutex;  // start/stop and runner registration

  Impl(EventStore& s, EngineOptions o, asio::io_context* external)
      : store(s), options(o), owned_io(external ? nullptr : std::make_unique<asio::io_context>()),
        io(external ? *external : *owned_io) {}

  Runner* find(std::string_view name) const {
    for (const auto& r : runners)
      if (r->name == name) return r.get();
    return nullptr;
  }
};

ProjectionEngine::ProjectionEngine(EventStore& store, EngineOptions options)
    : impl_(std::make_unique<Impl>(store, options, nullptr)) {}

ProjectionEngine::ProjectionEngine(EventStore& store, asio::io_context& io, EngineOptions options)
    : impl_(std::make_unique<Impl>(store, options, &io)) {}

ProjectionEngine::~ProjectionEngine() { stop(); }

void ProjectionEngine::add(Projection& projection, ProjectionOptions options) {
  std::lock_guard lock(impl_->mutex);
  const std::string name(projection.name());
  if (impl_->running) throw Exception(errc::invalid_argument, "add " + name + ": the engine is already running");
  if (name.empty()) throw Exception(errc::invalid_argument, "a projection needs a name");
  if (impl_->find(name)) throw Exception(errc::invalid_argument, "projection " + name + " is added twice");
  if (projection.kind() != ProjectionKind::memory && options.database.empty())
    throw Exception(errc::invalid_argument, "projection " + name +
                                                " needs ProjectionOptions::database (the SQLite file for its "
                                                "checkpoints, and its read model if it is a SQL projection)");
  if (projection.event_types().empty())
    throw Exception(errc::invalid_argument, "projection " + name + " handles no event types");
  impl_->runners.push_back(
      std::make_unique<Runner>(projection, std::move(options), impl_->store, impl_->options, impl_->io));
}

void ProjectionEngine::start() {
  std::lock_guard lock(impl_->mutex);
  if (impl_->running) return;
  for (auto& r : impl_->runners) r->open();
  impl_->listener = impl_->store.add_commit_listener([impl = impl_.get()](std::uint64_t) {
    for (auto& r : impl->runners) asio::post(r->strand, [runner = r.get()] { runner->poke(); });
  });
  for (auto& r : impl_->runners) {
    asio::co_spawn(r->strand, [runner = r.get()] { return runner->run(); },
                   [runner = r.get()](std::exception_ptr ex) {
                     if (ex) {
                       runner->set_state(ProjectionState::failed, describe(ex));
                       runner->fail_waiters(Error{errc::handler_failed, "projection " + runner->name +
                                                                             " failed: " + describe(ex)});
                     } else if (runner->stop_requested) {
                       runner->set_state(ProjectionState::stopped);
                     }
                     runner->finished.set_value();
                   });
  }
  if (impl_->owned_io) {
    impl_->owned_io->restart();
    impl_->work.emplace(impl_->io.get_executor());
    for (std::size_t i = 0; i < std::max<std::size_t>(impl_->options.threads, 1); ++i)
      impl_->threads.emplace_back([io = &impl_->io] { io->run(); });
  }
  impl_->running = true;
}

void ProjectionEngine::stop() {
  std::lock_guard lock(impl_->mutex);
  if (!impl_->running) return;
  if (impl_->listener) impl_->store.remove_commit_listener(*impl_->listener);
  impl_->listener.reset();
  std::vector<std::future<void>> finished;
  for (auto& r : impl_->runners) {
    r->stop_requested = true;
    finished.push_back(r->finished.get_future());
    asio::post(r->strand, [runner = r.get()] { runner->poke(); });
  }
  for (auto& f : finished) f.wait();
  for (auto& r : impl_->runners) {
    r->fail_waiters(Error{errc::shutting_down, "the projection engine stopped"});
    if (r->projection.kind() == ProjectionKind::memory) r->memory_resume = r->min_checkpoint();
    r->lanes.clear();  // closes the databases
  }
  if (impl_->owned_io) {
    impl_->work.reset();
    impl_->io.stop();
    for (auto& t : impl_->threads) t.join();
    impl_->threads.clear();
  }
  impl_->running = false;
}

std::optional<ProjectionHealth> ProjectionEngine::health(std::string_view name) const {
  Runner* r = impl_->find(name);
  if (!r) return std::nullopt;
  return r->health();
}

std::vector<ProjectionHealth> ProjectionEngine::health() const {
  std::vector<ProjectionHealth> out;
  for (const auto& r : impl_->runners) out.push_back(r->health());
  return out;
}

void ProjectionEngine::async_wait_for(std::string_view name, std::uint64_t position, std::chrono::milliseconds timeout,
                                      std::function<void(Result<void>)> done) {
  Runner* r = impl_->find(name);
  if (!r) {
    done(Error{errc::invalid_argument, "no projection named " + std::string(name)});
    return;
  }
  std::unique_lock lock(r->mutex);
  if (r->position >= position) {
    lock.unlock();
    done(Result<void>{});
    return;
  }
  if (!impl_->running || r->state == ProjectionState::failed || r->state == ProjectionState::stopped) {
    const bool failed = r->state == ProjectionState::failed;
    const std::string error = r->last_error;
    lock.unlock();
    done(failed ? Error{errc::handler_failed, "projection " + r->name + " failed: " + error}
                : Error{errc::shutting_down, "the projection engine is not running"});
    return;
  }
  auto timer = std::make_shared<asio::steady_timer>(r->waiter_strand, timeout);
  r->waiters.push_back(Waiter{position, std::move(done), timer});
  lock.unlock();
  // Timers are not thread-safe: every operation on this one runs on the waiters' strand.
  asio::post(r->waiter_strand, [r, timer, position] {
  timer->async_wait([r, timer, position](const boost::system::error_code& ec) {
    if (ec) return;  // satisfied (or failed) before the deadline
    std::function<void(Result<void>)> late;
    std::uint64_t at = 0;
    {
      std::lock_guard guard(r->mutex);
      for (auto w = r->waiters.begin(); w != r->waiters.end(); ++w)
        if (w->timer == timer) {
          late = std::move(w->done);
          r->waiters.erase(w);
          break;
        }
      at = r->position;
    }
    if (late)
      late(Error{errc::timed_out, "projection " + r->name + " is at position " + std::to_string(at) +
                                      ", not yet at " + std::to_string(position)});
  });
  });
}

Result<void> ProjectionEngine::wait_for(std::string_view name, std::uint64_t position,
                                        std::chrono::milliseconds timeout) {
  auto promise = std::make_shared<std::promise<Result<void>>>();
  auto future = promise->get_future();
  async_wait_for(name, position, timeout, [promise](Result<void> r) { promise->set_value(std::move(r)); });
  return future.get();
}

asio::io_context& ProjectionEngine::io_context() { return impl_->io; }

}  // namespace evs
