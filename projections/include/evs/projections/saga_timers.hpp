// Internals shared by every process manager: the deadline timers and the log scans behind them
// (projections/src/process_manager.cpp), kept out of the process manager's template code.
#pragma once

#include "evs/core/envelope.hpp"
#include "evs/core/error.hpp"
#include "evs/eventstore/event_store.hpp"

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace boost::asio {
class io_context;
}  // namespace boost::asio

namespace evs {

namespace detail {

struct SagaDeadline {
  std::string step;
  Timestamp deadline{};
};

// The Asio timers of one process manager, kept out of this header. Thread-safe.
class SagaTimers {
 public:
  // Called on an io_context thread when a deadline passes. An error (or exception) is recorded as the
  // last error and the deadline is tried again after `retry`.
  using Fire = std::function<Result<void>(const std::string& correlation_id, const SagaDeadline&)>;
  using Task = std::function<Result<void>()>;

  SagaTimers(Fire fire, std::chrono::milliseconds retry);
  ~SagaTimers();  // close()
  SagaTimers(const SagaTimers&) = delete;
  SagaTimers& operator=(const SagaTimers&) = delete;

  // Arms timers on `io` from now on; timers armed on a previous io_context are cancelled.
  void attach(boost::asio::io_context& io);
  bool attached() const;
  // Makes the armed timers of `correlation_id` match `deadlines`: arms the missing ones, cancels the rest.
  // Ignored if a sync for this instance with a newer `version` happened already (reactions racing).
  void sync(const std::string& correlation_id, std::uint64_t version, const std::vector<SagaDeadline>& deadlines);
  // Runs `task` once on the io_context; an error is recorded and the task tried again after `retry`.
  void post(Task task);
  // Cancels every timer and waits for running callbacks; afterwards nothing fires any more.
  void close();
  std::size_t armed() const;
  std::string last_error() const;

 private:
  struct Impl;
  std::shared_ptr<Impl> impl_;
};

// Stream ids of the instances of `category` that started a step and have not ended (a scan of the log
// filtered by category and type in SQL).
Result<std::vector<std::string>> open_saga_streams(EventStore& store, std::string_view category,
                                                   std::size_t batch_size);

// Appends SagaDeadlineReached to `stream_id` with an id derived from the stream, step and deadline, so
// appending it twice stores it once.
Result<void> append_deadline_reached(EventStore& store, const std::string& stream_id,
                                     const std::string& correlation_id, const SagaDeadline& deadline,
                                     Encoding encoding);

}  // namespace detail

}  // namespace evs
