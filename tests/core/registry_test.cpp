#include "../support/test_events.hpp"

#include <evs/core/registry.hpp>

#include <doctest/doctest.h>

#include <array>
#include <optional>
#include <cstdio>
#include <sys/wait.h>

TEST_CASE("EVS_EVENT registers name, version, fingerprint and codecs in the global registry") {
  static_assert(evs::Event<testdomain::Deposited>);
  static_assert(evs::event_info_v<testdomain::Deposited>.name == "test.deposited");
  const evs::EventTypeInfo* info = evs::EventRegistry::global().find("test.deposited");
  REQUIRE(info);
  CHECK(info->version == 1);
  CHECK(info->fingerprint == evs::fingerprint_v<testdomain::Deposited>);
  CHECK(info->cpp_type == "testdomain::Deposited");
  CHECK(evs::EventRegistry::global().find(typeid(testdomain::Deposited)) == info);
  CHECK(evs::EventRegistry::global().find("test.never") == nullptr);

  const std::string payload = evs::encode(testdomain::Deposited{5, "m"}, evs::Encoding::binary);
  CHECK(info->validate(payload, evs::Encoding::binary));
  CHECK(info->validate(payload.substr(1), evs::Encoding::binary).error().is(evs::errc::corrupt_payload));
  CHECK(info->to_json(payload, evs::Encoding::binary).value() == R"({"cents":5,"memo":"m"})");
}

namespace registrytest {
struct Declared {  // EVS_EVENT with its members: described and registered in one go
  std::string id;
  std::optional<std::int64_t> amount;
};
EVS_EVENT(Declared, "test.declared_with_members", 2, id, amount)

struct DescribedFirst {  // the same members, described separately
  std::string id;
  std::optional<std::int64_t> amount;
};
BOOST_DESCRIBE_STRUCT(DescribedFirst, (), (id, amount))
}  // namespace registrytest

TEST_CASE("EVS_EVENT with members describes the type exactly as BOOST_DESCRIBE_STRUCT would, and registers it") {
  using registrytest::Declared;
  static_assert(evs::Event<Declared>);
  static_assert(evs::event_info_v<Declared>.version == 2);
  static_assert(evs::fingerprint_v<Declared> == evs::fingerprint_v<registrytest::DescribedFirst>);
  const evs::EventTypeInfo* info = evs::EventRegistry::global().find("test.declared_with_members");
  REQUIRE(info);
  CHECK(info->version == 2);
  CHECK(info->fingerprint == evs::fingerprint_v<Declared>);
  CHECK(evs::encode(Declared{"d1", 7}, evs::Encoding::json) == R"({"id":"d1","amount":7})");
}

TEST_CASE("registering two types under one name is an error naming both") {
  evs::EventRegistry registry;
  evs::EventTypeInfo a{"x.same", 1, 1, "A", typeid(int)};
  evs::EventTypeInfo b{"x.same", 1, 2, "B", typeid(long)};
  registry.add(a);
  registry.add(a);  // the same type again is fine
  try {
    registry.add(b);
    FAIL("expected an exception");
  } catch (const evs::Exception& e) {
    CHECK(e.error().is(evs::errc::invalid_argument));
    CHECK(std::string(e.what()).find("'x.same' is registered for two types: A and B") != std::string::npos);
  }
  evs::EventTypeInfo c{"x.other", 1, 3, "A", typeid(int)};
  CHECK_THROWS_AS(registry.add(c), evs::Exception);
}

TEST_CASE("a program that registers two types under one name stops at start-up with a clear message") {
  // duplicate_event_app is built from tests/core/duplicate_event_app.cpp.
  FILE* p = popen(EVS_DUPLICATE_EVENT_APP " 2>&1", "r");
  REQUIRE(p);
  std::string out;
  std::array<char, 256> buf{};
  while (fgets(buf.data(), buf.size(), p)) out += buf.data();
  const int status = pclose(p);
  CHECK_FALSE((WIFEXITED(status) && WEXITSTATUS(status) == 0));
  CHECK(out.find("event name 'dup.name' is registered for two types") != std::string::npos);
  CHECK(out.find("main ran") == std::string::npos);
}
