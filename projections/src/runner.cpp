#include "runner.hpp"

#include "exception_text.hpp"

#include "evs/core/fingerprint.hpp"

#include <boost/asio/bind_executor.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/experimental/as_tuple.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <algorithm>
#include <limits>
#include <random>

namespace evs::detail {

namespace asio = boost::asio;

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

std::string describe(std::exception_ptr e) { return exception_text(e); }

// The partition of a stream: a stable hash (FNV-1a, the same on every platform and build), because
// per-partition checkpoints are stored and must route each stream to the same partition after a restart.
std::size_t partition_of(std::string_view stream_id, std::size_t partitions) {
  return partitions == 1 ? 0 : static_cast<std::size_t>(fnv(14695981039346656037ULL, stream_id) % partitions);
}

}  // namespace

Runner::Runner(Projection& p, ProjectionOptions o, EventStore& s, const EngineOptions& eo, asio::io_context& ctx)
    : projection(p), name(p.name()), options(std::move(o)), store(s), engine_options(eo), io(ctx),
      strand(asio::make_strand(ctx)), waiter_strand(asio::make_strand(ctx)), wake(strand) {
  filter.event_types = p.event_types();
  options.partitions = std::max<std::size_t>(options.partitions, 1);
  options.batch_size = std::max<std::size_t>(options.batch_size, 1);
  options.retry.max_attempts = std::max(options.retry.max_attempts, 1);
}

void Runner::open(std::uint64_t memory_resume) {
  lanes.clear();
  const auto busy = std::chrono::milliseconds(10000);
  for (std::size_t i = 0; i < options.partitions; ++i) {
    auto lane = std::make_unique<Lane>(projection, options, i, io);
    if (projection.kind() == ProjectionKind::memory) lane->checkpoint = memory_resume;  // its state is still there
    if (!options.database.empty())
      lane->db = open_projection_db(options.database, busy, options.node.empty() ? std::chrono::milliseconds{} : options.lease);
    if (projection.kind() == ProjectionKind::sql) lane->session = &lane->db->session();
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
      first.db->begin_setup();
      try {
        projection.setup(*first.session);
      } catch (...) {
        first.db->rollback();
        throw Exception(errc::handler_failed,
                        "setup of projection " + name + " failed: " + describe(std::current_exception()));
      }
      first.db->commit();
    }
  }
  MutexLock lock(mutex);
  state = ProjectionState::starting;
  position = min_checkpoint();
  dead_letters = parked;
  processed = 0;
  last_error.clear();
  last_progress = SteadyClock::now();
}

void Runner::spawn() {
  {
    MutexLock lock(mutex);
    accepting_waiters = true;
  }
  auto self = shared_from_this();
  asio::co_spawn(strand, [self] { return self->run(); }, [self](std::exception_ptr ex) {
    if (ex) {
      self->set_state(ProjectionState::failed, describe(ex));
      self->fail_waiters(Error{errc::handler_failed, "projection " + self->name + " failed: " + describe(ex)});
    } else if (self->stop_requested) {
      self->set_state(ProjectionState::stopped);
    }
    self->finished.set_value();
  });
}

void Runner::request_stop() {
  stop_requested = true;
  {
    MutexLock lock(mutex);
    accepting_waiters = false;
  }
  asio::post(strand, [self = shared_from_this()] { self->poke(); });
}

void Runner::abandon() {
  MutexLock lock(mutex);
  gave_up = true;
  state = ProjectionState::stopped;
}

bool Runner::abandon_if_idle() {
  MutexLock lock(mutex);
  if (loop_started) return false;
  gave_up = true;
  state = ProjectionState::stopped;
  return true;
}

bool Runner::abandoned() const {
  MutexLock lock(mutex);
  return gave_up;
}

// The least checkpoint of the lanes this node works (all of them without claims; the first lane's when it
// holds none).
std::uint64_t Runner::min_checkpoint() const {
  std::optional<std::uint64_t> m;
  for (const auto& lane : lanes)
    if (lane->owned()) m = std::min(m.value_or(lane->checkpoint), lane->checkpoint);
  return m.value_or(lanes.front()->checkpoint);
}

