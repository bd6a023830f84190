// Upcasting: several versions per name in the registry, the chain check, and dispatch_event handing old
// events to the code as current types.
#include "../support/result_printing.hpp"
#include "../support/upcast_events.hpp"

#include <evs/core/dispatch.hpp>

#include <doctest/doctest.h>

#include <any>
#include <array>
#include <cstdio>
#include <string>
#include <sys/wait.h>
#include <vector>

using namespace evs;
using namespace updomain;

namespace {

RecordedEvent recorded(const EventData& d, std::uint64_t version = 1) {
  RecordedEvent r;
  r.stream_id = "ledger-a";
  r.version = version;
  r.type = d.type;
  r.schema_version = d.schema_version;
  r.encoding = d.encoding;
  r.payload = d.payload;
  return r;
}

// What dispatch_event<Credited, Debited> hands to its function, as strings.
std::vector<std::string> dispatched(const RecordedEvent& e) {
  std::vector<std::string> seen;
  auto r = dispatch_event<Credited, Debited>(e, "test", [&]<class E>(const E& ev) {
    if constexpr (std::is_same_v<E, Credited>)
      seen.push_back("credit " + ev.account + " " + std::to_string(ev.cents) + " " + ev.currency);
    else
      seen.push_back("debit " + ev.account + " " + std::to_string(ev.cents));
  });
  if (!r) seen.push_back("error: " + r.error().message);
  return seen;
}

EventTypeInfo fake(std::string name, std::uint32_t version, std::string cpp, std::type_index type) {
  EventTypeInfo i;
  i.name = std::move(name);
  i.version = version;
  i.cpp_type = std::move(cpp);
  i.type = type;
  return i;
}

UpcasterInfo fake_upcaster(std::type_index from, std::string cpp, std::vector<std::type_index> to) {
  return UpcasterInfo{from, std::move(cpp), std::move(to), [](const std::any&) { return std::vector<std::any>{}; }};
}

std::string problems(const EventRegistry& r) {
  auto v = r.validate();
  return v ? std::string("ok") : v.error().message;
}

bool has(const std::string& text, const std::string& part) { return text.find(part) != std::string::npos; }

}  // namespace

TEST_CASE("a name keeps several versions: find(name) gives the highest, find(name, version) each one") {
  const EventRegistry& g = EventRegistry::global();
  REQUIRE(g.find("up.credited") != nullptr);
  CHECK(g.find("up.credited")->type == std::type_index(typeid(Credited)));
  CHECK(g.find("up.credited", 1)->type == std::type_index(typeid(v1::Credited)));
  CHECK(g.find("up.credited", 2)->type == std::type_index(typeid(v2::Credited)));
  CHECK(g.find("up.credited", 4) == nullptr);
  CHECK(g.upcaster_of(typeid(Credited)) == nullptr);
  CHECK(g.upcaster_of(typeid(v1::Credited)) != nullptr);
  CHECK(g.validate().has_value());
  CHECK(g.names_reaching(typeid(Credited)) == std::vector<std::string>{"up.credited", "up.funded", "up.transferred"});
  CHECK(g.names_reaching(typeid(Debited)) == std::vector<std::string>{"up.debited", "up.transferred"});
  CHECK(stored_type_names<Debited>() == std::vector<std::string>{"up.debited", "up.transferred"});
}

TEST_CASE("dispatch_event upcasts old versions, renames and splits to the current types") {
  CHECK(dispatched(recorded(make_event_data(Credited{"a", 5, "GBP"}))) == std::vector<std::string>{"credit a 5 GBP"});
  // v1 -> v2 -> v3: two steps.
  CHECK(dispatched(recorded(make_event_data(v1::Credited{"a", 7}))) == std::vector<std::string>{"credit a 700 USD"});
  CHECK(dispatched(recorded(make_event_data(v2::Credited{"a", 7}, Encoding::json))) ==
        std::vector<std::string>{"credit a 7 USD"});
  CHECK(dispatched(recorded(make_event_data(v1::Funded{"a", 9}))) == std::vector<std::string>{"credit a 9 EUR"});
  CHECK(dispatched(recorded(make_event_data(v1::Transferred{"a", "b", 3}))) ==
        std::vector<std::string>{"debit a 3", "credit b 3 USD"});
}

TEST_CASE("an old event that does not decode, or a version nobody registered, fails with a clear error") {
  auto bad = recorded(make_event_data(v1::Credited{"a", 7}));
  bad.payload = "\xff";
  auto out = dispatched(bad);
  REQUIRE(out.size() == 1);
  CHECK(has(out[0], "up.credited at ledger-a@1"));
  CHECK(has(out[0], "does not decode as updomain::v1::Credited"));

  auto unknown = recorded(make_event_data(v1::Credited{"a", 7}));
  unknown.schema_version = 0;
  auto r = dispatch_event<Credited>(unknown, "test", [](const Credited&) {});
  REQUIRE_FALSE(r);
  CHECK(r.error().is(errc::unsupported_schema_version));
  CHECK(has(r.error().message, "schema version 0, which this build does not register"));

  auto newer = recorded(make_event_data(Credited{"a", 1, "USD"}));
  newer.schema_version = 4;
  r = dispatch_event<Credited>(newer, "test", [](const Credited&) {});
  REQUIRE_FALSE(r);
  CHECK(r.error().is(errc::unsupported_schema_version));

  // A split into types the owner does not handle at all is an unknown type for it; one it partly handles is fine.
  r = dispatch_event<Debited>(recorded(make_event_data(v1::Funded{"a", 9})), "aggregate x", [](const Debited&) {});
  REQUIRE_FALSE(r);
  CHECK(r.error().is(errc::unknown_event_type));
  CHECK(has(r.error().message, "aggregate x has no handler for event type 'up.funded' v1"));
  int debits = 0;
  CHECK(dispatch_event<Debited>(recorded(make_event_data(v1::Transferred{"a", "b", 3})), "x",
                                [&](const Debited&) { ++debits; }));
  CHECK(debits == 1);
}

