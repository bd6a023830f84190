// Internal: one projection's runner (see engine.cpp for the layout of the engine).
//
// Lifetime: a Runner is owned by shared_ptr: by the engine, and by every coroutine, posted handler and
// deadline timer of its own, so those can outlive the engine on a caller's io_context that runs them
// later (or destroys them). Once the engine has let go of a runner it could not wait for (`abandon()`),
// the runner's leftover work touches neither the projection nor the store again.
//
// Threading: the read loop runs on `strand`; the lanes of a partitioned batch run on their own strands;
// waiters' deadline timers on `waiter_strand`. The figures behind health and the waiters are guarded by
// `mutex`; everything else belongs to the strand of whoever runs at the time (one at a time).
#pragma once

#include "lane.hpp"
#include "thread_annotations.hpp"

#include "evs/projections/engine.hpp"

#include <boost/asio/awaitable.hpp>
#include <boost/asio/steady_timer.hpp>

#include <atomic>
#include <chrono>
#include <deque>
#include <functional>
#include <future>
#include <list>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace evs::detail {

using SteadyClock = std::chrono::steady_clock;

// How a lane's batch ended, in increasing order of severity (a batch ends with its lanes' worst).
enum class LaneOutcome { done, retry, stopped, failed };

struct Waiter {
  std::uint64_t position;
  std::function<void(Result<void>)> done;
  std::shared_ptr<boost::asio::steady_timer> timer;
};

// Claims: how many of `partitions` partitions `node` may hold, given the live nodes and claims of a census.
// Each live node gets the floor of partitions / nodes; the remainder goes to nodes already above the floor
// first, then to whoever claims first. Stable once reached: with 4 partitions on 3 nodes, 2 + 1 + 1.
std::size_t fair_share(const ClaimCensus& census, const std::string& node, std::size_t partitions);

struct Runner : std::enable_shared_from_this<Runner> {
  Projection& projection;
  const std::string name;
  ProjectionOptions options;
  ReadAllFilter filter;
  EventStore& store;
  const EngineOptions engine_options;
  boost::asio::io_context& io;
  Strand strand;
  Strand waiter_strand;  // waiters' deadline timers: never delayed by a batch in progress on `strand`
  boost::asio::steady_timer wake;
  bool wake_pending = false;  // a commit arrived while not waiting (strand only)
  std::vector<std::unique_ptr<Lane>> lanes;
  std::atomic<bool> stop_requested{false};
  std::promise<void> finished;  // set when the read loop has ended
  // Progress past events the projection does not handle, not yet stored (strand only).
  std::uint64_t unsaved_skip = 0;
  std::optional<SteadyClock::time_point> last_skip_save;

  std::uint64_t engine_run = 0;  // the engine's start() that made this runner (ProjectionHealth::run); set before spawn()

  Runner(Projection& p, ProjectionOptions o, EventStore& s, const EngineOptions& eo, boost::asio::io_context& ctx);

  // Opens the lanes' databases, runs setup, loads checkpoints. `memory_resume`: where a memory view
  // continues (its state is still in the object). Throws evs::Exception.
  void open(std::uint64_t memory_resume);
  // Spawns the read loop on `strand`.
  void spawn();
  // Asks the loop to stop (it finishes the batch in hand) and wakes it; new waiters get shutting_down.
  void request_stop();
  // The engine lets go of the loop without waiting for it (nothing may run it: see ProjectionEngine::stop):
  // from then on its leftover steps end at once, touching neither the projection nor the store. The state
  // becomes stopped. abandon_if_idle() does so only if the loop has not run a step yet (then nothing of it
  // can be running), and says whether it did.
  void abandon();
  bool abandon_if_idle();
  bool abandoned() const;

  std::uint64_t min_checkpoint() const;
  void set_state(ProjectionState s, std::string error = {});
  void record_error(std::string error);
  ProjectionState state_now() const;
  std::uint64_t position_now() const;
  std::string error_now() const;

  // Called on the strand when the store reports a commit (or stop asks to wake up).
  void poke();

  // Completes every waiter with `error`.
  void fail_waiters(const Error& error);
  // Read-your-writes (see ProjectionEngine::async_wait_for).
  void async_wait_for(std::uint64_t position, std::chrono::milliseconds timeout, std::function<void(Result<void>)> done);
  ProjectionHealth health();

 private:
  struct ReadAhead;
  boost::asio::awaitable<void> run();
  bool redeliver_dead_letters();
  // Claims, when one is due: records this node's presence and reads the others' (ProjectionDb::census),
  // renews the lanes held, gives up those beyond this node's fair share and takes free or expired ones up
  // to it (fair_share). When a lane has just been taken, the read position goes back to the least checkpoint
  // of the lanes held. False on a storage error (recorded as the last error).
  bool refresh_claims();
  // Claims: the earliest time a lane's claim is due (time_point::max() without claims).
  SteadyClock::time_point claims_due() const;
  // Stores the progress past unhandled events: at once when `due`, else at most once per
  // EngineOptions::idle_checkpoint_interval. False on a storage error (recorded as the last error).
  bool save_skipped(bool due);
  void advance(std::uint64_t p, std::uint64_t handled);
  boost::asio::awaitable<LaneOutcome> process(const ReadAllBatch& batch);
  boost::asio::awaitable<LaneOutcome> process_lane(Lane& lane, const std::vector<const RecordedEvent*>& events,
                                                   std::uint64_t end, std::uint64_t& handled);

  // Shared state (health, waiters, the stop hand-shake).
  mutable Mutex mutex;
  ProjectionState state EVS_GUARDED_BY(mutex) = ProjectionState::starting;
  std::uint64_t position EVS_GUARDED_BY(mutex) = 0;
  std::uint64_t processed EVS_GUARDED_BY(mutex) = 0;
  std::uint64_t dead_letters EVS_GUARDED_BY(mutex) = 0;
  std::string last_error EVS_GUARDED_BY(mutex);
  std::uint64_t errors EVS_GUARDED_BY(mutex) = 0;  // handler and storage errors since start
  SteadyClock::time_point last_progress EVS_GUARDED_BY(mutex) = SteadyClock::now();
  std::deque<std::pair<SteadyClock::time_point, std::uint64_t>> rate_samples EVS_GUARDED_BY(mutex);
  std::list<Waiter> waiters EVS_GUARDED_BY(mutex);
  ClaimCensus census EVS_GUARDED_BY(mutex);  // claims: what the last census read, for health
  bool accepting_waiters EVS_GUARDED_BY(mutex) = false;  // from spawn() until request_stop()
  bool loop_started EVS_GUARDED_BY(mutex) = false;       // the read loop ran its first step
  bool gave_up EVS_GUARDED_BY(mutex) = false;            // abandon() was called
};

}  // namespace evs::detail
