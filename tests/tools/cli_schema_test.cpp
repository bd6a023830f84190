// The tool and shape drift: `check` names a drifted type's members, reads warn, and `snapshots drop`.
#include "cli_support.hpp"

#include <doctest/doctest.h>

using namespace clitest;

TEST_SUITE("cli") {

// The fixture's clitest.order_placed v1 as if an older build had stored it with one more member.
inline void drift_order_placed(const std::string& db) {
  sql(db,
      "UPDATE event_schemas SET fingerprint = 1, "
      "members = 'order_id:string,customer:string,total_cents:int64,coupon:string' "
      "WHERE type = 'clitest.order_placed' AND schema_version = 1");
}

TEST_CASE("check reports shape drift per type, naming the members, and reads only warn") {
  Fixture f;
  // What the fixture's typed appends recorded (its raw events record nothing).
  CHECK(sql_text(f.db, "SELECT members FROM event_schemas WHERE type = 'clitest.order_placed'") ==
        "order_id:string,customer:string,total_cents:int64");
  CHECK(sql_text(f.db, "SELECT count(*) FROM event_schemas") == "2");
  drift_order_placed(f.db);

  auto r = run(shop_bin, f.with_db({"check"}));
  CAPTURE(r.out);
  CAPTURE(r.err);
  CHECK(r.code == 1);
  CHECK(contains(r.out, "clitest.order_placed v1"));
  CHECK(contains(r.out, "shape drift: event type clitest.order_placed version 1 (clitest::OrderPlaced)"));
  CHECK(contains(r.out, "removed coupon:string"));
  CHECK(contains(r.out, "decode as clitest::ItemAdded"));  // the other type is fine
  CHECK(contains(r.err, "shop: error: check failed: 1 problem"));

  auto j = run(shop_bin, f.with_db({"check", "--json"}));
  CHECK(j.code == 1);
  bool found = false;
  for (const auto& d : parse_json_lines(j.out))
    if (d.HasMember("type") && std::string(d["type"].GetString()) == "clitest.order_placed") {
      found = true;
      CHECK_FALSE(d["ok"].GetBool());
      CHECK(std::string(d["status"].GetString()) == "schema_drift");
      REQUIRE(d["removed"].Size() == 1);
      CHECK(std::string(d["removed"][0].GetString()) == "coupon:string");
      CHECK(d["added"].Size() == 0);
      CHECK(std::string(d["registered_members"].GetString()) == "order_id:string,customer:string,total_cents:int64");
    }
  CHECK(found);

  // Inspecting still works, with one warning line naming the drift.
  auto shown = run(shop_bin, f.with_db({"read", "order-2"}));
  CHECK(shown.code == 0);
  CHECK(contains(shown.out, "order-2"));
  REQUIRE(lines(shown.err).size() == 1);
  CHECK(contains(shown.err, "shop: warning: "));
  CHECK(contains(shown.err, "removed coupon:string"));

  // The standalone binary has no registry: nothing to compare, no warning.
  auto plain = run(evs_bin, f.with_db({"read", "order-2"}));
  CHECK(plain.code == 0);
  CHECK(plain.err.empty());
}

TEST_CASE("snapshots drop deletes one stream's, one state type's or every snapshot") {
  Fixture f;
  {
    evs::SqliteEventStore store({f.db});
    REQUIRE(store.save_snapshot({"order-1", 3, "shop::OrderState", 1, evs::Encoding::binary, "s1", {}}));
    REQUIRE(store.save_snapshot({"order-2", 1, "shop::OrderState", 1, evs::Encoding::binary, "s2", {}}));
    REQUIRE(store.save_snapshot({"cart-9", 1, "shop::CartState", 1, evs::Encoding::binary, "s3", {}}));
  }
  const auto remaining = [&] {
    return sql_text(f.db, "SELECT coalesce(group_concat(stream, ','), '') FROM (SELECT stream FROM snapshots ORDER BY stream)");
  };

  check_one_line_error(run(evs_bin, f.with_db({"snapshots", "drop"})), 2);  // says what to drop
  check_one_line_error(run(evs_bin, f.with_db({"snapshots", "drop", "--all", "--stream", "order-1"})), 2);
  CHECK(remaining() == "cart-9,order-1,order-2");

  auto one = run(evs_bin, f.with_db({"snapshots", "drop", "--stream", "order-1"}));
  CHECK(one.code == 0);
  CHECK(contains(one.out, "dropped 1 snapshot of stream order-1"));
  CHECK(remaining() == "cart-9,order-2");

  auto none = run(evs_bin, f.with_db({"snapshots", "drop", "--stream", "order-1", "--json"}));
  CHECK(none.code == 0);
  CHECK(parse_json(lines(none.out).at(0))["dropped"].GetUint64() == 0);

  auto by_type = run(evs_bin, f.with_db({"snapshots", "drop", "--type", "shop::CartState", "--json"}));
  CHECK(by_type.code == 0);
  CHECK(parse_json(lines(by_type.out).at(0))["dropped"].GetUint64() == 1);
  CHECK(remaining() == "order-2");

  // A drifted event type does not stop it (nothing is decoded).
  drift_order_placed(f.db);
  auto all = run(shop_bin, f.with_db({"snapshots", "drop", "--all"}));
  CAPTURE(all.err);
  CHECK(all.code == 0);
  CHECK(contains(all.out, "dropped 1 snapshot"));
  CHECK(remaining().empty());

  // The events are untouched: the store still checks out (by the standalone binary: no drift to report).
  CHECK(run(evs_bin, f.with_db({"check"})).code == 0);
}

}  // TEST_SUITE
