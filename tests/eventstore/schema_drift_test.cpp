// Shape drift: member descriptions, what stores record per (type, schema version), the check at open
// (refuse / warn / off) and the snapshot version of aggregates.
#include "../support/backends.hpp"
#include "../support/bank.hpp"
#include "../support/store_layout.hpp"

#include <evs/eventstore/repository.hpp>
#include <evs/eventstore/schema_drift.hpp>

#include <doctest/doctest.h>

#include <fstream>
#include <iterator>
#include <map>
#include <optional>
#include <string>
#include <vector>

using namespace evs;

namespace drifttest {

enum class Colour : std::uint8_t { red = 1, blue = 2 };
BOOST_DESCRIBE_ENUM(Colour, red, blue)

struct Line {
  std::string sku;
  std::int32_t qty = 0;
};
BOOST_DESCRIBE_STRUCT(Line, (), (sku, qty))

struct Everything {
  std::string id;
  std::int64_t total = 0;
  std::optional<std::uint16_t> small;
  std::vector<Line> lines;
  std::map<std::string, double> rates;
  Colour colour = Colour::red;
  bool flag = false;
};
BOOST_DESCRIBE_STRUCT(Everything, (), (id, total, small, lines, rates, colour, flag))

// One shape as it was stored, and the ways it can drift without a version bump.
struct Stored {
  std::string order_id;
  std::int64_t total_cents = 0;
  std::string note;
};
BOOST_DESCRIBE_STRUCT(Stored, (), (order_id, total_cents, note))
struct Added {
  std::string order_id;
  std::int64_t total_cents = 0;
  std::string note;
  std::string currency;
};
BOOST_DESCRIBE_STRUCT(Added, (), (order_id, total_cents, note, currency))
struct Removed {
  std::string order_id;
  std::int64_t total_cents = 0;
};
BOOST_DESCRIBE_STRUCT(Removed, (), (order_id, total_cents))
struct Renamed {
  std::string order_id;
  std::int64_t amount_cents = 0;
  std::string note;
};
BOOST_DESCRIBE_STRUCT(Renamed, (), (order_id, amount_cents, note))
struct Retyped {
  std::string order_id;
  std::int32_t total_cents = 0;
  std::string note;
};
BOOST_DESCRIBE_STRUCT(Retyped, (), (order_id, total_cents, note))
struct Reordered {
  std::int64_t total_cents = 0;
  std::string order_id;
  std::string note;
};
BOOST_DESCRIBE_STRUCT(Reordered, (), (total_cents, order_id, note))

constexpr std::string_view type_name = "drift.order_placed";

// What EVS_EVENT would register for T as (type_name, version), in a registry of the test's own.
template <class T>
EventTypeInfo info_of(std::uint32_t version = 1) {
  EventTypeInfo info;
  info.name = std::string(type_name);
  info.version = version;
  info.fingerprint = fingerprint_v<T>;
  info.members = schema_members<T>();
  info.cpp_type = "drifttest::Order";
  info.type = typeid(T);
  return info;
}

template <class T>
EventData event_of(const T& value, std::uint32_t version = 1) {
  EventData e;
  e.type = std::string(type_name);
  e.schema_version = version;
  e.fingerprint = fingerprint_v<T>;
  e.payload = encode(value, Encoding::binary);
  return e;
}

// The same account, but its apply() logic changed (deposits count double) and says so.
class AccountV2 : public Aggregate<AccountV2, testdomain::AccountState, testdomain::Deposited, testdomain::Withdrawn> {
 public:
  static constexpr std::string_view category = "acc";
  static constexpr std::uint32_t snapshot_version = 2;
  using Aggregate::Aggregate;

 private:
  friend AggregateAccess;
  void apply(const testdomain::Deposited& e) {
    state_.balance += 2 * e.cents;
    ++state_.operations;
  }
  void apply(const testdomain::Withdrawn& e) {
    state_.balance -= e.cents;
    ++state_.operations;
  }
};

// A SQLite store written through a registry that knows `Stored` as version 1.
struct DriftFixture {
  test::TempDir dir;
  std::filesystem::path path = dir / "events.db";
  EventRegistry stored_registry;

