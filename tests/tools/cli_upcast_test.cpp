// The tool on events stored at an older schema version: check decodes and upcasts them; read, tail and
// export show the stored payload and what the application reads today.
#include "cli_support.hpp"

#include <doctest/doctest.h>

using namespace clitest;

TEST_CASE("read, export and check show and verify old versions upcast to the current one") {
  evs::test::TempDir dir;
  const std::string db = (dir / "old.db").string();
  {
    evs::SqliteEventStore store({db});
    append(store, "order-1",
           {binary_event(clitest::v1::ItemAdded{"o-1", "SKU-1"}),
            raw_event("clitest.item_added", R"({"order_id":"o-1","sku":"SKU-2"})", evs::Encoding::json, 1),
            binary_event(clitest::ItemAdded{"o-1", "SKU-3", 4})});
  }
  const auto with_db = [&](std::vector<std::string> args) {
    args.push_back("--db");
    args.push_back(db);
    return args;
  };

  auto text = run(shop_bin, with_db({"read", "order-1"}));
  CAPTURE(text.out);
  CAPTURE(text.err);
  REQUIRE(text.code == 0);
  CHECK(contains(text.out, "clitest.item_added (schema 1, binary)"));
  CHECK(contains(text.out, R"(payload      {"order_id":"o-1","sku":"SKU-1"})"));
  CHECK(contains(text.out, R"(current      clitest.item_added (schema 2)  {"order_id":"o-1","sku":"SKU-1","qty":1})"));
  CHECK(contains(text.out, R"(current      clitest.item_added (schema 2)  {"order_id":"o-1","sku":"SKU-2","qty":1})"));
  CHECK_FALSE(contains(text.out, "SKU-3\",\"qty\":4}\n  current"));  // a current event has no "current" line

  for (const char* command : {"read", "export"}) {
    CAPTURE(command);
    auto r = run(shop_bin, with_db(command == std::string("read") ? std::vector<std::string>{"read", "order-1", "--json"}
                                                                  : std::vector<std::string>{"export", "--all"}));
    REQUIRE(r.code == 0);
    auto docs = parse_json_lines(r.out);
    REQUIRE(docs.size() == 3);
    CHECK(docs[0]["schema_version"].GetUint() == 1);
    REQUIRE(docs[0].HasMember("current"));
    REQUIRE(docs[0]["current"].Size() == 1);
    CHECK(std::string(docs[0]["current"][0]["type"].GetString()) == "clitest.item_added");
    CHECK(docs[0]["current"][0]["schema_version"].GetUint() == 2);
    CHECK(docs[0]["current"][0]["payload"]["qty"].GetInt() == 1);
    // The stored JSON payload stays as stored (import reads it back).
    CHECK_FALSE(docs[1]["payload"].HasMember("qty"));
    CHECK(docs[1]["current"][0]["payload"]["qty"].GetInt() == 1);
    CHECK_FALSE(docs[2].HasMember("current"));
  }

  auto check = run(shop_bin, with_db({"check"}));
  CAPTURE(check.out);
  CHECK(check.code == 0);
  CHECK(contains(check.out, "upcasting chains"));
  CHECK(contains(check.out, "decode as clitest::v1::ItemAdded and upcast"));

  // An old payload that no longer decodes fails the check before a deploy.
  {
    evs::SqliteEventStore store({db});
    append(store, "order-2", {raw_event("clitest.item_added", "\x01", evs::Encoding::binary, 1)});
  }
  auto bad = run(shop_bin, with_db({"check"}));
  CHECK(bad.code == 1);
  CHECK(contains(bad.out, "do not decode as clitest::v1::ItemAdded and upcast"));
}
