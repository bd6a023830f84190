// Process managers (sagas): event-driven workflows keyed by a correlation id.
//
// Orchestration: one coordinator per business transaction. It reacts to events, remembers where the
// transaction is in its own event-sourced state, issues commands, and issues compensating commands when a
// later step fails or does not answer in time.
//
//   struct OrderData { std::string order_id; std::int64_t cents = 0; };
//   BOOST_DESCRIBE_STRUCT(OrderData, (), (order_id, cents))
//
//   class Fulfilment : public evs::ProcessManager<Fulfilment, OrderData, OrderPlaced, PaymentCharged, ...> {
//    public:
//     static constexpr std::string_view name = "fulfilment";        // instance streams "fulfilment-<id>"
//     Fulfilment(evs::EventStore& store, Services& s) : ProcessManager(store), services_(s) {}
//     // Optional: where the correlation id comes from (default: the event's metadata.correlation_id).
//     std::string correlation_id(const OrderPlaced& e, const evs::RecordedEvent&) const { return e.order_id; }
//     void handle(const OrderPlaced& e, const evs::RecordedEvent&, Saga& saga) {
//       saga.data() = {e.order_id, e.total_cents};
//       saga.complete_step("order");                                 // compensated by CancelOrder
//       saga.start_step("payment", 30s);                             // fails if no answer within 30 s
//       saga.send("ChargePayment", ChargePayment{e.order_id, e.total_cents}, services_.charge_payment);
//     }
//     void handle(const PaymentCharged&, const evs::RecordedEvent&, Saga& saga) { ... }
//     // Called for each completed step, newest first, when a step fails or times out.
//     void compensate(std::string_view step, Saga& saga) { ... }
//   };
//
//   Fulfilment saga(store, services);
//   saga.attach(engine, {.database = "read.db"});   // instead of engine.add(); before engine.start()
//
// Choreography needs no coordinator: each service is an ordinary EffectHandler that reacts to the others'
// events and appends its own with caused_by(event) metadata and derived_id() event ids (see below).
//
// How it works: the process manager is an effect projection, so the engine gives it checkpoints, retries
// with backoff, the inbox that drops redelivered events, and dead letters. Each instance's state is an
// aggregate (SagaInstance) in the stream "<name>-<correlation id>"; its events (evs.saga.*) are the audit
// trail, and two reactions racing on one instance are settled by optimistic concurrency (the loser reloads
// and decides again). A reaction is stored first and its commands are issued after, so a command is never
// issued for a decision that was not stored. A reaction's events get ids derived from the cause's event id
// (command_event_id), so a cause delivered again is decided again on the state before its stored reaction,
// stores nothing new, and re-issues the same commands; the state keeps nothing per event reacted to. Deadlines are stored in the state and armed as Asio timers on
// the engine's io_context; when one passes, the timer appends evs.saga.deadline_reached to the instance
// stream, and the engine delivers it back like any other event, so a timeout survives restarts and is
// handled at least once like everything else. See docs/process-managers.md.
#pragma once

#include "evs/core/aggregate.hpp"
#include "evs/core/dispatch.hpp"
#include "evs/core/event.hpp"
#include "evs/eventstore/event_store.hpp"
#include "evs/eventstore/repository.hpp"
#include "evs/projections/engine.hpp"
#include "evs/projections/projection.hpp"

#include <boost/describe/enum.hpp>

#include <algorithm>
#include <chrono>
#include <concepts>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