  DriftFixture() {
    stored_registry.add(info_of<Stored>());
    SqliteOptions o;
    o.path = path;
    o.registry = &stored_registry;
    SqliteEventStore store(o);
    REQUIRE(store.append("order-1", ExpectedVersion::any(), std::vector{event_of(Stored{"o-1", 1250, "n"})}));
  }

  // Opens the store with a registry holding `info` and the given check; warnings are collected.
  std::unique_ptr<SqliteEventStore> open(const EventRegistry& registry, SchemaCheck check,
                                         std::vector<std::string>* warnings = nullptr) const {
    SqliteOptions o;
    o.path = path;
    o.registry = &registry;
    o.schema_check = check;
    o.schema_warning = [warnings](const std::string& m) {
      if (warnings) warnings->push_back(m);
    };
    return std::make_unique<SqliteEventStore>(o);
  }
};

// The message of a refused open, or "" if it opened.
inline std::string refusal(const DriftFixture& f, const EventRegistry& registry) {
  try {
    f.open(registry, SchemaCheck::refuse);
  } catch (const Exception& e) {
    CHECK(e.error().is(errc::schema_drift));
    return e.error().message;
  }
  return {};
}

}  // namespace drifttest

using namespace drifttest;

TEST_CASE("schema_members describes every member: names, order and types, nested ones included") {
  CHECK(schema_members<Stored>() == "order_id:string,total_cents:int64,note:string");
  CHECK(schema_members<Everything>() ==
        "id:string,total:int64,small:optional<uint16>,lines:vector<{sku:string,qty:int32}>,"
        "rates:map<string,float64>,colour:enum<uint8>{red=1,blue=2},flag:bool");
  const auto members = parse_schema_members(schema_members<Everything>());
  REQUIRE(members.size() == 7);
  CHECK(members[3] == SchemaMember{"lines", "vector<{sku:string,qty:int32}>"});
  CHECK(members[4] == SchemaMember{"rates", "map<string,float64>"});
}

TEST_CASE("diff_schema_members names the members added, removed, renamed, retyped and reordered") {
  const std::string stored = schema_members<Stored>();
  SchemaDrift added, removed, renamed, retyped, reordered, same;
  diff_schema_members(stored, schema_members<Added>(), added);
  diff_schema_members(stored, schema_members<Removed>(), removed);
  diff_schema_members(stored, schema_members<Renamed>(), renamed);
  diff_schema_members(stored, schema_members<Retyped>(), retyped);
  diff_schema_members(stored, schema_members<Reordered>(), reordered);
  diff_schema_members(stored, stored, same);

  CHECK(added.added == std::vector<SchemaMember>{{"currency", "string"}});
  CHECK((added.removed.empty() && added.renamed.empty() && added.retyped.empty() && !added.reordered));
  CHECK(removed.removed == std::vector<SchemaMember>{{"note", "string"}});
  CHECK((removed.added.empty() && removed.renamed.empty() && !removed.reordered));
  REQUIRE(renamed.renamed.size() == 1);
  CHECK(renamed.renamed[0].first.name == "total_cents");
  CHECK(renamed.renamed[0].second.name == "amount_cents");
  CHECK((renamed.added.empty() && renamed.removed.empty()));
  REQUIRE(retyped.retyped.size() == 1);
  CHECK(retyped.retyped[0].first == SchemaMember{"total_cents", "int64"});
  CHECK(retyped.retyped[0].second == SchemaMember{"total_cents", "int32"});
  CHECK(reordered.reordered);
  CHECK((reordered.added.empty() && reordered.removed.empty() && reordered.renamed.empty()));
  CHECK((same.added.empty() && same.removed.empty() && same.renamed.empty() && same.retyped.empty() &&
         !same.reordered));
}