TEST_CASE("the registry upcasts a payload through the chain for tools") {
  const EventRegistry& g = EventRegistry::global();
  auto values = g.upcast(*g.find("up.credited", 1), encode(v1::Credited{"a", 2}, Encoding::binary), Encoding::binary);
  REQUIRE(values);
  REQUIRE(values->size() == 1);
  CHECK(std::any_cast<Credited>((*values)[0]) == Credited{"a", 200, "USD"});
  const EventTypeInfo* current = g.find(std::type_index((*values)[0].type()));
  REQUIRE(current != nullptr);
  CHECK(current->any_to_json((*values)[0]) == R"({"account":"a","cents":200,"currency":"USD"})");
}

TEST_CASE("the chain check names each broken link") {
  struct A {};
  struct B {};
  struct C {};
  SUBCASE("an older version without an upcaster") {
    EventRegistry r;
    r.add(fake("x.e", 1, "x::v1::E", typeid(A)));
    r.add(fake("x.e", 2, "x::E", typeid(B)));
    CHECK(has(problems(r), "'x.e' v1 (x::v1::E) has no upcaster, but the current version is 'x.e' v2 (x::E)"));
    r.add_upcaster(fake_upcaster(typeid(A), "x::v1::E", {typeid(B)}));
    CHECK(problems(r) == "ok");
  }
  SUBCASE("a missing version in between") {
    EventRegistry r;
    r.add(fake("x.e", 1, "x::v1::E", typeid(A)));
    r.add(fake("x.e", 3, "x::E", typeid(B)));
    r.add_upcaster(fake_upcaster(typeid(A), "x::v1::E", {typeid(B)}));
    CHECK(has(problems(r), "'x.e' has versions 1 and 3 but no version 2 in between"));
  }
  SUBCASE("an upcaster that goes back, or to a type that is not registered") {
    EventRegistry r;
    r.add(fake("x.e", 1, "x::v1::E", typeid(A)));
    r.add(fake("x.e", 2, "x::E", typeid(B)));
    r.add_upcaster(fake_upcaster(typeid(B), "x::E", {typeid(A)}));
    r.add_upcaster(fake_upcaster(typeid(A), "x::v1::E", {typeid(C)}));
    const std::string p = problems(r);
    CHECK(has(p, "the upcaster of 'x.e' v2 (x::E) goes back to 'x.e' v1 (x::v1::E)"));
    CHECK(has(p, "the upcaster of 'x.e' v1 (x::v1::E) produces"));
    CHECK(has(p, "which is not registered with EVS_EVENT"));
  }
  SUBCASE("renames that loop") {
    EventRegistry r;
    r.add(fake("x.a", 1, "A", typeid(A)));
    r.add(fake("x.b", 1, "B", typeid(B)));
    r.add_upcaster(fake_upcaster(typeid(A), "A", {typeid(B)}));
    r.add_upcaster(fake_upcaster(typeid(B), "B", {typeid(A)}));
    CHECK(has(problems(r), "the upcasters loop: 'x.a' v1 (A) -> 'x.b' v1 (B) -> 'x.a' v1 (A)"));
    auto up = r.upcast(*r.find("x.a", 1), "", Encoding::binary);
    REQUIRE_FALSE(up);
    CHECK(up.error().is(errc::invalid_argument));
  }
  SUBCASE("two upcasters for one type are refused when registered") {
    EventRegistry r;
    r.add_upcaster(fake_upcaster(typeid(A), "A", {typeid(B)}));
    CHECK_THROWS_AS(r.add_upcaster(fake_upcaster(typeid(A), "A", {typeid(C)})), Exception);
  }
  SUBCASE("one (name, version) for two types is still refused") {
    EventRegistry r;
    r.add(fake("x.e", 1, "A", typeid(A)));
    r.add(fake("x.e", 2, "B", typeid(B)));
    CHECK_THROWS_AS(r.add(fake("x.e", 2, "C", typeid(C))), Exception);
  }
}

TEST_CASE("a program with a broken upcasting chain stops at its first event with the broken link named") {
  // broken_chain_app is built from tests/core/broken_chain_app.cpp.
  FILE* p = popen(EVS_BROKEN_CHAIN_APP " 2>&1", "r");
  REQUIRE(p);
  std::string out;
  std::array<char, 256> buf{};
  while (fgets(buf.data(), buf.size(), p)) out += buf.data();
  const int status = pclose(p);
  CHECK_FALSE((WIFEXITED(status) && WEXITSTATUS(status) == 0));
  CHECK(has(out, "main ran"));
  CHECK(has(out, "evs: fatal: the event upcasting chains are broken"));
  CHECK(has(out, "'broken.e' v1 (broken::v1::E) has no upcaster, but the current version is 'broken.e' v2 (broken::E)"));
  CHECK_FALSE(has(out, "dispatched"));
}
