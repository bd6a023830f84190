// Process managers (sagas), both styles:
//  - orchestration: a coordinator (OrderFulfilment) issues commands and compensates: the happy path, a
//    failing step, a timed-out step, a failing command re-issued with the same id, and restarts with a
//    step pending (the deadline is re-armed from the stored state, or the late reply completes the saga),
//    and causes delivered again (nothing stored twice, the same commands re-issued);
//  - choreography: services are plain EffectHandlers reacting to each other's events; the compensation is
//    a reaction to a failure event; no coordinator state.
// Timeouts are short; every wait is bounded polling on an observable outcome, never an assertion on a sleep.
#include "../support/result_printing.hpp"
#include "../support/shop_events.hpp"
#include "../support/temp_dir.hpp"

#include <evs/eventstore/sqlite_event_store.hpp>
#include <evs/projections/engine.hpp>
#include <evs/projections/process_manager.hpp>
#include <evs/testing/saga_scenario.hpp>

#include <doctest/doctest.h>

#include <atomic>
#include <mutex>
#include <stdexcept>
#include <thread>

namespace sagatest {

using namespace std::chrono_literals;
using shop::OrderCancelled;
using shop::OrderPlaced;

// ---- Replies of the services (events) -------------------------------------------------------------------

struct PaymentCharged {
  std::string order_id;
  std::int64_t amount_cents = 0;
};
BOOST_DESCRIBE_STRUCT(PaymentCharged, (), (order_id, amount_cents))
EVS_EVENT(PaymentCharged, "sagatest.payment_charged", 1)

struct PaymentRefunded {
  std::string order_id;
  std::int64_t amount_cents = 0;
};
BOOST_DESCRIBE_STRUCT(PaymentRefunded, (), (order_id, amount_cents))
EVS_EVENT(PaymentRefunded, "sagatest.payment_refunded", 1)

struct InventoryReserved {
  std::string order_id;
};
BOOST_DESCRIBE_STRUCT(InventoryReserved, (), (order_id))
EVS_EVENT(InventoryReserved, "sagatest.inventory_reserved", 1)

struct InventoryReservationFailed {
  std::string order_id;
  std::string reason;
};
BOOST_DESCRIBE_STRUCT(InventoryReservationFailed, (), (order_id, reason))
EVS_EVENT(InventoryReservationFailed, "sagatest.inventory_reservation_failed", 1)

struct OrderShipped {
  std::string order_id;
};
BOOST_DESCRIBE_STRUCT(OrderShipped, (), (order_id))
EVS_EVENT(OrderShipped, "sagatest.order_shipped", 1)

// ---- Commands (described structs: not stored, named in the audit trail) --------------------------------

struct ChargePayment { std::string order_id; std::int64_t amount_cents = 0; };
BOOST_DESCRIBE_STRUCT(ChargePayment, (), (order_id, amount_cents))
struct ReserveInventory { std::string order_id; };
BOOST_DESCRIBE_STRUCT(ReserveInventory, (), (order_id))
struct ShipOrder { std::string order_id; };
BOOST_DESCRIBE_STRUCT(ShipOrder, (), (order_id))
struct RefundPayment { std::string order_id; std::int64_t amount_cents = 0; };
BOOST_DESCRIBE_STRUCT(RefundPayment, (), (order_id, amount_cents))
struct CancelOrder { std::string order_id; std::string reason; };
BOOST_DESCRIBE_STRUCT(CancelOrder, (), (order_id, reason))

template <class E>
evs::EventData event_with(const E& e, evs::Uuid id, evs::EventMetadata metadata) {
  evs::EventData d = shop::make(e);
  d.event_id = id;
  d.metadata = std::move(metadata);
  return d;
}

static void append_or_throw(evs::EventStore& store, const std::string& stream, const evs::EventData& d) {
  auto r = store.append(stream, evs::ExpectedVersion::any(), std::span<const evs::EventData>(&d, 1));
  if (!r) throw evs::Exception(r.error());
}

// Fake services behind the commands. Each command appends its reply with the command id as event id and
// the command's event metadata, so a re-issued command stores nothing twice and the reply carries the
// saga's correlation id.
class Services {
 public:
  enum class Inventory { reserve, reject, silent };

  explicit Services(evs::EventStore& store) : store_(store) {}

  std::atomic<Inventory> inventory{Inventory::reserve};
  std::atomic<int> charge_failures{0};  // ChargePayment throws this many times before it works

  struct Received {
    std::string command;
    evs::CommandMetadata metadata;
  };