TEST_CASE_TEMPLATE("a store records the fingerprint and members of the first writer of each (type, version)", B,
                   EVS_ALL_BACKENDS) {
  B backend;
  auto store = backend.open();
  CHECK(store->recorded_schemas().value().empty());
  REQUIRE(store->append_event("acc-1", ExpectedVersion::any(), testdomain::Deposited{5, "a"}));
  REQUIRE(store->append_event("acc-1", ExpectedVersion::any(), testdomain::Deposited{6, "b"}));
  REQUIRE(store->append_event("acc-2", ExpectedVersion::any(), testdomain::Withdrawn{1}));
  // Raw events without a fingerprint record nothing.
  REQUIRE(store->append("acc-3", ExpectedVersion::any(), std::vector{testdomain::of_type("test.raw")}));
  const auto recorded = store->recorded_schemas().value();
  REQUIRE(recorded.size() == 2);
  CHECK(recorded[0].type == "test.deposited");
  CHECK(recorded[0].schema_version == 1);
  CHECK(recorded[0].fingerprint == fingerprint_v<testdomain::Deposited>);
  CHECK(recorded[0].members == "cents:int64,memo:string");
  CHECK(recorded[0].recorded_at != Timestamp{});
  CHECK(recorded[1].type == "test.withdrawn");
  CHECK(recorded[1].members == "cents:int64");
  // The registered types are the recorded ones: no drift.
  CHECK(find_schema_drift(recorded, EventRegistry::global()).empty());
}

TEST_CASE("a SQLite store refuses to open when a registered type drifted, naming the type and the members") {
  DriftFixture f;
  SUBCASE("added") {
    EventRegistry r;
    r.add(info_of<Added>());
    const std::string m = refusal(f, r);
    CAPTURE(m);
    CHECK(m.find("event type drift.order_placed version 1 (drifttest::Order)") != std::string::npos);
    CHECK(m.find("added currency:string") != std::string::npos);
    CHECK(m.find("Stored: order_id:string,total_cents:int64,note:string") != std::string::npos);
    CHECK(m.find(f.path.string()) != std::string::npos);
  }
  SUBCASE("removed") {
    EventRegistry r;
    r.add(info_of<Removed>());
    const std::string m = refusal(f, r);
    CAPTURE(m);
    CHECK(m.find("removed note:string") != std::string::npos);
    CHECK(m.find("added") == std::string::npos);
  }
  SUBCASE("renamed") {
    EventRegistry r;
    r.add(info_of<Renamed>());
    const std::string m = refusal(f, r);
    CAPTURE(m);
    CHECK(m.find("renamed total_cents -> amount_cents (int64)") != std::string::npos);
  }
  SUBCASE("retyped") {
    EventRegistry r;
    r.add(info_of<Retyped>());
    const std::string m = refusal(f, r);
    CAPTURE(m);
    CHECK(m.find("retyped total_cents int64 -> int32") != std::string::npos);
  }
  SUBCASE("reordered") {
    EventRegistry r;
    r.add(info_of<Reordered>());
    CHECK(refusal(f, r).find("reordered members") != std::string::npos);
  }
}

TEST_CASE("with schema_check warn the drifted store opens and the warning names the drift, off says nothing") {
  DriftFixture f;
  EventRegistry r;
  r.add(info_of<Added>());
  std::vector<std::string> warnings;
  {
    auto store = f.open(r, SchemaCheck::warn, &warnings);
    CHECK(store->read_stream("order-1").value().size() == 1);
  }
  REQUIRE(warnings.size() == 1);
  CHECK(warnings[0].find("drift.order_placed version 1") != std::string::npos);
  CHECK(warnings[0].find("added currency:string") != std::string::npos);

  warnings.clear();
  CHECK_NOTHROW(f.open(r, SchemaCheck::off, &warnings));
  CHECK(warnings.empty());
}

