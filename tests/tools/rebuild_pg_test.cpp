// `rebuild` and `replay` on a PostgreSQL read model (the store on PostgreSQL too), through a real embedded-app
// binary, against a live projection that keeps following: the swap moves the shadow schema's tables in
// atomically while the live engine is held at its next batch. Needs a server (EVS_PG_URL, see
// support/pg_server.hpp); without one these tests are reported as skipped.
#include "rebuild_support.hpp"
#include "cli_support.hpp"

#include "../support/pg_server.hpp"
#include "../support/store_compare.hpp"

#include <evs/eventstore/pg_event_store.hpp>
#include <evs/projections/engine.hpp>
#include <evs/projections/sql_database.hpp>

#include <doctest/doctest.h>

#include <map>

namespace {

using rebuildtest::expected_totals;
using rebuildtest::fill;
using Totals = rebuildtest::TotalsTable;

std::string location(const evs::test::PgSchema& schema, const std::string& name) {
  const std::string& url = schema.url();
  return url + (url.find('?') == std::string::npos ? "?" : "&") + "evs_schema=" + name;
}

evs::PgOptions pg_options(const evs::test::PgSchema& schema) {
  evs::PgOptions o;
  o.url = schema.url();
  o.schema = schema.name();
  return o;
}

// The totals table in the read model at `db`.
Totals read_totals(const std::string& db) {
  Totals out;
  auto database = evs::SqlDatabase::open(db);
  for (const auto& row : database.session().query("SELECT stream, cents, n FROM totals"))
    out[evs::sql_text(row[0])] = {evs::sql_int(row[1]), evs::sql_int(row[2])};
  return out;
}

bool schema_exists(const evs::test::PgSchema& any, const std::string& name) {
  auto db = evs::SqlDatabase::open(location(any, any.name()));
  return !db.session().query("SELECT 1 FROM pg_namespace WHERE nspname = ?1", {name}).empty();
}

clitest::Output run_app(const std::vector<std::string>& args, const std::string& read_model, bool doubled = false) {
  std::vector<std::pair<std::string, std::string>> env{{"EVS_TEST_READ_MODEL", read_model}};
  if (doubled) env.emplace_back("EVS_TEST_TOTALS_DOUBLE", "1");
  return clitest::run(EVS_REBUILD_APP, args, {}, env);
}

}  // namespace

TEST_CASE("rebuild on PostgreSQL swaps a rebuilt schema's tables in while the live projection keeps following, "
          "dry run and replay --until work there too") {
  evs::test::PgSchema events, read, as_of;
  const std::string store_at = location(events, events.name());
  const std::string read_model = location(read, read.name());
  evs::PgEventStore store(pg_options(events));
  fill(store, 6000);

  rebuildtest::LiveTotals live(store, read_model);
  REQUIRE(live.wait_for(store.last_position().value()));
  REQUIRE(read_totals(read_model) == expected_totals(store));

  // A dry run of the same logic finds nothing to change; of a changed logic, the difference.
  auto same = run_app({"--db", store_at, "rebuild", "totals", "--dry-run"}, read_model);
  CAPTURE(same.err);
  CHECK(same.code == 0);
  CHECK(same.out.find("equals the live one") != std::string::npos);
  auto doubled = run_app({"--db", store_at, "rebuild", "totals", "--dry-run"}, read_model, true);
  CAPTURE(doubled.err);
  CHECK(doubled.code == 3);
  CHECK(doubled.out.find("DIFFERENT") != std::string::npos);
  CHECK_FALSE(schema_exists(read, read.name() + "_dryrun_totals"));

  // Damage the live read model behind the projection's back: the rebuild must repair it, while appends
  // continue and the live engine keeps committing batches.
  evs::SqlDatabase::open(read_model).session().exec("UPDATE totals SET cents = 0");
  rebuildtest::BackgroundDeposits writer(store);
  auto rebuilt = run_app({"--db", store_at, "rebuild", "totals"}, read_model);
  writer.stop();
  CAPTURE(rebuilt.err);
  CHECK(rebuilt.code == 0);
  CHECK(rebuilt.out.find("swapped in the rebuilt totals") != std::string::npos);
  CHECK_FALSE(schema_exists(read, read.name() + "_rebuild_totals"));

  // The live engine continues from the swapped-in state: nothing lost, nothing applied twice.
  const std::uint64_t last = fill(store, 100, 7);
  REQUIRE(live.wait_for(last));
  CHECK(read_totals(read_model) == expected_totals(store));
  live.engine.stop();

  // A view over a read-model table keeps that table: the swap fails with PostgreSQL's reason and changes
  // nothing (docs/postgresql.md).
  evs::SqlDatabase::open(read_model).session().exec("CREATE VIEW paying AS SELECT * FROM totals WHERE cents > 0");
  const Totals kept = read_totals(read_model);
  auto refused = run_app({"--db", store_at, "rebuild", "totals", "--from-scratch"}, read_model);
  CHECK(refused.code == 1);
  CHECK(refused.err.find("depend") != std::string::npos);
  CHECK(read_totals(read_model) == kept);
  evs::SqlDatabase::open(read_model).session().exec("DROP VIEW paying");

  // Time travel into a schema of its own.
  const auto log = evs::test::whole_log(store);
  const std::uint64_t until = log[log.size() / 3].position;
  const std::string target = location(as_of, as_of.name());
  auto replayed =
      run_app({"--db", store_at, "replay", "totals", "--until", std::to_string(until), "--target", target}, read_model);
  CAPTURE(replayed.err);
  CHECK(replayed.code == 0);
  CHECK(read_totals(target) == expected_totals(store, until));
  auto onto_live =
      run_app({"--db", store_at, "replay", "totals", "--until", std::to_string(until), "--target", read_model}, read_model);
  CHECK(onto_live.code == 1);
  CHECK(onto_live.err.find("must not be the live database") != std::string::npos);
}