  // The command handlers, as passed to attach(): (const C&, const CommandMetadata&) and (const C&) forms.
  auto handlers() {
    return std::tuple(
        [this](const ChargePayment& cmd, const evs::CommandMetadata& m) {
          receive("ChargePayment", m);
          if (charge_failures > 0) {
            --charge_failures;
            throw std::runtime_error("payment gateway unavailable");
          }
          reply("payment-" + cmd.order_id, PaymentCharged{cmd.order_id, cmd.amount_cents}, m);
        },
        [this](const ReserveInventory& cmd, const evs::CommandMetadata& m) {
          receive("ReserveInventory", m);
          if (inventory == Inventory::reserve) reply("inventory-" + cmd.order_id, InventoryReserved{cmd.order_id}, m);
          if (inventory == Inventory::reject)
            reply("inventory-" + cmd.order_id, InventoryReservationFailed{cmd.order_id, "out of stock"}, m);
        },
        [this](const ShipOrder& cmd, const evs::CommandMetadata& m) {
          receive("ShipOrder", m);
          reply("shipment-" + cmd.order_id, OrderShipped{cmd.order_id}, m);
        },
        [this](const RefundPayment& cmd, const evs::CommandMetadata& m) {
          receive("RefundPayment", m);
          reply("payment-" + cmd.order_id, PaymentRefunded{cmd.order_id, cmd.amount_cents}, m);
        },
        [this](const CancelOrder& cmd, const evs::CommandMetadata& m) {
          receive("CancelOrder", m);
          reply("order-" + cmd.order_id, OrderCancelled{cmd.order_id, cmd.reason}, m);
        });
  }

  std::vector<Received> received() const {
    std::lock_guard lock(mutex_);
    return received_;
  }
  std::vector<std::string> names() const {
    std::vector<std::string> out;
    for (const auto& r : received()) out.push_back(r.command);
    return out;
  }
  bool got(std::string_view command) const {
    for (const auto& r : received())
      if (r.command == command) return true;
    return false;
  }

 private:
  void receive(std::string name, const evs::CommandMetadata& m) {
    std::lock_guard lock(mutex_);
    received_.push_back({std::move(name), m});
  }
  template <class E>
  void reply(const std::string& stream, const E& e, const evs::CommandMetadata& m) {
    append_or_throw(store_, stream, event_with(e, m.command_id, m.event_metadata()));
  }

  evs::EventStore& store_;
  mutable std::mutex mutex_;
  std::vector<Received> received_;
};

// ---- Orchestration: the coordinator ---------------------------------------------------------------------

struct FulfilmentData {
  std::string order_id;
  std::int64_t amount_cents = 0;
};
BOOST_DESCRIBE_STRUCT(FulfilmentData, (), (order_id, amount_cents))

enum class FulfilmentStep { order, payment, inventory };
BOOST_DESCRIBE_ENUM(FulfilmentStep, order, payment, inventory)

// OrderPlaced -> ChargePayment; PaymentCharged -> ReserveInventory (with a deadline); InventoryReserved ->
// ShipOrder; InventoryReservationFailed or the deadline -> RefundPayment + CancelOrder (compensation of
// the completed steps "payment" and "order", newest first).
class OrderFulfilment : public evs::ProcessManager<OrderFulfilment, FulfilmentData, FulfilmentStep, OrderPlaced,
                                                   PaymentCharged, InventoryReserved, InventoryReservationFailed> {
 public:
  using Step = FulfilmentStep;
  static constexpr std::string_view name = "fulfilment";
  // The order id is the correlation id. The replies carry it in their metadata (the services answer with
  // the command's event_metadata()); each entry form is used once.
  static constexpr auto correlate =
      evs::by(&OrderPlaced::order_id, evs::from_metadata<PaymentCharged>,
              evs::if_set(evs::from_metadata<InventoryReserved>),
              [](const InventoryReservationFailed&, const evs::RecordedEvent& m) -> std::optional<std::string> {
                if (m.metadata.correlation_id.empty()) return std::nullopt;
                return m.metadata.correlation_id;
              });

  OrderFulfilment(evs::EventStore& store, std::chrono::milliseconds reservation_timeout,
                  evs::ProcessManagerOptions options = {})
      : ProcessManager(store, options), reservation_timeout_(reservation_timeout) {}

  void handle(const OrderPlaced& e, Saga& saga) {
    if (!saga.is_new()) return;  // the same order placed twice
    saga.data() = {e.order_id, e.total_cents};
    saga.complete_step(Step::order);
    saga.start_step(Step::payment);
    saga.send(ChargePayment{e.order_id, e.total_cents});
  }
  void handle(const PaymentCharged&, const evs::RecordedEvent&, Saga& saga) {
    if (!saga.is_pending(Step::payment)) return;
    saga.complete_step(Step::payment);
    saga.start_step(Step::inventory, reservation_timeout_);
    saga.send(ReserveInventory{saga.data().order_id});
  }

 private:
  friend evs::SagaAccess;  // the handlers and the hook below are private

  void handle(const InventoryReserved&, Saga& saga) {
    if (!saga.is_pending(Step::inventory)) return;  // too late: the saga compensated already
    saga.complete_step(Step::inventory);
    saga.send(ShipOrder{saga.data().order_id});
    saga.complete();
  }
  void handle(const InventoryReservationFailed& e, Saga& saga) {
    if (!saga.is_pending(Step::inventory)) return;
    saga.fail_step(Step::inventory, e.reason);
  }

  void compensate(Step step, Saga& saga) {
    const FulfilmentData& d = saga.data();
    if (step == Step::payment) saga.send(RefundPayment{d.order_id, d.amount_cents});
    if (step == Step::order) saga.send(CancelOrder{d.order_id, saga.reason()});
  }

  std::chrono::milliseconds reservation_timeout_;
};

// ---- Helpers --------------------------------------------------------------------------------------------

static std::unique_ptr<evs::SqliteEventStore> open_store(const std::filesystem::path& path) {
  evs::SqliteOptions o;
  o.path = path;
  o.durability = evs::Durability::normal;
  return std::make_unique<evs::SqliteEventStore>(o);
}

template <class F>
bool poll_until(F&& done, std::chrono::milliseconds limit = 20s) {
  const auto until = std::chrono::steady_clock::now() + limit;
  while (!done()) {
    if (std::chrono::steady_clock::now() >= until) return done();
    std::this_thread::sleep_for(2ms);
  }
  return true;
}

static std::vector<evs::RecordedEvent> read(evs::EventStore& store, const std::string& stream) {
  auto r = store.read_stream(stream);
  if (!r) return {};
  return *r;
}

static std::vector<std::string> types(evs::EventStore& store, const std::string& stream) {
  std::vector<std::string> out;
  for (const auto& e : read(store, stream)) out.push_back(e.type);
  return out;
}

static bool contains(const std::vector<std::string>& v, std::string_view s) {
  return std::find(v.begin(), v.end(), s) != v.end();
}

// A store, the fake services, the saga and an engine on the files of one directory: one "process".
struct Shop {
  Shop(const evs::test::TempDir& dir, std::chrono::milliseconds reservation_timeout,
       evs::ProcessManagerOptions saga_options = {})
      : store(open_store(dir / "events.db")),
        services(*store),
        saga(*store, reservation_timeout, saga_options),
        engine(*store) {
    evs::ProjectionOptions po;
    po.database = dir / "projections.db";
    po.retry.initial_backoff = 10ms;
    po.retry.max_attempts = 4;
    saga.attach(engine, po, services.handlers());
  }