namespace evs {

// ---- Choreography helpers (also used by command handlers) ------------------------------------------------

// Metadata for an event appended in reaction to `cause`: the cause's correlation id (or the cause's own id
// when it has none, so a conversation is named after its first event), the cause's id as causation id,
// and the cause's user metadata.
EventMetadata caused_by(const RecordedEvent& cause);

// A deterministic id derived from `base` and `salt` (a version-8 UUID made of two FNV-1a hashes). Use it as
// the event id of what you append in reaction to an event, e.g. derived_id(cause.event_id, "payment"):
// a redelivered cause then appends the same id again, which the store's idempotent append turns into a
// no-op. Different salts give different ids; the same inputs give the same id in every build.
Uuid derived_id(const Uuid& base, std::string_view salt);

// ---- What a process manager issues --------------------------------------------------------------------

// Travels with every command a saga issues.
struct CommandMetadata {
  // Deterministic: the same command re-issued (after a crash or a failed send) has the same id. A command
  // handler that uses it as the id of the event it appends gets duplicates dropped by the store.
  Uuid command_id;
  std::string correlation_id;  // the saga instance's correlation id
  std::string causation_id;    // the id of the event the saga reacted to
  // Metadata for the events the command handler appends: the same correlation id, caused by this command.
  // Replies carrying it find their way back to the saga instance.
  EventMetadata event_metadata() const { return {correlation_id, command_id.to_string(), {}}; }
};

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

// ---- The handle a reaction works on ---------------------------------------------------------------------

template <class Derived, class Data, Event... Events>
class ProcessManager;

// One saga instance as a handler sees it. Every change is recorded as an event and stored when the handler
// returns; commands passed to send() are issued only after that store succeeded. Once the saga has ended,
// step changes are ignored (send() still works, e.g. to undo the effect of a late answer).
// Not thread-safe; valid only during the call that received it.
template <class Data>
class Saga {
 public:
  const std::string& correlation_id() const { return correlation_id_; }
  // True if the instance had no stored history before this reaction.
  bool is_new() const { return version_before_ == 0; }
  SagaStatus status() const { return state_->status; }
  bool ended() const { return status() == SagaStatus::completed || status() == SagaStatus::compensated; }
  bool is_pending(std::string_view step) const { return state_->pending.count(std::string(step)) > 0; }
  bool is_completed(std::string_view step) const {
    return std::find(state_->completed.begin(), state_->completed.end(), step) != state_->completed.end();
  }
  const SagaInstanceState& state() const { return *state_; }

  // The saga's own data (a described struct). Changes are stored with the reaction.
  Data& data() { return data_; }
  const Data& data() const { return data_; }

  // Marks `step` as waiting for an answer. With a positive `timeout`, the deadline now + timeout is stored,
  // and if the step is still pending then, the process manager calls on_timeout(step, saga) or, without
  // one, fail_step(step, "timed out ..."). Starting a pending step again replaces its deadline.
  void start_step(std::string_view step, std::chrono::milliseconds timeout = std::chrono::milliseconds::zero()) {
    if (ended()) return;
    std::optional<Timestamp> deadline;
    if (timeout > std::chrono::milliseconds::zero())
      deadline = std::chrono::time_point_cast<std::chrono::microseconds>(Clock::now()) +
                 std::chrono::duration_cast<std::chrono::microseconds>(timeout);
    record_(SagaStepStarted{std::string(step), deadline});
  }

  // Marks `step` as done (pending or not): if a later step fails, compensate(step, saga) runs for it.
  void complete_step(std::string_view step) {
    if (ended()) return;
    record_(SagaStepCompleted{std::string(step)});
  }

  // Fails `step` and compensates: compensate(s, saga) for every completed step s, newest first; then the
  // saga ends with status compensated and `reason`.
  void fail_step(std::string_view step, std::string_view reason) {
    if (ended()) return;
    record_(SagaStepFailed{std::string(step), std::string(reason)});
    const std::vector<std::string> done = state_->completed;
    for (auto it = done.rbegin(); it != done.rend(); ++it) {
      record_(SagaStepCompensated{*it});
      compensate_(*it, *this);
    }
    record_(SagaEnded{SagaStatus::compensated, std::string(reason)});
  }

  // Ends the saga successfully; pending steps (and their deadlines) are dropped.
  void complete() {
    if (ended()) return;
    record_(SagaEnded{SagaStatus::completed, {}});
  }

