// How far a projection is behind the event log: the one definition used by ProjectionEngine::health() and
// by the `projections` command of the tool, so the two always report the same figures for one position.
#pragma once

#include "evs/eventstore/event_store.hpp"

#include <cstdint>

namespace evs {

struct ProjectionLag {
  std::uint64_t head = 0;        // the store's last position (at least `position`)
  std::uint64_t lag_events = 0;  // events after `position` up to head when one of them passes the filter; else 0
  double lag_seconds = 0;        // with lag_events > 0: the age of the event right after `position`; else 0
};

// The lag of a projection at `position` that handles the events `handled` lets through (an empty filter:
// every event counts). Events after the position that the projection does not handle are no lag: the
// engine stores its checkpoint past them (see docs/projections.md). Errors: the store's read errors.
Result<ProjectionLag> projection_lag(EventStore& store, std::uint64_t position, const ReadAllFilter& handled);

}  // namespace evs