  evs::AppendResult place_order(const std::string& id, std::int64_t cents) {
    auto r = store->append("order-" + id, evs::ExpectedVersion::no_stream(),
                           std::vector<evs::EventData>{shop::make(OrderPlaced{id, "cust-1", cents})});
    REQUIRE(r);
    return *r;
  }
  std::optional<evs::SagaInstanceState> state(const std::string& id) {
    auto s = saga.instance(id);
    if (!s) return std::nullopt;
    return *s;
  }
  bool status_is(const std::string& id, evs::SagaStatus status) {
    auto s = state(id);
    return s && s->status == status;
  }

  std::unique_ptr<evs::SqliteEventStore> store;
  Services services;
  OrderFulfilment saga;
  evs::ProjectionEngine engine;
};

static std::vector<std::string> saga_names(std::initializer_list<std::string_view> short_names) {
  std::vector<std::string> out;
  for (auto n : short_names) out.push_back("evs.saga." + std::string(n));
  return out;
}

}  // namespace sagatest

using namespace sagatest;

// ---------------------------------------------------------------------------------------------------------
// Orchestration

TEST_CASE("saga orchestration: the happy path issues each command once, with correlation and causation ids") {
  evs::test::TempDir dir;
  Shop shop(dir, 10s);
  shop.engine.start();
  const auto placed = shop.place_order("o1", 2500);

  REQUIRE(poll_until([&] { return shop.status_is("o1", evs::SagaStatus::completed) && shop.services.got("ShipOrder"); }));
  CHECK(shop.services.names() == std::vector<std::string>{"ChargePayment", "ReserveInventory", "ShipOrder"});

  // Commands carry the correlation id, and as causation id the event the saga reacted to. The replies use
  // the command id as event id, so each command's causation is the previous command's reply.
  const auto got = shop.services.received();
  const auto order_placed = read(*shop.store, "order-o1").at(0);
  for (const auto& r : got) CHECK(r.metadata.correlation_id == "o1");
  CHECK(got[0].metadata.causation_id == order_placed.event_id.to_string());
  CHECK(got[1].metadata.causation_id == got[0].metadata.command_id.to_string());
  CHECK(got[2].metadata.causation_id == got[1].metadata.command_id.to_string());
  const auto charged = read(*shop.store, "payment-o1").at(0);
  CHECK(charged.metadata.correlation_id == "o1");
  CHECK(charged.metadata.causation_id == got[0].metadata.command_id.to_string());

  // The instance stream is the audit trail: one reaction per event, each caused by that event.
  const auto trail = read(*shop.store, OrderFulfilment::stream_id_for("o1"));
  std::vector<std::string> trail_types;
  for (const auto& e : trail) trail_types.push_back(e.type);
  CHECK(trail_types == saga_names({"started", "event_handled", "step_completed", "step_started", "command_issued",
                                   "data_changed",                                                    // OrderPlaced
                                   "event_handled", "step_completed", "step_started", "command_issued",  // PaymentCharged
                                   "event_handled", "step_completed", "command_issued", "ended"}));    // InventoryReserved
  for (const auto& e : trail) CHECK(e.metadata.correlation_id == "o1");
  CHECK(trail.front().metadata.causation_id == order_placed.event_id.to_string());
  CHECK(trail.back().metadata.causation_id == got[1].metadata.command_id.to_string());

  const auto state = shop.state("o1").value();
  CHECK(state.completed == std::vector<std::string>{"order", "payment", "inventory"});
  CHECK(state.pending.empty());
  CHECK(shop.saga.data("o1")->amount_cents == 2500);
  // The reply came first: the reservation deadline's timer is cancelled.
  CHECK(poll_until([&] { return shop.saga.armed_timers() == 0; }));
  CHECK(shop.engine.wait_for("fulfilment", placed.last_position, 5s));
  CHECK(shop.engine.health("fulfilment")->dead_letters == 0);
}

