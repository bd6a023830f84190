// The commit-listener registry every backend uses to implement add/remove_commit_listener.
#pragma once

#include "evs/eventstore/event_store.hpp"

#include <map>
#include <mutex>

namespace evs::detail {

class CommitListeners {
 public:
  std::uint64_t add(EventStore::CommitListener listener) {
    std::lock_guard lock(mutex_);
    listeners_.emplace(++next_id_, std::move(listener));
    return next_id_;
  }
  // Blocks while a notification is running, so the listener is never called after this returns.
  void remove(std::uint64_t id) {
    std::lock_guard lock(mutex_);
    listeners_.erase(id);
  }
  bool empty() {
    std::lock_guard lock(mutex_);
    return listeners_.empty();
  }
  // Calls every listener; an exception from one is dropped so it cannot harm the committer.
  void notify(std::uint64_t last_position) {
    std::lock_guard lock(mutex_);
    for (auto& [id, listener] : listeners_) {
      try {
        listener(last_position);
      } catch (...) {
      }
    }
  }

 private:
  std::mutex mutex_;  // held during notify: listeners must not add/remove listeners themselves
  std::map<std::uint64_t, EventStore::CommitListener> listeners_;
  std::uint64_t next_id_ = 0;
};

}  // namespace evs::detail
