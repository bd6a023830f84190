// The callback registries every backend uses to implement add/remove_commit_listener and
// add/remove_append_observer.
#pragma once

#include "evs/eventstore/event_store.hpp"

#include <atomic>
#include <chrono>
#include <cstddef>
#include <map>
#include <mutex>
#include <vector>

namespace evs::detail {

// Callbacks taking `Args`, called in registration order under one mutex.
template <typename Callback, typename... Args>
class Callbacks {
 public:
  std::uint64_t add(Callback callback) {
    std::lock_guard lock(mutex_);
    callbacks_.emplace(++next_id_, std::move(callback));
    count_.store(callbacks_.size(), std::memory_order_relaxed);
    return next_id_;
  }
  // Blocks while a notification is running, so the callback is never called after this returns.
  void remove(std::uint64_t id) {
    std::lock_guard lock(mutex_);
    callbacks_.erase(id);
    count_.store(callbacks_.size(), std::memory_order_relaxed);
  }
  // Lock-free, for committers that skip preparing a notification nobody would receive. A callback added
  // concurrently may miss the commit in progress (it is called from the next one on).
  bool empty() const { return count_.load(std::memory_order_relaxed) == 0; }
  // Calls every callback; an exception from one is dropped so it cannot harm the committer.
  void notify(Args... args) {
    std::lock_guard lock(mutex_);
    for (auto& [id, callback] : callbacks_) {
      try {
        callback(args...);
      } catch (...) {
      }
    }
  }

 private:
  std::mutex mutex_;  // held during notify: callbacks must not add/remove callbacks themselves
  std::map<std::uint64_t, Callback> callbacks_;
  std::atomic<std::size_t> count_{0};
  std::uint64_t next_id_ = 0;
};

using CommitListeners = Callbacks<EventStore::CommitListener, std::uint64_t>;

// The append observers, and how a backend reports one commit to them.
class AppendObservers : public Callbacks<EventStore::AppendObserver, const EventStore::AppendGroup&> {
 public:
  using Started = std::chrono::steady_clock::time_point;

  // One commit's appends, as a committer reports them.
  class Group {
   public:
    void add(Started started, std::size_t events_stored, bool failed) {
      latencies_.push_back(std::chrono::steady_clock::now() - started);
      group_.events += events_stored;
      if (failed) ++group_.failed;
    }

   private:
    friend class AppendObservers;
    EventStore::AppendGroup group_;
    std::vector<std::chrono::nanoseconds> latencies_;  // what group_.latencies shows
  };

  // Reports one commit: `fill(Group&)` adds its appends. Nothing is built, and `fill` is not called, when
  // nobody observes the store, so an unobserved commit does no extra work.
  template <class Fill>
  void report(Fill&& fill) {
    if (empty()) return;
    Group g;
    fill(g);
    if (g.latencies_.empty()) return;
    g.group_.appends = g.latencies_.size();
    g.group_.latencies = g.latencies_;
    notify(g.group_);
  }

  // The events an outcome stored: none for an error or an idempotent replay.
  static std::size_t stored(const Result<AppendResult>& outcome) {
    if (!outcome || outcome->idempotent_replay || outcome->last_position == 0) return 0;
    return static_cast<std::size_t>(outcome->last_position - outcome->first_position + 1);
  }
};

}  // namespace evs::detail
