// Internal: one partition of one projection (see engine.cpp for the layout of the engine).
#pragma once

#include "projection_store.hpp"

#include "evs/projections/projection.hpp"

#include <boost/asio/io_context.hpp>
#include <boost/asio/strand.hpp>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>

namespace evs::detail {

using Strand = boost::asio::strand<boost::asio::io_context::executor_type>;

// One partition of one projection. Processes its share of a batch: handles each event (with retries),
// parks or stops on exhausted retries, and commits its checkpoint (with the read model's changes for SQL).
// Used by one coroutine at a time (its runner's, or its own strand's while a partitioned batch runs).
struct Lane {
  Projection& projection;
  const std::string name;
  const ProjectionOptions& options;
  const std::size_t index;
  std::unique_ptr<ProjectionDb> db;     // sql and effect; memory when options.database is set
  SqlSession* session = nullptr;        // sql: db's session
  std::uint64_t checkpoint = 0;         // everything at or before it is processed (committed)
  std::uint64_t parked_in_memory = 0;   // memory projections without a database
  std::chrono::steady_clock::time_point next_inbox_prune{};  // effect: when the inbox is next pruned
  Strand strand;
  // Claims (options.node set): the epoch at which this node holds the partition, and when the claim is
  // renewed (or, unheld, tried) next. Without a claim the lane processes nothing.
  std::optional<std::uint64_t> epoch;
  std::chrono::steady_clock::time_point claim_due{};
  std::chrono::steady_clock::time_point lease_end{};  // by this machine's clock: no event is handled after it
  std::atomic<bool> held{false};           // epoch.has_value(), for health on other threads
  std::atomic<std::uint64_t> fenced{0};    // batches rolled back, or renewals refused, because the claim had gone

  Lane(Projection& p, const ProjectionOptions& o, std::size_t i, boost::asio::io_context& io);

  ProjectionKind kind() const { return projection.kind(); }
  // True when the lane stores its checkpoint (SQL and effect projections).
  bool stores_checkpoint() const { return db != nullptr && kind() != ProjectionKind::memory; }
  // True when the lane works under a claim (options.node set), and whether it may work now.
  bool claims() const { return !options.node.empty() && stores_checkpoint(); }
  bool owned() const { return !claims() || epoch.has_value(); }
  // Claims: takes or renews the partition's claim when due (outside a batch). Returns true when the lane
  // has just taken the partition (over): its checkpoint is then reloaded, another node may have moved it.
  // Throws evs::Exception on a storage failure (the lane then holds nothing).
  bool refresh_claim();
  // Claims: gives the partition up, on a graceful stop. Never throws.
  void release_claim() noexcept;
  // Claims: inside the open transaction, right before it commits: renews the lease, or, when this node
  // no longer holds the partition, drops the claim and throws evs::Exception(fenced) (the caller rolls the
  // batch back).
  void fence_before_commit();

  // Handles one event; returns the error text on failure. `guarded` (SQL): the handler runs inside a
  // savepoint, so a failure undoes its writes alone; unguarded, a failure leaves them in the open
  // transaction and the caller must abort the batch. Effect handlers: a success is recorded in the inbox,
  // together with the checkpoint.
  std::optional<std::string> attempt(const RecordedEvent& e, bool guarded = true);
  // Effect handlers: true when the event's effect already happened (its id is in the inbox).
  bool already_done(const RecordedEvent& e);

  void open_batch();
  // Commits everything up to `position` (SQL: the read model's changes and the checkpoint together).
  void close_batch(std::uint64_t position);
  void abort_batch() noexcept;

  void park(const RecordedEvent& e, const std::string& error, int attempts);

  // Effect handlers: deletes inbox rows older than options.inbox_retention if due (see ProjectionOptions),
  // in its own transaction; a failure only postpones it. Call with no transaction open.
  void prune_inbox_if_due() noexcept;
};

}  // namespace evs::detail