TEST_CASE("no false positive: the same type, another version of the name, or an unregistered type") {
  DriftFixture f;
  std::vector<std::string> warnings;
  SUBCASE("the same type") {
    CHECK_NOTHROW(f.open(f.stored_registry, SchemaCheck::refuse));
    CHECK_NOTHROW(f.open(f.stored_registry, SchemaCheck::warn, &warnings));
  }
  SUBCASE("a new shape registered as the next version") {
    EventRegistry r;
    r.add(info_of<Added>(2));
    CHECK_NOTHROW(f.open(r, SchemaCheck::warn, &warnings));
  }
  SUBCASE("the type is not registered in this program") {
    EventRegistry r;
    CHECK_NOTHROW(f.open(r, SchemaCheck::warn, &warnings));
  }
  SUBCASE("reopened with the global registry, which does not know the type") {
    SqliteOptions o;
    o.path = f.path;
    CHECK_NOTHROW(SqliteEventStore{o});
  }
  CHECK(warnings.empty());
}

TEST_CASE("a read-only open is checked too") {
  DriftFixture f;
  EventRegistry r;
  r.add(info_of<Retyped>());
  SqliteOptions o;
  o.path = f.path;
  o.read_only = true;
  o.registry = &r;
  CHECK_THROWS_WITH_AS(SqliteEventStore{o}, doctest::Contains("retyped total_cents int64 -> int32"), Exception);
}

TEST_CASE_TEMPLATE("an aggregate's snapshot_version is stored with its snapshots, and another one ignores them", B,
                   EVS_ALL_BACKENDS) {
  B backend;
  auto store = backend.open();
  Repository<testdomain::Account> v1(*store, RepositoryOptions{.snapshot_every = 1});
  testdomain::Account a("1");
  a.deposit(100);
  a.deposit(50);
  REQUIRE(v1.save(a));
  auto snap = store->load_snapshot("acc-1").value();
  REQUIRE(snap);
  CHECK(snap->snapshot_version == 1);
  CHECK(snapshot_version_of<testdomain::Account>() == 1);
  CHECK(snapshot_version_of<AccountV2>() == 2);

  // Prove which loads use the snapshot: doctor its balance.
  Snapshot doctored = *snap;
  doctored.payload = encode(testdomain::AccountState{1'000'000, 2}, doctored.encoding);
  REQUIRE(store->save_snapshot(doctored));
  CHECK(v1.load("1").value().state().balance == 1'000'000);  // same version: the snapshot is used

  // The bumped aggregate ignores it and replays with its own apply(): 2 * (100 + 50).
  Repository<AccountV2> v2(*store, RepositoryOptions{.snapshot_every = 1});
  auto replayed = v2.load("1");
  REQUIRE(replayed);
  CHECK(replayed->state().balance == 300);
  CHECK(replayed->version() == 2);

  // Its own snapshot carries version 2, which the old aggregate ignores in turn.
  REQUIRE(v2.save_snapshot(*replayed));
  CHECK(store->load_snapshot("acc-1").value()->snapshot_version == 2);
  CHECK(v2.load("1").value().state().balance == 300);
  CHECK(v1.load("1").value().state().balance == 150);
}

