// The SQL projection used by the rebuild tests: per-stream totals of test.deposited events, in SQL that runs
// on SQLite and PostgreSQL alike. Setting the environment variable EVS_TEST_TOTALS_DOUBLE=1 changes its logic
// (amounts doubled), to give a rebuild's dry run something to find.
#pragma once

#include "../support/test_events.hpp"

#include <evs/projections/projection.hpp>

#include <cstdlib>
#include <string_view>

namespace rebuildtest {

class Totals : public evs::SqlProjection<Totals, testdomain::Deposited> {
 public:
  static constexpr std::string_view name = "totals";
  void setup(evs::SqlSession& db) {
    db.exec("CREATE TABLE IF NOT EXISTS totals(stream TEXT PRIMARY KEY, cents BIGINT NOT NULL, n BIGINT NOT NULL)");
  }
  void handle(const testdomain::Deposited& e, const evs::RecordedEvent& m, evs::SqlSession& db) {
    const char* doubled = std::getenv("EVS_TEST_TOTALS_DOUBLE");
    const std::int64_t cents = doubled && std::string_view(doubled) == "1" ? 2 * e.cents : e.cents;
    db.exec("INSERT INTO totals VALUES (?1, ?2, 1) ON CONFLICT(stream) DO UPDATE SET cents = totals.cents + excluded.cents, "
            "n = totals.n + 1",
            {m.stream_id, cents});
  }
};

}  // namespace rebuildtest
