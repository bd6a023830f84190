// Process managers (sagas): event-driven workflows keyed by a correlation id.
//
// Orchestration: one coordinator per business transaction. It reacts to events, remembers where the
// transaction is in its own event-sourced state, sends commands, and sends compensating commands when a
// later step fails or does not answer in time.
//
//   struct OrderData { std::string order_id; std::int64_t cents = 0; };
//   BOOST_DESCRIBE_STRUCT(OrderData, (), (order_id, cents))
//   enum class Step { order, payment, stock };
//   BOOST_DESCRIBE_ENUM(Step, order, payment, stock)
//
//   class Fulfilment : public evs::ProcessManager<Fulfilment, OrderData, Step, OrderPlaced, PaymentCharged, ...> {
//    public:
//     static constexpr std::string_view name = "fulfilment";        // instance streams "fulfilment-<id>"
//     // Which instance each event belongs to: one entry per event type (saga_correlation.hpp).
//     static constexpr auto correlate = evs::by(&OrderPlaced::order_id, &PaymentCharged::order_id, ...);
//     Fulfilment(evs::EventStore& store, std::chrono::seconds timeout) : ProcessManager(store), timeout_(timeout) {}
//     void handle(const OrderPlaced& e, Saga& saga) {
//       saga.data() = {e.order_id, e.total_cents};
//       saga.complete_step(Step::order);                         // compensated by CancelOrder
//       saga.start_step(Step::payment, timeout_);                // fails if no answer in time
//       saga.send(ChargePayment{e.order_id, e.total_cents});     // a described struct
//     }
//     void handle(const PaymentCharged&, const evs::RecordedEvent&, Saga& saga) { ... }  // either form
//     // Called for each completed step, newest first, when a step fails or times out.
//     void compensate(Step step, Saga& saga) { ... }
//   };
//
//   Fulfilment saga(store, 30s);
//   saga.attach(engine, {.database = "read.db"},       // instead of engine.add(); before engine.start()
//               [&](const ChargePayment& c, const evs::CommandMetadata& m) { payments.charge(c, m); }, ...);
//
// Checked at compile time: `correlate` names every listed event exactly once; every listed event has a
// handle(); a member named compensate or on_timeout (whatever its access) is callable as the hook; an
// old-style correlation_id member is refused. Private hooks and handlers work with `friend evs::SagaAccess;`.
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
// stores nothing new, and re-issues the same commands; the state keeps nothing per event reacted to.
// Deadlines are stored in the state and armed as Asio timers on the engine's io_context; when one passes,
// the timer appends evs.saga.deadline_reached to the instance stream, and the engine delivers it back like
// any other event, so a timeout survives restarts and is handled at least once like everything else.
// See docs/process-managers.md.
#pragma once

#include "evs/core/aggregate.hpp"
#include "evs/core/dispatch.hpp"
#include "evs/core/event.hpp"
#include "evs/eventstore/event_store.hpp"
#include "evs/eventstore/repository.hpp"
#include "evs/projections/engine.hpp"
#include "evs/projections/projection.hpp"
#include "evs/projections/saga_commands.hpp"
#include "evs/projections/saga_correlation.hpp"
#include "evs/projections/saga.hpp"
#include "evs/projections/saga_instance.hpp"
#include "evs/projections/saga_timers.hpp"

#include <boost/describe/enum.hpp>
#include <boost/describe/enum_from_string.hpp>
#include <boost/describe/enum_to_string.hpp>

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

// ---- The base class -------------------------------------------------------------------------------------

struct ProcessManagerOptions {
  RepositoryOptions repository;  // encoding of the instance streams (json: readable with SQL); snapshots
  int max_conflicts = 10;        // reloads after a concurrent change of one instance, then the event fails
  std::chrono::milliseconds timer_retry{1000};  // pause before retrying a failed deadline append or scan
  std::size_t scan_batch = 1000;                // events per read while re-arming deadlines at attach()
};

namespace detail {

// Finds a member named compensate / on_timeout / correlation_id whatever its access: if D declares one,
// the name is ambiguous in SagaHookProbe<D> and taking its address fails.
struct SagaHookFallback {
  void compensate();
  void on_timeout();
  void correlation_id();
};
template <class D>
struct SagaHookProbe : D, SagaHookFallback {};
template <class D>
concept declares_compensate = !requires { &SagaHookProbe<D>::compensate; };
template <class D>
concept declares_on_timeout = !requires { &SagaHookProbe<D>::on_timeout; };
template <class D>
concept declares_correlation_id = !requires { &SagaHookProbe<D>::correlation_id; };

}  // namespace detail