TEST_CASE("a store written before the schema records opens read-only as it is, and a writable open migrates it") {
  test::TempDir dir;
  const std::filesystem::path path = dir / "events.db";
  {
    SqliteEventStore store({path});
    Repository<testdomain::Account> accounts(store, RepositoryOptions{.snapshot_every = 2});
    testdomain::Account a("1");
    a.deposit(100);
    a.deposit(50);
    REQUIRE(accounts.save(a));
    REQUIRE(store.load_snapshot("acc-1").value());
  }
  test::downgrade_to_schema_v1(path);
  const auto bytes = [&] {
    std::ifstream in(path, std::ios::binary);
    return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
  };
  const std::string before = bytes();

  for (const bool immutable : {true, false}) {
    CAPTURE(immutable);
    SqliteOptions o;
    o.path = path;
    o.read_only = true;
    o.immutable = immutable;
    o.schema_check = SchemaCheck::refuse;  // nothing recorded: nothing to refuse
    SqliteEventStore store(o);
    CHECK(store.read_stream("acc-1").value().size() == 2);
    CHECK(store.read_all(1, 10).value().events.size() == 2);
    CHECK(store.recorded_schemas().value().empty());
    auto snapshot = store.load_snapshot("acc-1").value();
    REQUIRE(snapshot);
    CHECK(snapshot->snapshot_version == 1);  // the only one there was
    auto loaded = Repository<testdomain::Account>(store).load("1");
    REQUIRE(loaded);
    CHECK(loaded->state().balance == 150);
    CHECK(store.append_event("acc-1", ExpectedVersion::any(), testdomain::Deposited{1, ""}).error().is(errc::read_only));
    if (immutable) {  // a plain read-only connection to a WAL file may leave an empty -wal and -shm behind
      CHECK_FALSE(std::filesystem::exists(path.string() + "-wal"));
      CHECK_FALSE(std::filesystem::exists(path.string() + "-shm"));
    }
  }
  CHECK(bytes() == before);

  // The first writable open migrates; the next typed append of each (type, version) records its shape.
  SqliteEventStore store({path});
  CHECK(store.recorded_schemas().value().empty());
  REQUIRE(store.append_event("acc-1", ExpectedVersion::any(), testdomain::Deposited{1, ""}));
  const auto recorded = store.recorded_schemas().value();
  REQUIRE(recorded.size() == 1);
  CHECK(recorded[0].type == "test.deposited");
  CHECK(store.load_snapshot("acc-1").value()->snapshot_version == 1);
}

TEST_CASE_TEMPLATE("an append whose fingerprint differs from the recorded one is refused and stores nothing", B,
                   EVS_ALL_BACKENDS) {
  B backend;
  auto store = backend.open();  // default schema check: refuse
  REQUIRE(store->append_event("acc-1", ExpectedVersion::any(), testdomain::Deposited{5, "a"}));
  EventData drifted = testdomain::deposit(7);
  drifted.fingerprint = 42;  // a type this program does not register: only the fingerprints can differ

  auto refused = store->append("acc-1", ExpectedVersion::any(), std::vector{drifted});
  REQUIRE_FALSE(refused);
  CHECK(refused.error().is(errc::schema_drift));
  const std::string& m = refused.error().message;
  CAPTURE(m);
  CHECK(m.find("append to stream acc-1") != std::string::npos);
  CHECK(m.find("nothing of this append was stored") != std::string::npos);
  CHECK(m.find("event type test.deposited version 1") != std::string::npos);
  CHECK(m.find("the store recorded") != std::string::npos);
  CHECK(m.find("for cents:int64,memo:string") != std::string::npos);
  CHECK(store->stream_version("acc-1").value() == 1);

  // The whole append goes, with the record of a type it would have been the first of.
  auto batch = store->append("acc-9", ExpectedVersion::any(),
                             std::vector{make_event_data(testdomain::Withdrawn{1}), drifted});
  REQUIRE_FALSE(batch);
  CHECK(batch.error().is(errc::schema_drift));
  CHECK(store->stream_version("acc-9").value() == 0);
  CHECK(store->read_all(1, 100).value().events.size() == 1);
  const auto recorded = store->recorded_schemas().value();
  REQUIRE(recorded.size() == 1);
  CHECK(recorded[0].fingerprint == fingerprint_v<testdomain::Deposited>);

  // Two shapes of one (type, version) within one append: the first would be recorded, the second differs.
  EventData first = make_event_data(testdomain::Withdrawn{2});
  EventData second = first;
  second.event_id = Uuid::generate();
  second.fingerprint = 43;
  CHECK(store->append("acc-9", ExpectedVersion::any(), std::vector{first, second}).error().is(errc::schema_drift));
  CHECK(store->recorded_schemas().value().size() == 1);
  // Raw events (no fingerprint) are not compared.
  CHECK(store->append("acc-1", ExpectedVersion::any(), std::vector{testdomain::deposit(8)}));
}

