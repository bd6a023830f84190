// Projections: named consumers of the event log, each at its own position (like consumer groups reading
// one Kafka log). Three kinds, declared by deriving from one of the typed bases below:
//
//   class OrdersByCustomer : public evs::SqlProjection<OrdersByCustomer, OrderPlaced, OrderCancelled> {
//    public:
//     static constexpr std::string_view name = "orders_by_customer";
//     void setup(evs::SqlSession& db) { db.exec("CREATE TABLE IF NOT EXISTS orders(...)"); }
//     void handle(const OrderPlaced& e, evs::SqlSession& db) { ... }
//     void handle(const OrderCancelled& e, const evs::RecordedEvent& meta, evs::SqlSession& db) { ... }
//   };
//
//   class Totals : public evs::MemoryProjection<Totals, OrderPlaced> {          // in-memory view
//     void handle(const OrderPlaced& e);
//   };
//   class SendConfirmation : public evs::EffectHandler<SendConfirmation, OrderPlaced> {   // side effects
//     void handle(const OrderPlaced& e, const evs::RecordedEvent& meta);  // throw to fail (retried)
//   };
//
// Each handler takes the event alone, or the event and its envelope (`meta`: stream id, position, event id,
// recorded time, metadata) when it needs them; SQL handlers take the session last. A type may mix the two
// forms; if both exist for one event type, the one with the envelope is called.
// A projection lists the event types it handles: catch-up filters on them in SQL, and a missing handle()
// overload for a listed type is a compile error. A handler fails by throwing; what happens then is the
// projection's RetryPolicy. With partitions > 1, handle() runs concurrently for events of different
// streams (never for two events of one stream), so the handler must be safe for that.
#pragma once

#include "evs/core/dispatch.hpp"
#include "evs/core/envelope.hpp"
#include "evs/projections/sql_session.hpp"

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <limits>
#include <string>
#include <string_view>
#include <type_traits>
#include <vector>

namespace evs {

enum class ProjectionKind : std::uint8_t {
  sql,     // writes a SQLite read model; its changes and checkpoint commit in one transaction
  memory,  // an in-memory view, rebuilt from the log at every start
  effect,  // side effects: at-least-once delivery, deduplicated by an inbox of processed event ids
};

// What to do with an event whose handler keeps failing.
enum class OnFailure : std::uint8_t {
  park,  // record it in the dead-letter table with the error and attempt count, and go on
  stop,  // stop the projection (state failed) at that event; a restart retries it
};

struct RetryPolicy {
  int max_attempts = 5;                          // including the first; 1 = no retry
  std::chrono::milliseconds initial_backoff{20};  // wait before the 2nd attempt
  double multiplier = 2.0;                        // each further wait grows by this factor
  std::chrono::milliseconds max_backoff{5000};
  double jitter = 0.2;                            // each wait is randomized by +/- this fraction
  OnFailure on_exhausted = OnFailure::park;
};

struct ProjectionOptions {
  // SQL and effect projections: the SQLite file that holds the read model (sql) and the projection's
  // checkpoints, dead letters and inbox. It may be the event store's own file or a separate one.
  // Memory projections: optional; when set, dead letters are recorded there too.
  std::filesystem::path database;
  std::size_t partitions = 1;    // >1: events are routed by stream id to parallel partitions
  std::size_t batch_size = 500;  // events read and committed per batch
  RetryPolicy retry;
  // Process only events at or before this position (time travel: build a read model as of a point in
  // history). The projection then waits, as if live, at that position.
  std::uint64_t until_position = std::numeric_limits<std::uint64_t>::max();
  // Effect projections: how long an event id stays in the inbox after its effect. A row is only needed
  // while its event can still be delivered again (a power loss rolling back the last commits, a changed
  // partition count, a reset checkpoint). Older rows are deleted, at most once an hour (or once per
  // retention when that is shorter) and in small transactions, except those of events that have a
  // dead-letter row. Zero or less: never deleted.
  std::chrono::milliseconds inbox_retention = std::chrono::hours(24 * 7);
  // Several worker processes ("nodes") may run this SQL or effect projection over one projection database:
  // give each a `node` name unique among them. Each partition is then worked by one node at a time, under
  // a claim in the database (evs_claims) with a lease of `lease`, renewed while the node works and given
  // up when it stops; a node whose lease ran out (killed, paused, cut off) loses the partition to the next
  // node that claims it, and a batch it still commits is rolled back (fenced). See docs/projections.md,
  // "Several nodes". Empty (the default): this process works every partition without claims. Memory
  // projections ignore it (every process keeps its own view).
  std::string node;
  std::chrono::milliseconds lease = std::chrono::seconds(10);
};

// The type-erased projection the engine runs. Implemented by the typed bases; rarely implemented by hand.
class Projection {
 public:
  virtual ~Projection() = default;
  virtual std::string_view name() const = 0;
  virtual ProjectionKind kind() const = 0;
  // Stable names of the handled event types (never empty).
  virtual std::vector<std::string> event_types() const = 0;
  // SQL projections: creates the read model's tables; runs in a transaction before the first batch.
  // Must be idempotent (CREATE TABLE IF NOT EXISTS ...).
  virtual void setup(SqlSession& session) { (void)session; }
  // Handles one event of a listed type. `session` is the open transaction for SQL projections and null
  // for the others. Throws on failure, including evs::Exception(corrupt_payload / unknown schema version)
  // when the payload does not decode, which the retry policy treats like any other failure.
  // SQL projections: may run more than once for an event (a batch in which a handler fails is rolled back
  // and rerun), and only one run's writes commit; so write only through `session`, and never end its
  // transaction (a handler statement that makes SQLite roll back stops the batch as a storage failure).
  virtual void handle(const RecordedEvent& event, SqlSession* session) = 0;
  // Claims (ProjectionOptions::node): called on the engine's thread after this node took partitions whose
  // earlier events another node handled: state kept beside the handlers (a process manager's deadline
  // timers) is restored here. Never called without claims.
  virtual void on_partitions_taken() {}
};

namespace detail {

template <class D, class E>
concept HandlesWithMetaAndSession =
    requires(D& d, const E& e, const RecordedEvent& m, SqlSession& s) { d.handle(e, m, s); };
template <class D, class E>
concept HandlesWithSession = requires(D& d, const E& e, SqlSession& s) { d.handle(e, s); };
template <class D, class E>
concept HandlesWithMeta = requires(D& d, const E& e, const RecordedEvent& m) { d.handle(e, m); };
template <class D, class E>
concept HandlesEventOnly = requires(D& d, const E& e) { d.handle(e); };

// Whether a projection of kind K has a handler, in either form, for E.
template <class D, class E, ProjectionKind K>
concept HasHandler = (K == ProjectionKind::sql && (HandlesWithMetaAndSession<D, E> || HandlesWithSession<D, E>)) ||
                     (K != ProjectionKind::sql && (HandlesWithMeta<D, E> || HandlesEventOnly<D, E>));

template <class Derived, ProjectionKind Kind, Event... Events>
class TypedProjection : public Projection {
 public:
  static constexpr ProjectionKind projection_kind = Kind;

