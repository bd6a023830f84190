// `evs workers` and the claims column of `evs projections`: two engines in this process work one partitioned
// SQL projection as the nodes "alpha" and "beta" (ProjectionOptions::node); the tool, reading the projection
// database only, shows each node with the partitions it holds, on SQLite and on PostgreSQL.
#include "cli_support.hpp"

#include "../projections/shop_read_model.hpp"
#ifdef EVS_TEST_POSTGRESQL
#include "../support/pg_server.hpp"
#endif
#include "../support/temp_dir.hpp"

#include <evs/eventstore/open_store.hpp>
#include <evs/projections/engine.hpp>

#include <doctest/doctest.h>

#include <algorithm>
#include <chrono>
#include <map>
#include <thread>

using namespace clitest;
using namespace std::chrono_literals;

namespace {

// Runs two nodes until the 4 partitions are spread 2 + 2, then checks what the tool shows, then stops one
// node gracefully and checks that the other takes its partitions at once and that its presence is gone.
void check_workers(const std::string& store_at, const std::string& model_at) {
  const auto store = evs::open_store(store_at);
  for (int i = 0; i < 40; ++i)
    append(*store, "order-" + std::to_string(i), {binary_event(shop::OrderPlaced{"order-" + std::to_string(i), "c", 100})});
  shop::ShopStats alpha_stats, beta_stats;
  evs::ProjectionOptions po;
  po.database = model_at;
  po.partitions = 4;
  po.lease = 9s;  // a release is taken within 3 s (a census), an expiry only after 6 s (below)
  std::map<std::string, std::unique_ptr<evs::ProjectionEngine>> engines;
  for (const std::string node : {"alpha", "beta"}) {
    po.node = node;
    auto engine = std::make_unique<evs::ProjectionEngine>(*store);
    engine->add(node == "alpha" ? alpha_stats : beta_stats, po);
    engine->start();
    engines[node] = std::move(engine);
  }
  const auto deadline = std::chrono::steady_clock::now() + 20s;
  for (;;) {
    const auto a = engines["alpha"]->health(shop::ShopStats::name).value();
    const auto b = engines["beta"]->health(shop::ShopStats::name).value();
    // Health shows the claims as of the node's last look (a third of the lease at most).
    const bool all_owned = a.claims.size() == 4 && std::all_of(a.claims.begin(), a.claims.end(), [](const auto& c) {
      return c.owner == "alpha" || c.owner == "beta";
    });
    if (a.partitions_held == 2 && b.partitions_held == 2 && all_owned && a.nodes.size() == 2) {
      CHECK(a.node == "alpha");
      break;
    }
    REQUIRE_MESSAGE(std::chrono::steady_clock::now() < deadline, "the partitions never spread 2 + 2");
    std::this_thread::sleep_for(20ms);
  }

  auto workers = run(evs_bin, {"workers", "--projections-db", model_at});
  CAPTURE(workers.out);
  CAPTURE(workers.err);
  REQUIRE(workers.code == 0);
  for (const auto& line : lines(workers.out)) {
    if (!contains(line, "shop_stats")) continue;
    CHECK((contains(line, "alpha") || contains(line, "beta")));
    CHECK(contains(line, "yes"));
  }
  std::map<std::string, std::size_t> held;
  auto json = run(evs_bin, {"workers", "--projections-db", model_at, "--json"});
  REQUIRE(json.code == 0);
  for (const auto& d : parse_json_lines(json.out)) {
    CHECK(d["alive"].GetBool());
    held[d["node"].GetString()] = d["claims"].GetArray().Size();
  }
  CHECK(held == std::map<std::string, std::size_t>{{"alpha", 2}, {"beta", 2}});

  auto projections = run(evs_bin, {"projections", "--db", store_at, "--projections-db", model_at});
  CAPTURE(projections.out);
  REQUIRE(projections.code == 0);
  CHECK(contains(projections.out, "claims (node: partitions)"));
  CHECK(contains(projections.out, "alpha: "));
  CHECK(contains(projections.out, "beta: "));
  auto projections_json = run(evs_bin, {"projections", "--db", store_at, "--projections-db", model_at, "--json"});
  REQUIRE(projections_json.code == 0);
  const auto docs = parse_json_lines(projections_json.out);
  REQUIRE(docs.size() == 1);
  CHECK(docs[0]["claims"].GetArray().Size() == 4);

  // A graceful stop gives the claims up and leaves: alpha takes them at its next census (every third of the
  // lease), well before beta's leases would have run out.
  const auto stopped = std::chrono::steady_clock::now();
  engines["beta"]->stop();
  while (engines["alpha"]->health(shop::ShopStats::name).value().partitions_held != 4) {
    REQUIRE_MESSAGE(std::chrono::steady_clock::now() - stopped < 5500ms,
                    "alpha did not take beta's released partitions before their lease would have run out");
    std::this_thread::sleep_for(20ms);
  }
  auto after = run(evs_bin, {"workers", "--projections-db", model_at, "--json"});
  REQUIRE(after.code == 0);
  const auto left = parse_json_lines(after.out);
  REQUIRE(left.size() == 1);
  CHECK(std::string(left[0]["node"].GetString()) == "alpha");
  engines["alpha"]->stop();
}

}  // namespace

TEST_CASE("evs workers and evs projections show each node's claims, on SQLite") {
  evs::test::TempDir dir;
  check_workers((dir / "events.db").string(), (dir / "model.db").string());
}

#ifdef EVS_TEST_POSTGRESQL
TEST_CASE("evs workers and evs projections show each node's claims, on PostgreSQL") {
  evs::test::PgSchema store_schema, model_schema;
  check_workers(store_schema.location(), model_schema.location());
}
#endif