  // Issues a command once this reaction is stored: `issue` is called with the command's metadata and should
  // call the application's command handler. It may be called more than once for one command (at least
  // once: after a crash or when it throws, which fails the event and lets the engine retry it), always with
  // the same CommandMetadata::command_id. `command` names it in the audit trail.
  void send(std::string_view command, std::function<void(const CommandMetadata&)> issue) {
    CommandMetadata m;
    m.command_id = derived_id(cause_, stream_id_ + "/command/" + std::to_string(commands_.size()));
    m.correlation_id = correlation_id_;
    m.causation_id = cause_.to_string();
    record_(SagaCommandIssued{std::string(command), m.command_id});
    commands_.push_back({std::move(m), std::move(issue)});
  }
  // Typed form: send("ChargePayment", ChargePayment{...}, handler) calls handler(command, metadata).
  template <class Command, class Handler>
    requires std::invocable<Handler&, const Command&, const CommandMetadata&>
  void send(std::string_view name, Command command, Handler handler) {
    send(name, [command = std::move(command), handler = std::move(handler)](const CommandMetadata& m) mutable {
      handler(std::as_const(command), m);
    });
  }

 private:
  template <class, class, Event...>
  friend class ProcessManager;

  struct Issue {
    CommandMetadata metadata;
    std::function<void(const CommandMetadata&)> issue;
  };

  Saga(const SagaInstanceState& state, std::function<void(SagaEvent)> record,
       std::function<void(std::string_view, Saga&)> compensate, std::string correlation_id, std::string stream_id,
       Uuid cause, std::uint64_t version_before, Data data)
      : state_(&state), record_(std::move(record)), compensate_(std::move(compensate)),
        correlation_id_(std::move(correlation_id)), stream_id_(std::move(stream_id)), cause_(cause),
        version_before_(version_before), data_(std::move(data)) {}

  const SagaInstanceState* state_;
  std::function<void(SagaEvent)> record_;
  std::function<void(std::string_view, Saga&)> compensate_;
  std::string correlation_id_;
  std::string stream_id_;
  Uuid cause_;
  std::uint64_t version_before_;
  Data data_;
  std::vector<Issue> commands_;
};

// ---- Internals shared by every process manager (projections/src/process_manager.cpp) -------------------

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

template <class>
inline constexpr bool saga_dependent_false = false;

}  // namespace detail

// ---- The base class -------------------------------------------------------------------------------------

struct ProcessManagerOptions {
  RepositoryOptions repository;  // encoding of the instance streams (json: readable with SQL); snapshots
  int max_conflicts = 10;        // reloads after a concurrent change of one instance, then the event fails
  std::chrono::milliseconds timer_retry{1000};  // pause before retrying a failed deadline append or scan
  std::size_t scan_batch = 1000;                // events per read while re-arming deadlines at attach()
};

// Derived provides:
//  - static constexpr std::string_view name: the projection name and the instance streams' category
//    (letters, digits, '_'; no '-').
//  - void handle(const E&, const evs::RecordedEvent&, Saga&) for each E in Events.
// and optionally:
//  - std::string correlation_id(const E&, const evs::RecordedEvent&) for some E: the instance key for E.
//    Default: the event's metadata.correlation_id. Events with an empty key are ignored.
//  - void compensate(std::string_view step, Saga&): issues the compensating commands of a completed step.
//  - void on_timeout(std::string_view step, Saga&): replaces the default fail_step(step, "timed out ...").
// Handlers must decide from the saga's state and the event only: a reaction may run more than once (after
// a conflict, or to re-issue commands after a crash) and is expected to decide the same each time.
// Thread-safety: with ProjectionOptions::partitions > 1, reactions to events of different streams run
// concurrently (also for one instance; optimistic concurrency orders them).
template <class Derived, class Data, Event... Events>
class ProcessManager : public Projection {
 public:
  using Saga = evs::Saga<Data>;
  using Instance = SagaInstance<Derived>;

