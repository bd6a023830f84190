// evs::Saga<Data, Step>: one saga instance as a process manager's handler sees it (see process_manager.hpp).
#pragma once

#include "evs/core/codec.hpp"
#include "evs/core/envelope.hpp"
#include "evs/core/error.hpp"
#include "evs/core/event.hpp"
#include "evs/projections/saga_commands.hpp"
#include "evs/projections/saga_instance.hpp"

#include <boost/describe/enum_from_string.hpp>
#include <boost/describe/enum_to_string.hpp>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace evs {

// ---- The handle a reaction works on ---------------------------------------------------------------------

template <class Derived, class Data, class Step, Event... Events>
class ProcessManager;

namespace detail {

// The stored name of `step`: its enumerator's name. Throws invalid_argument for a value that is no enumerator.
template <class Step>
std::string step_name(Step step) {
  const char* n = boost::describe::enum_to_string(step, nullptr);
  if (!n)
    throw Exception(errc::invalid_argument,
                    "saga step " + std::to_string(static_cast<long long>(step)) + " is not an enumerator of its enum");
  return n;
}

// The step stored as `name`. Throws corrupt_payload naming `owner` when Step has no such enumerator (an
// enumerator renamed or removed while instances that use it are stored).
template <class Step>
Step parse_step(const std::string& name, std::string_view owner) {
  Step step{};
  if (!boost::describe::enum_from_string(name.c_str(), step))
    throw Exception(errc::corrupt_payload, "process manager " + std::string(owner) + ": the stored step '" + name +
                                               "' has no enumerator in " +
                                               std::string(unqualified_type_name<Step>()));
  return step;
}

}  // namespace detail

// One saga instance as a handler sees it. Every change is recorded as an event and stored when the handler
// returns; commands passed to send() are issued only after that store succeeded. Once the saga has ended,
// step changes are ignored (send() still works, e.g. to undo the effect of a late answer).
// Not thread-safe; valid only during the call that received it.
template <class Data, class Step>
class Saga {
 public:
  const std::string& correlation_id() const { return correlation_id_; }
  // True if the instance had no stored history before this reaction.
  bool is_new() const { return version_before_ == 0; }
  SagaStatus status() const { return state_->status; }
  bool ended() const { return status() == SagaStatus::completed || status() == SagaStatus::compensated; }
  bool is_pending(Step step) const { return state_->pending.count(detail::step_name(step)) > 0; }
  bool is_completed(Step step) const {
    return std::find(state_->completed.begin(), state_->completed.end(), detail::step_name(step)) !=
           state_->completed.end();
  }
  // Why the saga was compensated (the failed step's reason), or empty.
  const std::string& reason() const { return state_->reason; }
  const SagaInstanceState& state() const { return *state_; }

  // The saga's own data (a described struct). Changes are stored with the reaction.
  Data& data() { return data_; }
  const Data& data() const { return data_; }

  // Marks `step` as waiting for an answer. With a positive `timeout`, the deadline now + timeout is stored,
  // and if the step is still pending then, the process manager calls on_timeout(step, saga) or, without
  // one, fail_step(step, "timed out ..."). Starting a pending step again replaces its deadline.
  void start_step(Step step, std::chrono::milliseconds timeout = std::chrono::milliseconds::zero()) {
    if (ended()) return;
    std::optional<Timestamp> deadline;
    if (timeout > std::chrono::milliseconds::zero())
      deadline = std::chrono::time_point_cast<std::chrono::microseconds>(Clock::now()) +
                 std::chrono::duration_cast<std::chrono::microseconds>(timeout);
    record_(SagaStepStarted{detail::step_name(step), deadline});
  }

  // Marks `step` as done (pending or not): if a later step fails, compensate(step, saga) runs for it.
  void complete_step(Step step) {
    if (ended()) return;
    record_(SagaStepCompleted{detail::step_name(step)});
  }

  // Fails `step` and compensates: compensate(s, saga) for every completed step s, newest first; then the
  // saga ends with status compensated and `reason`.
  void fail_step(Step step, std::string_view reason) {
    if (ended()) return;
    record_(SagaStepFailed{detail::step_name(step), std::string(reason)});
    const std::vector<std::string> done = state_->completed;
    for (auto it = done.rbegin(); it != done.rend(); ++it) {
      const Step s = detail::parse_step<Step>(*it, owner_);
      record_(SagaStepCompensated{*it});
      compensate_(s, *this);
    }
    record_(SagaEnded{SagaStatus::compensated, std::string(reason)});
  }

  // Ends the saga successfully; pending steps (and their deadlines) are dropped.
  void complete() {
    if (ended()) return;
    record_(SagaEnded{SagaStatus::completed, {}});
  }

  // Sends `command` (a described struct) once this reaction is stored, to the handler registered for its
  // type at attach(). The handler may be called more than once for one command (at least once: after a
  // crash, or when it throws, which fails the event and lets the engine retry it), always with the same
  // CommandMetadata::command_id. Throws invalid_argument, before anything is stored, when no handler for
  // the command's type was registered.
  template <class Command>
  void send(Command command) {
    router_->require(typeid(Command), detail::unqualified_type_name<Command>(), owner_);
    CommandMetadata m;
    m.command_id = derived_id(cause_, stream_id_ + "/command/" + std::to_string(commands_.size()));
    m.correlation_id = correlation_id_;
    m.causation_id = cause_.to_string();
    auto issued = detail::make_issued(std::move(command), std::move(m));
    record_(SagaCommandIssued{issued.name, issued.metadata.command_id});
    commands_.push_back(std::move(issued));
  }

 private:
  template <class, class, class, Event...>
  friend class ProcessManager;

  Saga(const SagaInstanceState& state, std::function<void(SagaEvent)> record,
       std::function<void(Step, Saga&)> compensate, const detail::CommandRouter& router, std::string_view owner,
       std::string correlation_id, std::string stream_id, Uuid cause, std::uint64_t version_before, Data data)
      : state_(&state), record_(std::move(record)), compensate_(std::move(compensate)), router_(&router),
        owner_(owner), correlation_id_(std::move(correlation_id)), stream_id_(std::move(stream_id)), cause_(cause),
        version_before_(version_before), data_(std::move(data)) {}

  const SagaInstanceState* state_;
  std::function<void(SagaEvent)> record_;
  std::function<void(Step, Saga&)> compensate_;
  const detail::CommandRouter* router_;
  std::string_view owner_;
  std::string correlation_id_;
  std::string stream_id_;
  Uuid cause_;
  std::uint64_t version_before_;
  Data data_;
  std::vector<IssuedCommand> commands_;
};

}  // namespace evs
