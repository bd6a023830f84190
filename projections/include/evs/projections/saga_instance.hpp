// The state of one saga instance and its events (evs.saga.*): the instance is an aggregate in the stream
// "<process manager name>-<correlation id>", and its events are the audit trail. Steps are stored by the
// name of their enumerator in the process manager's Step enum.
#pragma once

#include "evs/core/aggregate.hpp"
#include "evs/core/event.hpp"

#include <boost/describe/enum.hpp>

#include <algorithm>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

namespace evs {

// ---- The instance's own events. Stored names and member layouts are on-disk format: never change. ------

enum class SagaStatus : std::uint8_t {
  not_started = 0,
  running = 1,
  completed = 2,    // complete() was called
  compensated = 3,  // a step failed or timed out; the completed steps were compensated
};
BOOST_DESCRIBE_ENUM(SagaStatus, not_started, running, completed, compensated)

struct SagaStarted {
  std::string correlation_id;
};
BOOST_DESCRIBE_STRUCT(SagaStarted, (), (correlation_id))
EVS_EVENT(SagaStarted, "evs.saga.started", 1)

// First event of every stored reaction (after SagaStarted): which event caused it, and the instance's version
// before it. An audit record only: it changes nothing in the state.
struct SagaEventHandled {
  Uuid event_id;
  std::string type;
  std::string stream_id;
  std::uint64_t version_before = 0;
};
BOOST_DESCRIBE_STRUCT(SagaEventHandled, (), (event_id, type, stream_id, version_before))
EVS_EVENT(SagaEventHandled, "evs.saga.event_handled", 1)

struct SagaStepStarted {
  std::string step;
  std::optional<Timestamp> deadline;  // none: the step waits for ever
};
BOOST_DESCRIBE_STRUCT(SagaStepStarted, (), (step, deadline))
EVS_EVENT(SagaStepStarted, "evs.saga.step_started", 1)

struct SagaStepCompleted {
  std::string step;
};
BOOST_DESCRIBE_STRUCT(SagaStepCompleted, (), (step))
EVS_EVENT(SagaStepCompleted, "evs.saga.step_completed", 1)

struct SagaStepFailed {
  std::string step;
  std::string reason;
};
BOOST_DESCRIBE_STRUCT(SagaStepFailed, (), (step, reason))
EVS_EVENT(SagaStepFailed, "evs.saga.step_failed", 1)

// Recorded before the compensating commands of `step` are issued.
struct SagaStepCompensated {
  std::string step;
};
BOOST_DESCRIBE_STRUCT(SagaStepCompensated, (), (step))
EVS_EVENT(SagaStepCompensated, "evs.saga.step_compensated", 1)

struct SagaCommandIssued {
  std::string command;
  Uuid command_id;
};
BOOST_DESCRIBE_STRUCT(SagaCommandIssued, (), (command, command_id))
EVS_EVENT(SagaCommandIssued, "evs.saga.command_issued", 1)

// The saga's Data after the reaction, as JSON.
struct SagaDataChanged {
  std::string data;
};
BOOST_DESCRIBE_STRUCT(SagaDataChanged, (), (data))
EVS_EVENT(SagaDataChanged, "evs.saga.data_changed", 1)

struct SagaEnded {
  SagaStatus status = SagaStatus::completed;
  std::string reason;
};
BOOST_DESCRIBE_STRUCT(SagaEnded, (), (status, reason))
EVS_EVENT(SagaEnded, "evs.saga.ended", 1)

// Appended by the deadline timer; the process manager reacts to it like to any other event.
struct SagaDeadlineReached {
  std::string step;
  Timestamp deadline{};
};
BOOST_DESCRIBE_STRUCT(SagaDeadlineReached, (), (step, deadline))
EVS_EVENT(SagaDeadlineReached, "evs.saga.deadline_reached", 1)

// The state of one saga instance, built from its events.
struct SagaInstanceState {
  SagaStatus status = SagaStatus::not_started;
  std::string correlation_id;
  std::map<std::string, std::optional<Timestamp>> pending;  // steps waiting for an answer -> deadline
  std::vector<std::string> completed;    // completed steps, oldest first
  std::vector<std::string> compensated;  // compensated steps, in the order compensation ran
  std::string failed_step;               // the step whose failure started compensation
  std::string reason;                    // why the saga was compensated
  std::string data;                      // the saga's Data as JSON; empty: Data{}
};
BOOST_DESCRIBE_STRUCT(SagaInstanceState, (),
                      (status, correlation_id, pending, completed, compensated, failed_step, reason, data))

using SagaEvent = std::variant<SagaStarted, SagaEventHandled, SagaStepStarted, SagaStepCompleted, SagaStepFailed,
                               SagaStepCompensated, SagaCommandIssued, SagaDataChanged, SagaEnded,
                               SagaDeadlineReached>;

namespace detail {
inline void apply_saga(SagaInstanceState& s, const SagaStarted& e) {
  s.status = SagaStatus::running;
  s.correlation_id = e.correlation_id;
}
// Redeliveries are recognised by the reaction's event ids (see ProcessManager::react), not by the state.
inline void apply_saga(SagaInstanceState&, const SagaEventHandled&) {}
inline void apply_saga(SagaInstanceState& s, const SagaStepStarted& e) { s.pending[e.step] = e.deadline; }
inline void apply_saga(SagaInstanceState& s, const SagaStepCompleted& e) {
  s.pending.erase(e.step);
  if (std::find(s.completed.begin(), s.completed.end(), e.step) == s.completed.end()) s.completed.push_back(e.step);
}
inline void apply_saga(SagaInstanceState& s, const SagaStepFailed& e) {
  s.pending.erase(e.step);
  s.failed_step = e.step;
  s.reason = e.reason;
}
inline void apply_saga(SagaInstanceState& s, const SagaStepCompensated& e) { s.compensated.push_back(e.step); }
inline void apply_saga(SagaInstanceState&, const SagaCommandIssued&) {}
inline void apply_saga(SagaInstanceState& s, const SagaDataChanged& e) { s.data = e.data; }
inline void apply_saga(SagaInstanceState& s, const SagaEnded& e) {
  s.status = e.status;
  if (!e.reason.empty()) s.reason = e.reason;
  s.pending.clear();
}
inline void apply_saga(SagaInstanceState&, const SagaDeadlineReached&) {}
}  // namespace detail

// The aggregate behind one saga instance of process manager PM: stream "<PM::name>-<correlation id>".
template <class PM>
class SagaInstance
    : public Aggregate<SagaInstance<PM>, SagaInstanceState, SagaStarted, SagaEventHandled, SagaStepStarted,
                       SagaStepCompleted, SagaStepFailed, SagaStepCompensated, SagaCommandIssued, SagaDataChanged,
                       SagaEnded, SagaDeadlineReached> {
  using Base = Aggregate<SagaInstance<PM>, SagaInstanceState, SagaStarted, SagaEventHandled, SagaStepStarted,
                         SagaStepCompleted, SagaStepFailed, SagaStepCompensated, SagaCommandIssued,
                         SagaDataChanged, SagaEnded, SagaDeadlineReached>;

 public:
  static constexpr std::string_view category = PM::name;
  using Base::Base;

  // Applies `e` to the state and records it as pending (saved by the process manager).
  void record(SagaEvent e) {
    std::visit([this](auto& event) { this->raise(std::move(event)); }, e);
  }

 private:
  friend AggregateAccess;
  template <class E>
  void apply(const E& e) {
    detail::apply_saga(this->state_, e);
  }
};

}  // namespace evs