  // `store` must outlive the process manager. The process manager must outlive the engine it is attached to.
  explicit ProcessManager(EventStore& store, ProcessManagerOptions options = {})
      : store_(store), options_(options),
        timers_([this](const std::string& id, const detail::SagaDeadline& d) { return fire(id, d); },
                options.timer_retry) {
    options_.max_conflicts = std::max(options_.max_conflicts, 1);
    options_.scan_batch = std::max<std::size_t>(options_.scan_batch, 1);
  }
  ~ProcessManager() override {
    static_assert(Derived::name.find('-') == std::string_view::npos && !Derived::name.empty(),
                  "a process manager's name is its instance streams' category: it must not contain '-'");
    timers_.close();
  }
  ProcessManager(const ProcessManager&) = delete;
  ProcessManager& operator=(const ProcessManager&) = delete;

  // Registers the process manager with `engine` (engine.add(*this, options); `options.database` is
  // required) and, once the engine runs, re-arms the deadlines of the open instances found in the log.
  // Call before engine.start(). Throws what engine.add() throws.
  void attach(ProjectionEngine& engine, ProjectionOptions options) {
    engine.add(*this, std::move(options));
    timers_.attach(engine.io_context());
    timers_.post([this] { return rearm_all(); });
  }

  // The stored state of the instance for `correlation_id`. Errors: stream_not_found, read/decode errors.
  Result<SagaInstanceState> instance(std::string_view correlation_id) {
    auto loaded = Repository<Instance>(store_, options_.repository).load(correlation_id);
    if (!loaded) return loaded.error();
    return loaded->state();
  }
  // The stored Data of the instance for `correlation_id`. Errors: as instance(), and corrupt_payload.
  Result<Data> data(std::string_view correlation_id) {
    auto s = instance(correlation_id);
    if (!s) return s.error();
    return decode_data(s->data);
  }
  static std::string stream_id_for(std::string_view correlation_id) { return Instance::stream_id_for(correlation_id); }
  // Deadline timers armed now (tests, health pages).
  std::size_t armed_timers() const { return timers_.armed(); }
  // The last error of a deadline timer or of the start-up scan, or empty.
  std::string last_timer_error() const { return timers_.last_error(); }

  // ---- Projection ----
  std::string_view name() const override { return Derived::name; }
  // An effect projection: checkpoints, retries, inbox deduplication and dead letters come from the engine.
  ProjectionKind kind() const override { return ProjectionKind::effect; }
  // Events... plus evs.saga.deadline_reached (of every process manager; others' are skipped by category).
  std::vector<std::string> event_types() const override {
    return {std::string(event_info_v<Events>.name)..., std::string(event_info_v<SagaDeadlineReached>.name)};
  }
  // Reacts to one event: loads the instance, runs the handler, stores the recorded events, re-syncs the
  // deadline timers, issues the commands. Throws (so the engine retries) when storing fails for a reason
  // other than a bounded number of conflicts, or when a command throws.
  void handle(const RecordedEvent& event, SqlSession*) override {
    if (!timers_.attached())
      throw Exception(errc::invalid_argument, "process manager " + std::string(Derived::name) +
                                                  " must be registered with attach(engine, options), not "
                                                  "engine.add(): it needs the engine's io_context for deadlines");
    if (event.type == event_info_v<SagaDeadlineReached>.name) {
      on_deadline_reached(event);
      return;
    }
    auto r = dispatch_event<Events...>(event, "process manager " + std::string(Derived::name),
                                       [&]<class E>(const E& e) {
                                         const std::string id = correlation_of(e, event);
                                         if (id.empty()) return;
                                         react(id, event, [&](Saga& saga) {
                                           if constexpr (requires(Derived& d) { d.handle(e, event, saga); })
                                             derived().handle(e, event, saga);
                                           else
                                             static_assert(detail::saga_dependent_false<E>,
                                                           "the process manager needs a public handle(const E&, "
                                                           "const evs::RecordedEvent&, Saga&) for each listed "
                                                           "event type");
                                         });
                                       });
    if (!r) throw Exception(r.error());
  }