TEST_CASE("saga orchestration: a failing step compensates the completed steps, newest first") {
  evs::test::TempDir dir;
  Shop shop(dir, 10s);
  shop.services.inventory = Services::Inventory::reject;
  shop.engine.start();
  shop.place_order("o2", 1200);

  REQUIRE(poll_until([&] { return shop.services.got("CancelOrder"); }));
  CHECK(shop.services.names() ==
        std::vector<std::string>{"ChargePayment", "ReserveInventory", "RefundPayment", "CancelOrder"});
  const auto state = shop.state("o2").value();
  CHECK(state.status == evs::SagaStatus::compensated);
  CHECK(state.failed_step == "inventory");
  CHECK(state.reason == "out of stock");
  CHECK(state.compensated == std::vector<std::string>{"payment", "order"});
  CHECK(state.pending.empty());

  REQUIRE(poll_until([&] { return types(*shop.store, "order-o2").size() == 2; }));
  CHECK(types(*shop.store, "payment-o2") ==
        std::vector<std::string>{"sagatest.payment_charged", "sagatest.payment_refunded"});
  CHECK(types(*shop.store, "order-o2") == std::vector<std::string>{"shop.order_placed", "shop.order_cancelled"});
  CHECK(read(*shop.store, "order-o2").at(1).metadata.correlation_id == "o2");
  CHECK(types(*shop.store, "shipment-o2").empty());
  CHECK(poll_until([&] { return shop.saga.armed_timers() == 0; }));
}

TEST_CASE("saga orchestration: a step that does not answer in time fails and is compensated, and a late answer is ignored") {
  evs::test::TempDir dir;
  Shop shop(dir, 100ms);
  shop.services.inventory = Services::Inventory::silent;
  shop.engine.start();
  shop.place_order("o3", 900);

  REQUIRE(poll_until([&] { return shop.services.got("CancelOrder"); }));
  CHECK(shop.services.names() ==
        std::vector<std::string>{"ChargePayment", "ReserveInventory", "RefundPayment", "CancelOrder"});
  const auto state = shop.state("o3").value();
  CHECK(state.status == evs::SagaStatus::compensated);
  CHECK(state.failed_step == "inventory");
  CHECK(state.reason.starts_with("timed out"));
  CHECK(state.compensated == std::vector<std::string>{"payment", "order"});
  CHECK(contains(types(*shop.store, OrderFulfilment::stream_id_for("o3")), "evs.saga.deadline_reached"));
  CHECK(shop.saga.armed_timers() == 0);

  // The inventory service answers after all: the saga has ended, nothing is shipped.
  const auto reserve = shop.services.received().at(1);
  evs::EventData late = event_with(InventoryReserved{"o3"}, reserve.metadata.command_id, reserve.metadata.event_metadata());
  append_or_throw(*shop.store, "inventory-o3", late);
  REQUIRE(shop.engine.wait_for("fulfilment", shop.store->last_position().value(), 10s));
  CHECK_FALSE(shop.services.got("ShipOrder"));
  CHECK(shop.state("o3")->status == evs::SagaStatus::compensated);
  CHECK(shop.engine.health("fulfilment")->dead_letters == 0);
}

TEST_CASE("saga orchestration: a command that throws is re-issued with the same command id, and recorded once") {
  evs::test::TempDir dir;
  Shop shop(dir, 10s);
  shop.services.charge_failures = 2;  // the engine retries the OrderPlaced event; the saga re-issues
  shop.engine.start();
  shop.place_order("o6", 700);

  REQUIRE(poll_until([&] { return shop.status_is("o6", evs::SagaStatus::completed) && shop.services.got("ShipOrder"); }));
  const auto got = shop.services.received();
  REQUIRE(got.size() == 5);
  CHECK(shop.services.names() ==
        std::vector<std::string>{"ChargePayment", "ChargePayment", "ChargePayment", "ReserveInventory", "ShipOrder"});
  CHECK(got[0].metadata.command_id == got[1].metadata.command_id);
  CHECK(got[1].metadata.command_id == got[2].metadata.command_id);
  const auto trail = types(*shop.store, OrderFulfilment::stream_id_for("o6"));
  CHECK(std::count(trail.begin(), trail.end(), "evs.saga.command_issued") == 3);  // Charge, Reserve, Ship
  CHECK(std::count(trail.begin(), trail.end(), "evs.saga.event_handled") == 3);
  CHECK(shop.engine.health("fulfilment")->dead_letters == 0);
}

