// The evs sides that the SQLite and the PostgreSQL scenarios share: the same workload on any EventStore, so
// both backends are measured doing exactly the same calls.
#pragma once

#include "domain.hpp"
#include "report.hpp"

#include <evs/eventstore/event_store.hpp>
#include <evs/projections/engine.hpp>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <stdexcept>
#include <vector>

namespace bench {

// `threads` threads, each appending `per_thread` single events with exact expected versions to its own
// stream (account_name(first_stream + t)), all released at once. Latency per append; `waits_ms`, if given,
// receives every append's. Throws if any append failed.
Sample append_threads(evs::EventStore& store, std::size_t threads, std::size_t per_thread, std::size_t first_stream = 0,
                      std::vector<double>* waits_ms = nullptr);

// `appenders` asynchronous appenders (coroutine style), each appending `per_appender` single events with
// exact expected versions to its own stream (account_name(first_stream + t)): each issues its next append
// from the completion callback of the previous one, so no thread waits per append. Latency per append;
// `waits_ms`, if given, receives every append's. Throws if any append failed.
Sample append_chained(evs::EventStore& store, std::size_t appenders, std::size_t per_appender,
                      std::size_t first_stream = 0, std::vector<double>* waits_ms = nullptr);

// One appender: `appends` appends of `per_append` events (encoded inside the timed loop), round-robin over
// 100 streams with exact expected versions. Latency per append.
Sample append_batches(evs::EventStore& store, std::size_t appends, std::size_t per_append, evs::Encoding enc);

// Reads the whole log with read_all in batches of `batch_size` and decodes every payload into its typed event.
Sample read_all_decoded(evs::EventStore& store, std::size_t batch_size);

// A View (a BalancesOf) catches up from the start of the log to position `head`: the time from the engine's
// start() until wait_for(head) returns (engine defaults). The sample counts `events`, the log's events (on
// SQLite its head; positions have gaps on PostgreSQL). `total`, if given, receives the sum of the balances.
template <class View>
Sample catch_up(evs::EventStore& store, std::uint64_t head, std::uint64_t events, std::int64_t* total = nullptr) {
  View view;
  evs::ProjectionEngine engine(store);
  engine.add(view);
  const auto t0 = SteadyClock::now();
  engine.start();
  engine.wait_for(View::name, head, std::chrono::minutes(10)).value();
  const double s = seconds_since(t0);
  engine.stop();
  if (view.balance.empty()) throw std::runtime_error("catch-up: nothing applied");
  if (total) *total = view.total();
  return {events, s};
}

}  // namespace bench