 private:
  Derived& derived() { return static_cast<Derived&>(*this); }

  template <class E>
  std::string correlation_of(const E& e, const RecordedEvent& meta) {
    if constexpr (requires(Derived& d) { { d.correlation_id(e, meta) } -> std::convertible_to<std::string>; })
      return std::string(derived().correlation_id(e, meta));
    else
      return meta.metadata.correlation_id;
  }

  static Data decode_data(const std::string& json) {
    Data data{};
    if (json.empty()) return data;
    if (auto r = decode_into(json, Encoding::json, data); !r)
      throw Exception(errc::corrupt_payload, "process manager " + std::string(Derived::name) +
                                                 ": stored saga data does not decode: " + r.error().message);
    return data;
  }

  void on_deadline_reached(const RecordedEvent& event) {
    const std::string_view stream = event.stream_id;
    if (stream.size() <= Derived::name.size() || stream.substr(0, Derived::name.size()) != Derived::name ||
        stream[Derived::name.size()] != '-')
      return;  // another process manager's deadline
    const std::string id(stream.substr(Derived::name.size() + 1));
    auto r = dispatch_event<SagaDeadlineReached>(event, "process manager " + std::string(Derived::name),
                                                 [&](const SagaDeadlineReached& d) {
                                                   react(id, event, [&](Saga& saga) {
                                                     auto it = saga.state().pending.find(d.step);
                                                     if (it == saga.state().pending.end() || it->second != d.deadline)
                                                       return;  // answered in time, or the step was restarted
                                                     if constexpr (requires(Derived& x) { x.on_timeout(d.step, saga); })
                                                       derived().on_timeout(d.step, saga);
                                                     else
                                                       saga.fail_step(d.step, "timed out: no answer before the deadline");
                                                   });
                                                 });
    if (!r) throw Exception(r.error());
  }

  // Runs `decide` on a fresh Saga over `instance`, after recording the reaction's first events. Returns
  // the commands to issue; `changed` tells whether the decision recorded anything.
  template <class Decide>
  std::vector<typename Saga::Issue> decide_on(Instance& instance, const std::string& id, const RecordedEvent& cause,
                                              Decide& decide, bool& changed) {
    const std::uint64_t before = instance.version();
    if (before == 0) instance.record(SagaStarted{id});
    instance.record(SagaEventHandled{cause.event_id, cause.type, cause.stream_id, before});
    const std::size_t baseline = instance.pending_events().size();
    const std::string old_data = instance.state().data.empty() ? encode(Data{}, Encoding::json) : instance.state().data;
    Saga saga(
        instance.state(), [&instance](SagaEvent e) { instance.record(std::move(e)); },
        [this](std::string_view step, Saga& s) {
          if constexpr (requires(Derived& d) { d.compensate(step, s); }) derived().compensate(step, s);
        },
        id, instance.stream_id(), cause.event_id, before, decode_data(instance.state().data));
    decide(saga);
    if (std::string now = encode(saga.data_, Encoding::json); now != old_data) instance.record(SagaDataChanged{std::move(now)});
    changed = instance.pending_events().size() > baseline;
    return std::move(saga.commands_);
  }

