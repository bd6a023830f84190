#include "evs/projections/lag.hpp"

#include <algorithm>

namespace evs {

Result<ProjectionLag> projection_lag(EventStore& store, std::uint64_t position, const ReadAllFilter& handled) {
  ProjectionLag lag;
  auto head = store.last_position();
  if (!head) return head.error();
  lag.head = std::max(*head, position);
  if (lag.head == position) return lag;
  auto next_handled = store.read_all(position + 1, 1, handled);
  if (!next_handled) return next_handled.error();
  if (next_handled->events.empty()) return lag;
  auto behind = store.count_events(position, lag.head);
  if (!behind) return behind.error();
  lag.lag_events = *behind;
  auto next = store.read_all(position + 1, 1);
  if (!next) return next.error();
  const Timestamp oldest =
      next->events.empty() ? next_handled->events.front().recorded_at : next->events.front().recorded_at;
  lag.lag_seconds = std::max(0.0, std::chrono::duration<double>(Clock::now() - oldest).count());
  return lag;
}

}  // namespace evs