// Derived provides:
//  - static constexpr std::string_view name: the projection name and the instance streams' category
//    (letters, digits, '_'; no '-').
//  - static constexpr auto correlate = evs::by(...): one entry per event type in Events (saga_correlation.hpp).
//  - void handle(const E&, Saga&) or void handle(const E&, const evs::RecordedEvent&, Saga&) for each E in
//    Events.
// and optionally:
//  - void compensate(Step, Saga&): sends the compensating commands of a completed step.
//  - void on_timeout(Step, Saga&): replaces the default fail_step(step, "timed out ...").
// Step is a described enum (BOOST_DESCRIBE_ENUM); steps are stored by enumerator name, so renaming an
// enumerator that stored instances use makes their reactions fail with corrupt_payload.
// Handlers, hooks and `correlate` may be private with `friend evs::SagaAccess;`. A member named compensate
// or on_timeout that cannot be called as the hook, or one named correlation_id (the old correlation hook),
// is a compile error. Derived must not be final (the hook check derives from it).
// Handlers must decide from the saga's state and the event only: a reaction may run more than once (after
// a conflict, or to re-issue commands after a crash) and is expected to decide the same each time.
// Thread-safety: with ProjectionOptions::partitions > 1, reactions to events of different streams run
// concurrently (also for one instance; optimistic concurrency orders them).
template <class Derived, class Data, class Step, Event... Events>
class ProcessManager : public Projection {
  static_assert(std::is_enum_v<Step> && boost::describe::has_describe_enumerators<Step>::value,
                "a process manager's Step is an enum described with BOOST_DESCRIBE_ENUM (steps are stored by "
                "enumerator name)");

 public:
  using Saga = evs::Saga<Data, Step>;
  using Instance = SagaInstance<Derived>;
  using step_type = Step;
  using data_type = Data;