TEST_CASE("a memory store warns about a drifted append and stores it, or stores it silently, as configured") {
  EventData drifted = testdomain::deposit(7);
  drifted.fingerprint = 42;
  for (const SchemaCheck check : {SchemaCheck::warn, SchemaCheck::off}) {
    std::vector<std::string> warnings;
    MemoryEventStore store(MemoryOptions{check, [&](const std::string& w) { warnings.push_back(w); }});
    REQUIRE(store.append_event("acc-1", ExpectedVersion::any(), testdomain::Deposited{5, "a"}));
    REQUIRE(store.append("acc-1", ExpectedVersion::any(), std::vector{drifted}));
    drifted.event_id = Uuid::generate();
    REQUIRE(store.append("acc-1", ExpectedVersion::any(), std::vector{drifted}));
    CHECK(store.stream_version("acc-1").value() == 3);
    CHECK(store.recorded_schemas().value().at(0).fingerprint == fingerprint_v<testdomain::Deposited>);
    if (check == SchemaCheck::warn) {
      REQUIRE(warnings.size() == 1);  // once per (type, version, fingerprint)
      CHECK(warnings[0].find("stored anyway") != std::string::npos);
      CHECK(warnings[0].find("event type test.deposited version 1") != std::string::npos);
    } else {
      CHECK(warnings.empty());
    }
  }
}

TEST_CASE("an append that drifts from a record another writer made after this store opened: refuse, warn, off") {
  // Two stores on one file (as two processes): each registers another shape of drift.order_placed v1, and
  // both open before anything is recorded, so the open-time check cannot see it.
  test::TempDir dir;
  const std::filesystem::path path = dir / "events.db";
  EventRegistry stored_registry, added_registry;
  stored_registry.add(info_of<Stored>());
  added_registry.add(info_of<Added>());
  SqliteOptions first_options;
  first_options.path = path;
  first_options.registry = &stored_registry;
  SqliteEventStore first(first_options);

  std::vector<std::string> warnings;
  SqliteOptions second_options;
  second_options.path = path;
  second_options.registry = &added_registry;
  second_options.schema_warning = [&](const std::string& w) { warnings.push_back(w); };
  SUBCASE("refuse") { second_options.schema_check = SchemaCheck::refuse; }
  SUBCASE("warn") { second_options.schema_check = SchemaCheck::warn; }
  SUBCASE("off") { second_options.schema_check = SchemaCheck::off; }
  SqliteEventStore second(second_options);

  REQUIRE(first.append("order-1", ExpectedVersion::any(), std::vector{event_of(Stored{"o-1", 1250, "n"})}));
  auto r = second.append("order-2", ExpectedVersion::any(), std::vector{event_of(Added{"o-2", 990, "", "EUR"})});
  if (second_options.schema_check == SchemaCheck::refuse) {
    REQUIRE_FALSE(r);
    CHECK(r.error().is(errc::schema_drift));
    const std::string& m = r.error().message;
    CAPTURE(m);
    CHECK(m.find("append to stream order-2 in " + path.string()) != std::string::npos);
    CHECK(m.find("event type drift.order_placed version 1 (drifttest::Order)") != std::string::npos);
    CHECK(m.find("added currency:string") != std::string::npos);
    CHECK(m.find("Stored: order_id:string,total_cents:int64,note:string") != std::string::npos);
    CHECK(second.stream_version("order-2").value() == 0);
    CHECK(second.last_position().value() == 1);
    CHECK(warnings.empty());
  } else {
    REQUIRE(r);
    REQUIRE(second.append("order-2", ExpectedVersion::any(), std::vector{event_of(Added{"o-2", 1, "", "EUR"})}));
    CHECK(second.last_position().value() == 3);
    if (second_options.schema_check == SchemaCheck::warn) {
      REQUIRE(warnings.size() == 1);  // once per store, (type, version) and fingerprint
      CHECK(warnings[0].find("append to stream order-2") != std::string::npos);
      CHECK(warnings[0].find("stored anyway") != std::string::npos);
      CHECK(warnings[0].find("added currency:string") != std::string::npos);
    } else {
      CHECK(warnings.empty());
    }
  }
  // The record stays the first writer's.
  const auto recorded = second.recorded_schemas().value();
  REQUIRE(recorded.size() == 1);
  CHECK(recorded[0].fingerprint == fingerprint_v<Stored>);
}