  std::string_view name() const override { return Derived::name; }
  ProjectionKind kind() const override { return Kind; }
  // Events' names and every old name that upcasts into one of them.
  std::vector<std::string> event_types() const override { return stored_type_names<Events...>(); }
  void handle(const RecordedEvent& event, SqlSession* session) override {
    static const std::string owner = "projection " + std::string(Derived::name);  // built once, not per event
    auto r = dispatch_event<Events...>(event, owner, [&](const auto& e) {
      using E = std::remove_cvref_t<decltype(e)>;
      auto& self = static_cast<Derived&>(*this);
      if constexpr (Kind == ProjectionKind::sql) {
        if constexpr (HandlesWithMetaAndSession<Derived, E>)
          self.handle(e, event, *session);
        else if constexpr (HandlesWithSession<Derived, E>)
          self.handle(e, *session);
      } else {
        if constexpr (HandlesWithMeta<Derived, E>)
          self.handle(e, event);
        else if constexpr (HandlesEventOnly<Derived, E>)
          self.handle(e);
      }
    });
    if (!r) throw Exception(r.error());
  }

 protected:
  ~TypedProjection() override {
    if constexpr (Kind == ProjectionKind::sql)
      static_assert((HasHandler<Derived, Events, Kind> && ...),
                    "a SqlProjection needs, for each listed event type E, a public handle(const E&, evs::SqlSession&) "
                    "or handle(const E&, const evs::RecordedEvent&, evs::SqlSession&)");
    else
      static_assert((HasHandler<Derived, Events, Kind> && ...),
                    "a MemoryProjection or EffectHandler needs, for each listed event type E, a public "
                    "handle(const E&) or handle(const E&, const evs::RecordedEvent&)");
  }
};

}  // namespace detail

template <class Derived, Event... Events>
class SqlProjection : public detail::TypedProjection<Derived, ProjectionKind::sql, Events...> {};

template <class Derived, Event... Events>
class MemoryProjection : public detail::TypedProjection<Derived, ProjectionKind::memory, Events...> {};

template <class Derived, Event... Events>
class EffectHandler : public detail::TypedProjection<Derived, ProjectionKind::effect, Events...> {};

}  // namespace evs