  // `store` must outlive the process manager. The process manager must outlive the engine it is attached to.
  explicit ProcessManager(EventStore& store, ProcessManagerOptions options = {})
      : store_(store), options_(options),
        timers_([this](const std::string& id, const detail::SagaDeadline& d) { return fire(id, d); },
                options.timer_retry) {
    static_assert(checked());
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
  // required) and its command handlers (saga_commands.hpp: each a callable of (const C&, const
  // CommandMetadata&) or (const C&), or a std::tuple of them), and, once the engine runs, re-arms the
  // deadlines of the open instances found in the log. Call once, before engine.start(). Throws
  // invalid_argument for two handlers of one command type, and what engine.add() throws. A broken
  // upcasting chain in the global registry stops the program here (engine.add() checks it).
  template <class... Handlers>
  void attach(ProjectionEngine& engine, ProjectionOptions options, Handlers&&... handlers) {
    (router_.add_handler(std::forward<Handlers>(handlers), Derived::name), ...);
    engine.add(*this, std::move(options));
    timers_.attach(engine.io_context());
    timers_.post([this] { return rearm_all(); });
  }

  // For tests (evs::testing::SagaScenario): every issued command goes to `sink` instead of its handler, and
  // commands without a handler are accepted. Call before the first reaction.
  void capture_commands(std::function<void(const IssuedCommand&)> sink) { router_.set_sink(std::move(sink)); }

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
  // Claims: a node arms the deadlines of the instances it reacts for; one that takes partitions over re-arms
  // those of every open instance, so a deadline armed by a node that died is armed again elsewhere. A
  // deadline armed on two nodes fires on both: firing re-reads the instance and appends
  // SagaDeadlineReached with an id derived from it, so it is stored and handled once.
  void on_partitions_taken() override { timers_.post([this] { return rearm_all(); }); }
  // Events... (and every old name upcast into them) plus evs.saga.deadline_reached (of every process
  // manager; others' are skipped by category).
  std::vector<std::string> event_types() const override {
    return stored_type_names<Events..., SagaDeadlineReached>();
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
                                         const std::optional<std::string> id = correlation_of(e, event);
                                         if (!id) return;
                                         react(*id, event, [&](Saga& saga) {
                                           if constexpr (handles_with_metadata<E>)
                                             SagaAccess::handle(derived(), e, event, saga);
                                           else if constexpr (handles_without_metadata<E>)
                                             SagaAccess::handle(derived(), e, saga);
                                         });
                                       });
    if (!r) throw Exception(r.error());
  }

 private:
  Derived& derived() { return static_cast<Derived&>(*this); }

  template <class E>
  static constexpr bool handles_with_metadata =
      requires(Derived& d, const E& e, const RecordedEvent& m, Saga& s) { SagaAccess::handle(d, e, m, s); };
  template <class E>
  static constexpr bool handles_without_metadata =
      requires(Derived& d, const E& e, Saga& s) { SagaAccess::handle(d, e, s); };

  // The compile-time checks of Derived (see above the class); static_assert(checked()) in the constructor.
  template <class E>
  static constexpr bool checked_event() {
    using Correlate = std::remove_cvref_t<decltype(SagaAccess::correlate<Derived>())>;
    static_assert(Correlate::template entries_for<E> > 0,
                  "the process manager's `correlate` has no entry for this event type (E): add &E::member, "
                  "evs::if_set(...), evs::from_metadata<E> or a function of (const E&) to evs::by(...)");
    static_assert(Correlate::template entries_for<E> < 2,
                  "the process manager's `correlate` has two entries for this event type (E): keep one");
    static_assert(handles_with_metadata<E> || handles_without_metadata<E>,
                  "the process manager needs handle(const E&, Saga&) or handle(const E&, const evs::RecordedEvent&, "
                  "Saga&) for each listed event type E (public, or private with `friend evs::SagaAccess;`)");
    return true;
  }
  static constexpr bool checked() {
    static_assert(!std::is_final_v<Derived>, "a process manager must not be final: its hooks are checked by deriving from it");
    static_assert(!detail::declares_correlation_id<Derived>,
                  "correlation_id(...) is no longer a process manager hook: declare `static constexpr auto correlate "
                  "= evs::by(&Event::member, ...)` with one entry per event type instead");
    if constexpr (detail::declares_compensate<Derived>)
      static_assert(requires(Derived& d, Step s, Saga& saga) { SagaAccess::compensate(d, s, saga); },
                    "the process manager declares a member named compensate that cannot be called as the hook "
                    "`void compensate(Step, Saga&)` (public, or private with `friend evs::SagaAccess;`)");
    if constexpr (detail::declares_on_timeout<Derived>)
      static_assert(requires(Derived& d, Step s, Saga& saga) { SagaAccess::on_timeout(d, s, saga); },
                    "the process manager declares a member named on_timeout that cannot be called as the hook "
                    "`void on_timeout(Step, Saga&)` (public, or private with `friend evs::SagaAccess;`)");
    static_assert(requires { SagaAccess::correlate<Derived>(); },
                  "the process manager needs `static constexpr auto correlate = evs::by(&Event::member, ...)` with "
                  "one entry per event type (public, or private with `friend evs::SagaAccess;`)");
    if constexpr (requires { SagaAccess::correlate<Derived>(); }) {
      using Correlate = std::remove_cvref_t<decltype(SagaAccess::correlate<Derived>())>;
      static_assert(is_correlation_v<Correlate>, "`correlate` must be made with evs::by(...)");
      if constexpr (is_correlation_v<Correlate>) {
        static_assert(Correlate::template only_for<Events...>,
                      "the process manager's `correlate` has an entry for an event type it does not list");
        return (checked_event<Events>() && ...);
      }
    }
    return true;
  }

  // The key of the instance `e` belongs to, or nullopt if it belongs to none (if_set, or a nullopt key).
  // An empty key from any other entry throws, so the engine retries the event and then parks it.
  template <class E>
  std::optional<std::string> correlation_of(const E& e, const RecordedEvent& meta) {
    bool optional = false;
    std::optional<std::string> key = SagaAccess::correlate<Derived>().key(e, meta, optional);
    if (key && key->empty()) {
      if (optional) return std::nullopt;
      throw Exception(errc::invalid_argument,
                      "process manager " + std::string(Derived::name) + ": event " + meta.type + " (" +
                          std::string(detail::unqualified_type_name<E>()) + ") at position " +
                          std::to_string(meta.position) + " of stream " + meta.stream_id +
                          " has an empty correlation key; wrap its entry in evs::if_set(...) if such events "
                          "belong to no instance");
    }
    return key;
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
                                                     const Step step = detail::parse_step<Step>(d.step, Derived::name);
                                                     if constexpr (detail::declares_on_timeout<Derived>)
                                                       SagaAccess::on_timeout(derived(), step, saga);
                                                     else
                                                       saga.fail_step(step, "timed out: no answer before the deadline");
                                                   });
                                                 });
    if (!r) throw Exception(r.error());
  }

  // Runs `decide` on a fresh Saga over `instance`, after recording the reaction's first events. Returns
  // the commands to issue; `changed` tells whether the decision recorded anything.
  template <class Decide>
  std::vector<IssuedCommand> decide_on(Instance& instance, const std::string& id, const RecordedEvent& cause,
                                              Decide& decide, bool& changed) {
    const std::uint64_t before = instance.version();
    if (before == 0) instance.record(SagaStarted{id});
    instance.record(SagaEventHandled{cause.event_id, cause.type, cause.stream_id, before});
    const std::size_t baseline = instance.pending_events().size();
    const std::string old_data = instance.state().data.empty() ? encode(Data{}, Encoding::json) : instance.state().data;
    Saga saga(
        instance.state(), [&instance](SagaEvent e) { instance.record(std::move(e)); },
        [this](Step step, Saga& s) {
          if constexpr (detail::declares_compensate<Derived>)
            SagaAccess::compensate(derived(), step, s);
          else
            (void)this, (void)step, (void)s;  // no compensate hook: nothing to undo
        },
        router_, Derived::name, id, instance.stream_id(), cause.event_id, before, decode_data(instance.state().data));
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

  void issue(const std::vector<IssuedCommand>& commands) const {
    for (const auto& c : commands) router_.issue(c);
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
  detail::CommandRouter router_;  // filled by attach(), then only read
  detail::SagaTimers timers_;
};

}  // namespace evs