TEST_CASE("saga orchestration: a cause delivered again stores nothing and re-issues the same commands, also after the saga moved on") {
  // Without snapshots, and with a snapshot after every reaction (which covers the reactions to redeliver).
  for (const std::uint64_t snapshot_every : {std::uint64_t{0}, std::uint64_t{1}}) {
    CAPTURE(snapshot_every);
    evs::test::TempDir dir;
    evs::ProcessManagerOptions options;
    options.repository.snapshot_every = snapshot_every;
    Shop shop(dir, 10s, options);
    shop.engine.start();
    shop.place_order("o9", 900);
    REQUIRE(poll_until([&] { return shop.status_is("o9", evs::SagaStatus::completed) && shop.services.got("ShipOrder"); }));
    const std::string stream = OrderFulfilment::stream_id_for("o9");
    const auto version = shop.store->stream_version(stream);
    REQUIRE(version);
    const auto first = shop.services.received();
    REQUIRE(first.size() == 3);  // ChargePayment, ReserveInventory, ShipOrder

    // Both causes are delivered again (as after a crash before the inbox commit, or a replay), long after
    // the saga reacted to later causes too.
    const auto placed = read(*shop.store, "order-o9");
    const auto charged = read(*shop.store, "payment-o9");
    REQUIRE(placed.size() == 1);
    REQUIRE(charged.size() == 1);
    evs::Projection& engine_side = shop.saga;  // the engine's entry point (the saga's handle() hides it)
    for (int round = 0; round < 2; ++round) {
      engine_side.handle(placed[0], nullptr);
      engine_side.handle(charged[0], nullptr);
    }

    CHECK(*shop.store->stream_version(stream) == *version);  // nothing appended
    const auto got = shop.services.received();
    REQUIRE(got.size() == 7);
    CHECK(got[3].command == "ChargePayment");
    CHECK(got[3].metadata.command_id == first[0].metadata.command_id);
    CHECK(got[4].command == "ReserveInventory");
    CHECK(got[4].metadata.command_id == first[1].metadata.command_id);
    CHECK(got[5].metadata.command_id == first[0].metadata.command_id);
    CHECK(got[6].metadata.command_id == first[1].metadata.command_id);
    const auto state = shop.state("o9");
    REQUIRE(state);
    CHECK(state->status == evs::SagaStatus::completed);
    // The state keeps nothing per event reacted to: no cause's id is in it.
    const std::string json = evs::encode(*state, evs::Encoding::json);
    for (const auto& cause : {placed[0], charged[0]}) CHECK(json.find(cause.event_id.to_string()) == std::string::npos);
    CHECK(shop.engine.health("fulfilment")->dead_letters == 0);
  }
}

TEST_CASE("saga orchestration: an event whose correlation key is empty is parked as a dead letter, unless its entry is if_set") {
  evs::test::TempDir dir;
  Shop shop(dir, 10s);
  shop.engine.start();
  // PaymentCharged correlates by evs::from_metadata: without a correlation id it belongs to no instance we
  // know of, which is an error, not a silent drop.
  auto orphan = shop.store->append("payment-x", evs::ExpectedVersion::any(),
                                   std::vector<evs::EventData>{shop::make(PaymentCharged{"x", 1})});
  REQUIRE(orphan);
  // InventoryReserved correlates by evs::if_set(evs::from_metadata): without one it is deliberately ignored.
  auto ignored = shop.store->append("inventory-x", evs::ExpectedVersion::any(),
                                    std::vector<evs::EventData>{shop::make(InventoryReserved{"x"})});
  REQUIRE(ignored);
  REQUIRE(shop.engine.wait_for("fulfilment", ignored->last_position, 20s));

  const auto health = shop.engine.health("fulfilment");
  REQUIRE(health);
  CHECK(health->dead_letters == 1);  // the PaymentCharged; the InventoryReserved was ignored
  CHECK(health->last_error.find("process manager fulfilment: event sagatest.payment_charged (PaymentCharged) at "
                                "position " + std::to_string(orphan->last_position) +
                                " of stream payment-x has an empty correlation key") != std::string::npos);
  evs::ReadAllFilter sagas;
  sagas.categories = {"fulfilment"};
  CHECK(shop.store->read_all(1, 10, sagas)->events.empty());
  CHECK(shop.services.received().empty());
}

// A store, the services, an unattached saga and an engine that is not started: for tests that attach the
// saga themselves (with their own handlers).
struct UnattachedSaga {
  evs::test::TempDir dir;
  std::unique_ptr<evs::SqliteEventStore> store = open_store(dir / "events.db");
  Services services{*store};
  OrderFulfilment saga{*store, 10s};
  evs::ProjectionEngine engine{*store};
  evs::ProjectionOptions po = [this] {
    evs::ProjectionOptions o;
    o.database = dir / "projections.db";
    return o;
  }();
};