  // A reaction is a command whose id is the cause's event id: its i-th event is stored with the id
  // command_event_id(cause.event_id, i). A redelivered cause is decided again on the state just before its
  // stored reaction, so it decides the same; saving that again stores nothing (the store's idempotent
  // append), and the same commands are issued again with the same ids.
  template <class Decide>
  void react(const std::string& id, const RecordedEvent& cause, Decide&& decide) {
    Repository<Instance> repository(store_, options_.repository);
    const EventMetadata metadata{id, cause.event_id.to_string(), {}};
    const Uuid first = command_event_id(cause.event_id, 0);
    for (int attempt = 1;; ++attempt) {
      // A snapshot may cover the stored reaction, and load_for_command looks only after it: with
      // snapshots configured, reactions rebuild the instance from its whole stream.
      Instance instance = options_.repository.snapshot_every > 0 ? load_before(id, first) : load_for(repository, id, cause);
      bool changed = false;
      auto commands = decide_on(instance, id, cause, decide, changed);
      if (!changed) return;  // nothing to remember: this event means nothing to this instance now
      auto saved = repository.save(instance, metadata, cause.event_id);
      if (!saved && saved.error().is(errc::duplicate_event)) {
        // Stored before, but a snapshot (taken while snapshots were configured) covers it, so the load
        // above gave the current state: decide again on the state before the reaction.
        instance = load_before(id, first);
        commands = decide_on(instance, id, cause, decide, changed);
        saved = repository.save(instance, metadata, cause.event_id);
      }
      if (!saved) {
        if (saved.error().is(errc::wrong_expected_version) && attempt < options_.max_conflicts) continue;
        throw Exception(saved.error());
      }
      if (saved->idempotent_replay) {
        // The timers follow the stored state, not this re-run's (its deadlines were computed anew).
        auto current = repository.load(id);
        if (!current) throw Exception(current.error());
        sync_timers(*current);
      } else {
        sync_timers(instance);
      }
      issue(commands);
      return;
    }
  }

  // The instance as it was just before the reaction to `cause`, or as it is if that is not stored.
  static Instance load_for(Repository<Instance>& repository, const std::string& id, const RecordedEvent& cause) {
    auto loaded = repository.load_for_command(id, cause.event_id);
    if (!loaded && loaded.error().is(errc::stream_not_found)) return Instance{id};
    if (!loaded) throw Exception(loaded.error());
    return std::move(*loaded);
  }

  // The instance as it was just before the event `first`, from the whole stream (snapshots ignored); the
  // whole instance if no event has that id.
  Instance load_before(const std::string& id, const Uuid& first) {
    Instance instance{id};
    auto events = store_.read_stream(instance.stream_id());
    if (!events) {
      if (events.error().is(errc::stream_not_found)) return instance;
      throw Exception(events.error());
    }
    for (const RecordedEvent& e : *events) {
      if (e.event_id == first) break;
      if (auto r = instance.replay(e); !r) throw Exception(r.error());
    }
    return instance;
  }

  static void issue(std::vector<typename Saga::Issue>& commands) {
    for (auto& c : commands) c.issue(c.metadata);
  }

  void sync_timers(const Instance& instance) {
    std::vector<detail::SagaDeadline> deadlines;
    for (const auto& [step, deadline] : instance.state().pending)
      if (deadline) deadlines.push_back({step, *deadline});
    timers_.sync(instance.id(), instance.version(), deadlines);
  }

  // A deadline passed: if the step is still pending with that deadline, append SagaDeadlineReached.
  Result<void> fire(const std::string& id, const detail::SagaDeadline& d) {
    auto loaded = Repository<Instance>(store_, options_.repository).load(id);
    if (!loaded) return loaded.error().is(errc::stream_not_found) ? Result<void>{} : Result<void>(loaded.error());
    auto it = loaded->state().pending.find(d.step);
    if (it == loaded->state().pending.end() || it->second != d.deadline) return {};
    return detail::append_deadline_reached(store_, loaded->stream_id(), id, d, options_.repository.encoding);
  }

  // Start-up: arms the deadlines of every open instance (deadlines passed meanwhile fire at once).
  Result<void> rearm_all() {
    auto streams = detail::open_saga_streams(store_, Derived::name, options_.scan_batch);
    if (!streams) return streams.error();
    Repository<Instance> repository(store_, options_.repository);
    for (const std::string& stream : *streams) {
      auto loaded = repository.load(std::string_view(stream).substr(Derived::name.size() + 1));
      if (!loaded) return loaded.error();
      sync_timers(*loaded);
    }
    return {};
  }

  EventStore& store_;
  ProcessManagerOptions options_;
  detail::SagaTimers timers_;
};

}  // namespace evs