void Runner::set_state(ProjectionState s, std::string error) {
  MutexLock lock(mutex);
  state = s;
  if (!error.empty()) {
    last_error = std::move(error);
    ++errors;
  }
}

void Runner::record_error(std::string error) {
  MutexLock lock(mutex);
  last_error = std::move(error);
  ++errors;
}

ProjectionState Runner::state_now() const {
  MutexLock lock(mutex);
  return state;
}

std::uint64_t Runner::position_now() const {
  MutexLock lock(mutex);
  return position;
}

std::string Runner::error_now() const {
  MutexLock lock(mutex);
  return last_error;
}

void Runner::poke() {
  wake_pending = true;
  wake.cancel();
}

void Runner::advance(std::uint64_t p, std::uint64_t handled) {
  std::vector<std::function<void(Result<void>)>> ready;
  {
    MutexLock lock(mutex);
    if (p > position || handled > 0) last_progress = SteadyClock::now();
    position = std::max(position, p);
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

void Runner::fail_waiters(const Error& error) {
  std::list<Waiter> all;
  {
    MutexLock lock(mutex);
    all.swap(waiters);
  }
  for (auto& w : all) {
    if (w.timer) asio::post(waiter_strand, [t = w.timer] { t->cancel(); });
    w.done(error);
  }
}

// The next batch, read on any thread of the io_context while the runner processes the current one, into
// a buffer the runner hands over (the buffers of a processed batch: see read_all_into). The outcome is
// handed back on the runner's strand. The read touches only the store and what it copied; the runner
// awaits take() before it finishes, and an abandoned runner's read does not touch the store.
struct Runner::ReadAhead {
  const std::uint64_t from;
  ReadAllBatch batch;
  std::optional<Result<void>> result;  // strand only
  asio::steady_timer ready;            // cancelled once `result` is set

  ReadAhead(std::uint64_t f, ReadAllBatch buffer, const Strand& strand)
      : from(f), batch(std::move(buffer)), ready(strand, asio::steady_timer::time_point::max()) {}

  static std::shared_ptr<ReadAhead> start(Runner& r, std::uint64_t from, ReadAllBatch buffer) {
    auto a = std::make_shared<ReadAhead>(from, std::move(buffer), r.strand);
    asio::post(r.io, [a, self = r.shared_from_this()] {
      Result<void> read = self->abandoned()
                              ? Result<void>(Error{errc::shutting_down, "the projection engine stopped"})
                              : self->store.read_all_into(a->batch, a->from, self->options.batch_size, self->filter);
      asio::post(self->strand, [a, read = std::move(read)]() mutable {
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
asio::awaitable<void> Runner::run() {
  {
    MutexLock lock(mutex);
    if (gave_up) co_return;  // the engine let go before the io_context ran this loop
    loop_started = true;
  }
  std::shared_ptr<ReadAhead> ahead;
  ReadAllBatch spare;  // a processed batch: the next read reuses its buffers
  std::uint64_t token = value_or(store.change_token(), std::uint64_t{0});
  auto poll = engine_options.poll_min;
  while (!stop_requested) {
    if (!refresh_claims() || !redeliver_dead_letters()) {
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
      if (stop_requested) break;  // resumed after a stop: start no new batch (the engine may be gone)
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
      if (batch.next_position > from) {  // skipped events of unhandled types: store that progress too
        const std::uint64_t skipped_to = std::min(batch.next_position - 1, options.until_position);
        unsaved_skip = std::max(unsaved_skip, skipped_to);
        save_skipped(false);
        advance(skipped_to, 0);
      }
      set_state(ProjectionState::live);
      // Wait for a commit signal, or poll the change token at a growing interval.
      for (;;) {
        if (stop_requested) break;
        if (wake_pending) {
          wake_pending = false;
          poll = engine_options.poll_min;
          break;
        }
        const auto due = claims_due();
        if (SteadyClock::now() >= due) break;  // a claim to renew, or a partition to try again
        wake.expires_after(due == SteadyClock::time_point::max()
                               ? poll
                               : std::min<SteadyClock::duration>(poll, due - SteadyClock::now()));
        auto [ec] = co_await wake.async_wait(use_tuple);
        if (ec || stop_requested) continue;  // cancelled (poked: wake_pending set), or stopping
        save_skipped(false);  // idle: store skipped progress that was held back
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
  if (!abandoned()) {
    save_skipped(true);
    for (auto& lane : lanes) lane->release_claim();  // a graceful stop: the next node takes over at once
    if (lanes.front()->claims()) try {
        lanes.front()->db->leave(name, options.node);  // the others' fair share grows at their next census
      } catch (...) {  // the presence runs out by itself
      }
  }
  co_return;
}

bool Runner::save_skipped(bool due) {
  if (unsaved_skip == 0) return true;
  if (!lanes.front()->stores_checkpoint()) {
    unsaved_skip = 0;
    return true;
  }
  const auto now = SteadyClock::now();
  if (!due && last_skip_save && now - *last_skip_save < engine_options.idle_checkpoint_interval) return true;
  try {
    for (auto& lane : lanes) {
      if (lane->checkpoint >= unsaved_skip || !lane->owned()) continue;
      lane->open_batch();  // SQL: loads the stored checkpoint (a rebuild may have moved it on)
      lane->close_batch(unsaved_skip);
    }
  } catch (...) {
    for (auto& lane : lanes) lane->abort_batch();
    record_error(describe(std::current_exception()));
    return false;
  }
  unsaved_skip = 0;
  last_skip_save = now;
  return true;
}

// Re-delivers the dead letters an operator asked to retry (status 'retry'; one attempt each: success
// settles them as 'retried', failure parks them again). An effect whose event id is in the inbox already
// happened (an earlier re-delivery whose settling was lost, for one): it is settled without running the
// handler again. Runs between batches, when no lane is busy (a read-ahead of the store may be running).
// False on a storage error (recorded as the last error).
bool Runner::redeliver_dead_letters() {
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
      if (!owner.owned()) continue;  // another node holds that partition: it re-delivers
      std::optional<std::string> error;
      if (!owner.already_done(e)) {
        owner.open_batch();
        error = owner.attempt(e);
        if (error) owner.abort_batch();
      }
      owner.db->settle_retry(id, error);         // SQL: with the handler's changes, in the batch's transaction
      if (owner.db->in_transaction()) owner.db->commit();
      const std::uint64_t parked = owner.db->dead_letter_count(name);
      MutexLock lock(mutex);
      dead_letters = parked;
      if (error) last_error = "retried dead letter " + std::to_string(id) + " failed again: " + *error;
    }
    return true;
  } catch (...) {
    for (auto& lane : lanes) lane->abort_batch();
    record_error(describe(std::current_exception()));
    return false;
  }
}

// Processes one batch across the lanes; advances the position when every lane is done.
asio::awaitable<LaneOutcome> Runner::process(const ReadAllBatch& batch) {
  const std::uint64_t end = batch.next_position - 1;
  std::vector<std::vector<const RecordedEvent*>> shares(lanes.size());
  for (const RecordedEvent& e : batch.events) shares[partition_of(e.stream_id, lanes.size())].push_back(&e);

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
asio::awaitable<LaneOutcome> Runner::process_lane(Lane& lane, const std::vector<const RecordedEvent*>& events,
                                                  std::uint64_t end, std::uint64_t& handled) {
  if (abandoned()) co_return LaneOutcome::stopped;  // queued before the engine let go: touch nothing
  if (!lane.owned()) co_return LaneOutcome::done;   // another node works this partition
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
      if (lane.already_done(*e)) continue;
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
        MutexLock lock(mutex);
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

}  // namespace evs::detail