TEST_CASE("saga orchestration: a command without a handler fails the reaction before anything is stored") {
  UnattachedSaga rig;
  auto& [dir, store, services, saga, engine, po] = rig;
  po.retry.initial_backoff = 1ms;
  po.retry.max_attempts = 2;
  // Every handler but ChargePayment's, the command OrderPlaced sends.
  auto [charge, reserve, ship, refund, cancel] = services.handlers();
  (void)charge;
  saga.attach(engine, po, reserve, ship, refund, cancel);
  engine.start();
  auto r = store->append("order-o7", evs::ExpectedVersion::no_stream(),
                         std::vector<evs::EventData>{shop::make(OrderPlaced{"o7", "cust-1", 100})});
  REQUIRE(r);
  REQUIRE(engine.wait_for("fulfilment", r->last_position, 20s));
  CHECK(engine.health("fulfilment")->dead_letters == 1);
  CHECK(engine.health("fulfilment")->last_error.find(
            "process manager fulfilment sends command ChargePayment, but no handler for it was passed to attach") !=
        std::string::npos);
  CHECK_FALSE(store->read_stream(OrderFulfilment::stream_id_for("o7")).has_value());  // nothing stored
  CHECK(services.received().empty());
}

TEST_CASE("saga: two handlers for one command type are refused at attach") {
  UnattachedSaga rig;
  auto& [dir, store, services, saga, engine, po] = rig;
  auto twice = [](const ShipOrder&) {};
  CHECK_THROWS_WITH_AS(saga.attach(engine, po, twice, twice), doctest::Contains("two handlers for command ShipOrder"),
                       evs::Exception);
}

TEST_CASE("saga orchestration: after a restart the pending deadline is re-armed from the stored state and fires") {
  evs::test::TempDir dir;
  {
    Shop first(dir, 1500ms);
    first.services.inventory = Services::Inventory::silent;
    first.engine.start();
    first.place_order("o4", 4200);
    REQUIRE(poll_until([&] { return first.saga.armed_timers() == 1 && first.services.got("ReserveInventory"); }));
    REQUIRE(first.state("o4")->pending.count("inventory") == 1);
  }  // the process stops while the reservation is pending
  Shop second(dir, 1500ms);
  second.services.inventory = Services::Inventory::silent;
  // Stopped before the deadline: nothing has fired yet.
  REQUIRE(second.state("o4")->pending.count("inventory") == 1);
  REQUIRE_FALSE(contains(types(*second.store, OrderFulfilment::stream_id_for("o4")), "evs.saga.deadline_reached"));
  second.engine.start();

  REQUIRE(poll_until([&] { return second.services.got("CancelOrder"); }));
  CHECK(second.services.names() == std::vector<std::string>{"RefundPayment", "CancelOrder"});
  const auto state = second.state("o4").value();
  CHECK(state.status == evs::SagaStatus::compensated);
  CHECK(state.reason.starts_with("timed out"));
  CHECK(state.compensated == std::vector<std::string>{"payment", "order"});
  REQUIRE(poll_until([&] { return types(*second.store, "payment-o4").size() == 2; }));
  CHECK(types(*second.store, "payment-o4").back() == "sagatest.payment_refunded");
}

TEST_CASE("saga orchestration: after a restart a late reply completes the saga and cancels the re-armed deadline") {
  evs::test::TempDir dir;
  evs::CommandMetadata reserve;
  {
    Shop first(dir, 60s);
    first.services.inventory = Services::Inventory::silent;
    first.engine.start();
    first.place_order("o5", 300);
    REQUIRE(poll_until([&] { return first.saga.armed_timers() == 1 && first.services.got("ReserveInventory"); }));
    reserve = first.services.received().at(1).metadata;
  }
  Shop second(dir, 60s);
  second.engine.start();
  REQUIRE(poll_until([&] { return second.saga.armed_timers() == 1; }));  // re-armed by the start-up scan

  append_or_throw(*second.store, "inventory-o5",
                  event_with(InventoryReserved{"o5"}, reserve.command_id, reserve.event_metadata()));
  REQUIRE(poll_until([&] { return second.status_is("o5", evs::SagaStatus::completed) && second.services.got("ShipOrder"); }));
  CHECK(second.services.names() == std::vector<std::string>{"ShipOrder"});
  CHECK(poll_until([&] { return second.saga.armed_timers() == 0; }));
  CHECK(second.saga.last_timer_error().empty());
}

// ---------------------------------------------------------------------------------------------------------
// Choreography: no coordinator. Each service reacts to the others' events and appends its own, with the
// cause's correlation id and a deterministic id derived from the cause (redelivery appends nothing twice).

