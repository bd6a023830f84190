// Runner: what other threads ask of a projection: read-your-writes waits and health.
#include "runner.hpp"

#include "evs/projections/lag.hpp"

#include <boost/asio/post.hpp>

namespace evs::detail {

namespace asio = boost::asio;

void Runner::async_wait_for(std::uint64_t target, std::chrono::milliseconds timeout,
                            std::function<void(Result<void>)> done) {
  MutexLock lock(mutex);
  if (position >= target) {
    lock.unlock();
    done(Result<void>{});
    return;
  }
  if (!accepting_waiters || state == ProjectionState::failed || state == ProjectionState::stopped) {
    const bool failed = state == ProjectionState::failed;
    const std::string error = last_error;
    lock.unlock();
    done(failed ? Error{errc::handler_failed, "projection " + name + " failed: " + error}
                : Error{errc::shutting_down, "the projection engine is not running"});
    return;
  }
  auto timer = std::make_shared<asio::steady_timer>(waiter_strand, timeout);
  waiters.push_back(Waiter{target, std::move(done), timer});
  lock.unlock();
  // Timers are not thread-safe: every operation on this one runs on the waiters' strand. The deadline
  // handler holds the runner weakly: it may run after the engine is gone (a caller's io_context).
  asio::post(waiter_strand, [weak = weak_from_this(), timer, target] {
    timer->async_wait([weak, timer, target](const boost::system::error_code& ec) {
      if (ec) return;  // satisfied (or failed) before the deadline
      auto self = weak.lock();
      if (!self) return;
      std::function<void(Result<void>)> late;
      std::uint64_t at = 0;
      {
        MutexLock guard(self->mutex);
        for (auto w = self->waiters.begin(); w != self->waiters.end(); ++w)
          if (w->timer == timer) {
            late = std::move(w->done);
            self->waiters.erase(w);
            break;
          }
        at = self->position;
      }
      if (late)
        late(Error{errc::timed_out, "projection " + self->name + " is at position " + std::to_string(at) +
                                        ", not yet at " + std::to_string(target)});
    });
  });
}

ProjectionHealth Runner::health() {
  ProjectionHealth h;
  h.name = name;
  h.kind = projection.kind();
  h.run = engine_run;
  SteadyClock::duration since_progress{};
  {
    MutexLock lock(mutex);
    h.state = state;
    h.position = position;
    h.processed = processed;
    h.dead_letters = dead_letters;
    h.last_error = last_error;
    h.errors = errors;
    if (rate_samples.size() >= 2) {
      const double dt = std::chrono::duration<double>(rate_samples.back().first - rate_samples.front().first).count();
      if (dt > 0) h.events_per_second = static_cast<double>(rate_samples.back().second - rate_samples.front().second) / dt;
    }
    since_progress = SteadyClock::now() - last_progress;
    h.claims = census.claims;
    h.nodes = census.nodes;
  }
  h.node = options.node;
  h.partitions = lanes.size();
  for (const auto& lane : lanes) {
    h.partitions_held += lane->held ? 1 : 0;
    h.fenced += lane->fenced;
  }
  h.head = h.position;
  if (auto lag = projection_lag(store, h.position, filter)) {
    h.head = lag->head;
    h.lag_events = lag->lag_events;
    h.lag_seconds = lag->lag_seconds;
  }
  if ((h.state == ProjectionState::catching_up || h.state == ProjectionState::live) && h.lag_events > 0 &&
      since_progress > engine_options.stall_after)
    h.state = ProjectionState::stalled;
  return h;
}

}  // namespace evs::detail
