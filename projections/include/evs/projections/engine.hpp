// ProjectionEngine: runs projections over an EventStore on a Boost.Asio io_context.
//
// Each projection starts from its stored checkpoint, catches up in batches, then follows new events live;
// the hand-over needs no special case because a projection always reads the log from its own position, so
// nothing is skipped or applied twice. It wakes up on an in-process commit signal, and polls the store's
// change token (PRAGMA data_version on SQLite) at a short adaptive interval to notice commits of other
// processes. Reading is pull-based, one bounded batch at a time: a slow projection falls behind (its lag
// grows) but never makes memory grow and never slows appends.
//
// Partitions: events are routed by a hash of their stream id, so one stream's events stay in order in one
// partition. The partitions of a batch run in parallel and the batch finishes when all of them have; each
// partition commits its own checkpoint with its own changes, so the projection's position never passes an
// event some partition has not finished.
#pragma once

#include "evs/eventstore/event_store.hpp"
#include "evs/projections/projection.hpp"

#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace boost::asio {
class io_context;
}

namespace evs {

enum class ProjectionState : std::uint8_t {
  starting,     // not yet running
  catching_up,  // reading history in full batches
  live,         // at the head of the log, waiting for new events
  stalled,      // behind the head, but has made no progress for EngineOptions::stall_after (retrying)
  stopped,      // stopped gracefully; a restart continues from the checkpoint
  failed,       // stopped on an event whose retries ran out under OnFailure::stop, or a storage error
};

std::string_view to_string(ProjectionState state);

// One partition's claim (ProjectionOptions::node), as the database held it when last read.
struct PartitionClaim {
  std::size_t partition = 0;
  std::string owner;      // the node holding it; empty when free (released, or never claimed)
  std::uint64_t epoch = 0;  // grows with every change of owner
  Timestamp lease_until{};  // by the database's clock (SQLite: the machine's); past it, the claim is free
};

struct ProjectionHealth {
  std::string name;
  ProjectionKind kind = ProjectionKind::memory;
  ProjectionState state = ProjectionState::starting;
  std::uint64_t position = 0;        // every event at or before it has been processed
  std::uint64_t head = 0;            // the store's last position when last observed
  std::uint64_t lag_events = 0;      // events between position and head (EventStore::count_events)
  double lag_seconds = 0;            // age of the oldest unprocessed event (0 when caught up)
  double events_per_second = 0;      // recent processing rate
  std::uint64_t processed = 0;       // events handled since start
  std::uint64_t dead_letters = 0;    // events parked by this projection (all time, if stored)
  std::string last_error;            // the most recent handler or storage error, or empty
  std::uint64_t errors = 0;          // handler and storage errors since start (each failed attempt counts)
  // Which start() of the engine the totals "since start" (processed, errors, fenced) belong to: 1 for the
  // first, one more at every start after a stop. They start again from zero with each.
  std::uint64_t run = 0;
  std::size_t partitions = 1;        // ProjectionOptions::partitions
  // Claims (ProjectionOptions::node): this node's name, how many partitions it holds now, and how often it
  // found a claim gone (fenced): a batch rolled back, or a renewal refused, after its lease had run out. With claims, `position` is how far
  // this node has read; each partition's stored checkpoint says how far it is processed.
  std::string node;
  std::size_t partitions_held = 0;
  std::uint64_t fenced = 0;
  // Every partition's claim and the nodes alive for this projection (those renewing their presence), as
  // this node last read them (at most a third of the lease ago).
  std::vector<PartitionClaim> claims;
  std::vector<std::string> nodes;
};

struct EngineOptions {
  std::size_t threads = 2;  // worker threads when the engine owns its io_context
  std::chrono::milliseconds poll_min{2};    // first poll interval after activity
  std::chrono::milliseconds poll_max{100};  // the interval grows (x2) to this while nothing changes
  std::chrono::milliseconds stall_after{10000};
  // Progress past events a projection does not handle is stored at most this often while they keep
  // coming, and whenever the projection is idle or stops (so stored checkpoints do not look behind).
  std::chrono::milliseconds idle_checkpoint_interval{1000};
};

class ProjectionEngine {
 public:
  // Owns its io_context and runs it on `options.threads` threads between start() and stop().
  explicit ProjectionEngine(EventStore& store, EngineOptions options = {});
  // Runs on the caller's io_context; the caller runs it (on any number of threads).
  ProjectionEngine(EventStore& store, boost::asio::io_context& io, EngineOptions options = {});
  ~ProjectionEngine();  // stop()
  ProjectionEngine(const ProjectionEngine&) = delete;
  ProjectionEngine& operator=(const ProjectionEngine&) = delete;

  // Registers a projection before start(). The engine does not own it; it must outlive the engine.
  // Throws evs::Exception(invalid_argument) for a duplicate name, an SQL/effect projection without a
  // database, or after start(). First checks the upcasting chains of the global registry (once per
  // process): a broken chain stops the program here, before any projection reads an event, with every broken
  // link named (see EventRegistry::validate).
  void add(Projection& projection, ProjectionOptions options = {});

  // Opens the projections' databases, runs SQL setup, loads checkpoints, and starts every projection.
  // Throws evs::Exception when a database cannot be opened or set up.
  void start();

  // Graceful stop: each projection finishes the batch in hand, stores its checkpoint and stops. Waiters
  // are woken with shutting_down. Idempotent; start() may be called again afterwards.
  void stop();

  // Health of one projection (nullopt for an unknown name), or of all.
  std::optional<ProjectionHealth> health(std::string_view name) const;
  std::vector<ProjectionHealth> health() const;

  // Read-your-writes: waits until projection `name` has processed every event at or before `position`
  // (e.g. an AppendResult::last_position). Errors: invalid_argument (unknown name), timed_out (the
  // message says where the projection is), shutting_down (the engine stopped), and the
  // projection's error if it failed.
  Result<void> wait_for(std::string_view name, std::uint64_t position, std::chrono::milliseconds timeout);
  // The same, asynchronously: `done` is called once, on an engine thread. See evs/projections/asio.hpp for
  // the form that takes any Asio completion token.
  void async_wait_for(std::string_view name, std::uint64_t position, std::chrono::milliseconds timeout,
                      std::function<void(Result<void>)> done);

  // The io_context the engine runs on (for timers of process managers and applications).
  boost::asio::io_context& io_context();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace evs