namespace sagatest {

template <class E>
void react_with(evs::EventStore& store, const evs::RecordedEvent& cause, const std::string& stream, const E& e) {
  append_or_throw(store, stream, event_with(e, evs::derived_id(cause.event_id, evs::event_info_v<E>.name), evs::caused_by(cause)));
}

class PaymentService : public evs::EffectHandler<PaymentService, OrderPlaced, InventoryReservationFailed> {
 public:
  static constexpr std::string_view name = "payment_service";
  explicit PaymentService(evs::EventStore& store) : store_(store) {}
  void handle(const OrderPlaced& e, const evs::RecordedEvent& m) {
    react_with(store_, m, "payment-" + e.order_id, PaymentCharged{e.order_id, e.total_cents});
  }
  // The compensation: refund what this service charged (its own stream says how much).
  void handle(const InventoryReservationFailed& e, const evs::RecordedEvent& m) {
    std::int64_t charged = 0;
    for (const auto& p : read(store_, "payment-" + e.order_id))
      if (p.type == evs::event_info_v<PaymentCharged>.name)
        charged += evs::decode<PaymentCharged>(p.payload, p.encoding).value().amount_cents;
    react_with(store_, m, "payment-" + e.order_id, PaymentRefunded{e.order_id, charged});
  }

 private:
  evs::EventStore& store_;
};

class InventoryService : public evs::EffectHandler<InventoryService, PaymentCharged> {
 public:
  static constexpr std::string_view name = "inventory_service";
  InventoryService(evs::EventStore& store, int stock) : store_(store), stock_(stock) {}
  void handle(const PaymentCharged& e, const evs::RecordedEvent& m) {
    if (stock_ > 0) {
      --stock_;
      react_with(store_, m, "inventory-" + e.order_id, InventoryReserved{e.order_id});
    } else {
      react_with(store_, m, "inventory-" + e.order_id, InventoryReservationFailed{e.order_id, "out of stock"});
    }
  }

 private:
  evs::EventStore& store_;
  std::atomic<int> stock_;
};

class ShippingService : public evs::EffectHandler<ShippingService, InventoryReserved> {
 public:
  static constexpr std::string_view name = "shipping_service";
  explicit ShippingService(evs::EventStore& store) : store_(store) {}
  void handle(const InventoryReserved& e, const evs::RecordedEvent& m) {
    react_with(store_, m, "shipment-" + e.order_id, OrderShipped{e.order_id});
  }

 private:
  evs::EventStore& store_;
};

class OrderService : public evs::EffectHandler<OrderService, PaymentRefunded> {
 public:
  static constexpr std::string_view name = "order_service";
  explicit OrderService(evs::EventStore& store) : store_(store) {}
  void handle(const PaymentRefunded& e, const evs::RecordedEvent& m) {
    react_with(store_, m, "order-" + e.order_id, OrderCancelled{e.order_id, "payment refunded"});
  }

 private:
  evs::EventStore& store_;
};

}  // namespace sagatest

TEST_CASE("saga choreography: services react to each other's events, and a failure event triggers the compensation") {
  evs::test::TempDir dir;
  auto store = open_store(dir / "events.db");
  PaymentService payments(*store);
  InventoryService inventory(*store, 1);  // one item: the first order ships, the second is compensated
  ShippingService shipping(*store);
  OrderService orders(*store);
  evs::ProjectionEngine engine(*store);
  evs::ProjectionOptions po;
  po.database = dir / "projections.db";
  for (evs::Projection* p : std::initializer_list<evs::Projection*>{&payments, &inventory, &shipping, &orders})
    engine.add(*p, po);
  engine.start();

  auto place = [&](const std::string& id) {
    evs::EventData d = shop::make(OrderPlaced{id, "cust-1", 1000});
    d.metadata.correlation_id = id;
    append_or_throw(*store, "order-" + id, d);
  };

  place("c1");
  REQUIRE(poll_until([&] { return !read(*store, "shipment-c1").empty(); }));
  // One conversation: every event carries the correlation id, and each is caused by the one before.
  const auto placed = read(*store, "order-c1").at(0);
  const auto charged = read(*store, "payment-c1").at(0);
  const auto reserved = read(*store, "inventory-c1").at(0);
  const auto shipped = read(*store, "shipment-c1").at(0);
  for (const auto* e : {&placed, &charged, &reserved, &shipped}) CHECK(e->metadata.correlation_id == "c1");
  CHECK(charged.metadata.causation_id == placed.event_id.to_string());
  CHECK(reserved.metadata.causation_id == charged.event_id.to_string());
  CHECK(shipped.metadata.causation_id == reserved.event_id.to_string());
  CHECK(reserved.type == evs::event_info_v<InventoryReserved>.name);

  place("c2");  // out of stock now
  REQUIRE(poll_until([&] { return types(*store, "order-c2").size() == 2; }));
  CHECK(types(*store, "inventory-c2") == std::vector<std::string>{"sagatest.inventory_reservation_failed"});
  CHECK(types(*store, "payment-c2") == std::vector<std::string>{"sagatest.payment_charged", "sagatest.payment_refunded"});
  CHECK(types(*store, "order-c2") == std::vector<std::string>{"shop.order_placed", "shop.order_cancelled"});
  CHECK(types(*store, "shipment-c2").empty());
  const auto refunded = read(*store, "payment-c2").at(1);
  CHECK(evs::decode<PaymentRefunded>(refunded.payload, refunded.encoding)->amount_cents == 1000);
  CHECK(read(*store, "order-c2").at(1).metadata.correlation_id == "c2");

  // Redelivering a cause appends nothing new: the derived id makes the append idempotent.
  const auto failed = read(*store, "inventory-c2").at(0);
  const auto before = store->last_position().value();
  payments.handle(evs::decode<InventoryReservationFailed>(failed.payload, failed.encoding).value(), failed);
  CHECK(store->last_position().value() == before);
  engine.stop();
}

// ---------------------------------------------------------------------------------------------------------
// SagaScenario: the same saga, given/when/then, commands captured instead of handled.

TEST_CASE("saga scenario: then_commands compares the exact commands sent, and says what differs as JSON") {
  using Step = OrderFulfilment::Step;
  evs::testing::SagaScenario<OrderFulfilment> scenario(10s);  // owns its store: OrderFulfilment(store, 10s)
  scenario.when(OrderPlaced{"o1", "cust-1", 2500})
      .then_commands(ChargePayment{"o1", 2500})
      .then_status("o1", evs::SagaStatus::running)
      .then_pending("o1", Step::payment);
  CHECK(scenario.sent().at(0).metadata.correlation_id == "o1");

  try {
    scenario.then_commands(ChargePayment{"o1", 2499});
    FAIL("then_commands should have failed");
  } catch (const evs::testing::ScenarioFailure& e) {
    CHECK(std::string(e.what()) ==
          R"(expected commands [ChargePayment {"order_id":"o1","amount_cents":2499}], but the saga sent )"
          R"([ChargePayment {"order_id":"o1","amount_cents":2500}])");
  }
  CHECK_THROWS_AS(scenario.then_commands(ReserveInventory{"o1"}), evs::testing::ScenarioFailure);  // another type
  CHECK_THROWS_AS(scenario.then_no_commands(), evs::testing::ScenarioFailure);
  CHECK_THROWS_AS(scenario.then_pending("o1", Step::inventory), evs::testing::ScenarioFailure);
}

TEST_CASE("saga scenario: compensation and deadlines, without handlers") {
  using Step = OrderFulfilment::Step;
  evs::testing::SagaScenario<OrderFulfilment> scenario(10s);
  scenario.given(OrderPlaced{"o2", "cust-1", 900})
      .correlated("o2")
      .given(PaymentCharged{"o2", 900})
      .when(InventoryReservationFailed{"o2", "out of stock"})
      .then_commands(RefundPayment{"o2", 900}, CancelOrder{"o2", "out of stock"})
      .then_status("o2", evs::SagaStatus::compensated)
      .then_compensated("o2", {Step::payment, Step::order});

  scenario.correlated("").given(OrderPlaced{"o3", "cust-1", 300}).correlated("o3").given(PaymentCharged{"o3", 300});
  scenario.when_deadline_passes("o3", Step::inventory)
      .then_commands(RefundPayment{"o3", 300}, CancelOrder{"o3", "timed out: no answer before the deadline"})
      .then_status("o3", evs::SagaStatus::compensated);
  // A late answer: the saga has ended, nothing is sent.
  scenario.when(InventoryReserved{"o3"}).then_no_commands().then_status("o3", evs::SagaStatus::compensated);
  CHECK_THROWS_AS(scenario.when_deadline_passes("o3", Step::inventory), evs::testing::ScenarioFailure);
}

TEST_CASE("saga scenario: then_error sees an empty correlation key") {
  evs::testing::SagaScenario<OrderFulfilment> scenario(10s);
  scenario.when(PaymentCharged{"x", 1}).then_error("has an empty correlation key").then_no_commands();
  scenario.when(InventoryReserved{"x"});  // if_set: ignored, no error
  CHECK_THROWS_AS(scenario.then_error("empty"), evs::testing::ScenarioFailure);
}

TEST_CASE("saga: a stored step with no enumerator is a clear error") {
  evs::testing::SagaScenario<OrderFulfilment> scenario(10s);
  scenario.given(OrderPlaced{"o4", "cust-1", 100}).correlated("o4").given(PaymentCharged{"o4", 100});
  // A completed step whose enumerator was renamed since it was stored.
  auto& store = scenario.store();
  const auto version = store.stream_version(OrderFulfilment::stream_id_for("o4")).value();
  const evs::EventData renamed = evs::make_event_data(evs::SagaStepCompleted{"ordr"}, evs::Encoding::binary, {});
  REQUIRE(store.append(OrderFulfilment::stream_id_for("o4"), evs::ExpectedVersion::exact(version),
                       std::span(&renamed, 1)));
  scenario.when(InventoryReservationFailed{"o4", "out of stock"})
      .then_error("process manager fulfilment: the stored step 'ordr' has no enumerator in FulfilmentStep");
}
