// Old versions of events through the read paths: repository load, time travel, SQL and memory projections
// (and the type names their SQL filter subscribes to).
#include "../support/backends.hpp"
#include "../support/upcast_events.hpp"

#include <evs/eventstore/repository.hpp>
#include <evs/projections/projection.hpp>
#include <evs/testing/projection_scenario.hpp>

#include <doctest/doctest.h>

#include <algorithm>
#include <map>

using namespace evs;
using namespace updomain;

namespace {

// Stream ledger-a holds, in order: v1 credit $2, a rename (funded 30 EUR cents), a current credit 5 USD,
// a split transfer a -> b of 40, a v2 credit 6.
std::vector<EventData> mixed_history() {
  return {make_event_data(v1::Credited{"a", 2}), make_event_data(v1::Funded{"a", 30}, Encoding::json),
          make_event_data(Credited{"a", 5, "USD"}), make_event_data(v1::Transferred{"a", "b", 40}),
          make_event_data(v2::Credited{"a", 6})};
}

class Balances : public MemoryProjection<Balances, Credited, Debited> {
 public:
  static constexpr std::string_view name = "balances";
  void handle(const Credited& e) { balance[e.account] += e.cents; }
  void handle(const Debited& e) { balance[e.account] -= e.cents; }
  std::map<std::string, std::int64_t> balance;
};

class BalanceTable : public SqlProjection<BalanceTable, Credited, Debited> {
 public:
  static constexpr std::string_view name = "balance_table";
  void setup(SqlSession& s) override {
    s.exec("CREATE TABLE IF NOT EXISTS balance (account TEXT PRIMARY KEY, cents INTEGER NOT NULL)");
  }
  void handle(const Credited& e, SqlSession& s) { add(s, e.account, e.cents); }
  void handle(const Debited& e, SqlSession& s) { add(s, e.account, -e.cents); }

 private:
  static void add(SqlSession& s, const std::string& account, std::int64_t cents) {
    s.exec("INSERT INTO balance VALUES (?1, ?2) ON CONFLICT(account) DO UPDATE SET cents = cents + ?2",
           {account, cents});
  }
};

}  // namespace

TEST_CASE_TEMPLATE("a repository loads a stream of old versions, renames and splits as current events", B,
                   EVS_ALL_BACKENDS) {
  B backend;
  auto store = backend.open();
  REQUIRE(store->append("ledger-a", ExpectedVersion::no_stream(), mixed_history()));
  Repository<Ledger> repo(*store);
  auto ledger = repo.load("a");
  REQUIRE(ledger);
  CHECK(ledger->state().credited == 200 + 30 + 5 + 40 + 6);  // the transfer's credit went to b, but this
  CHECK(ledger->state().debited == 40);                        // aggregate applies the whole stream
  CHECK(ledger->state().currencies == std::vector<std::string>{"USD", "EUR", "USD", "USD", "USD"});
  CHECK(ledger->version() == 5);

  // New events are written at the current version, after the old ones.
  ledger->credit(1);
  REQUIRE(repo.save(*ledger));
  CHECK(store->read_stream("ledger-a").value().back().schema_version == 3);

  // Time travel: as of the log's third event.
  auto past = repo.load_as_of("a", store->read_all(1, 3).value().events.at(2).position);
  REQUIRE(past);
  CHECK(past->state().credited == 235);
  CHECK(past->state().debited == 0);
  CHECK(past->version() == 3);
}

TEST_CASE("projections subscribe to the old names that upcast into their events") {
  const std::vector<std::string> names{"up.credited", "up.debited", "up.funded", "up.transferred"};
  CHECK(Balances().event_types() == names);
  CHECK(BalanceTable().event_types() == names);
}

TEST_CASE("memory and SQL projections receive old events as current ones") {
  // The scenario delivers events with their registered name and version: the old ones take the upcast path.
  evs::testing::ProjectionScenario<Balances>()
      .in_stream("ledger-a")
      .given(v1::Credited{"a", 2}, v1::Funded{"a", 30}, Credited{"a", 5, "USD"}, v1::Transferred{"a", "b", 40},
             v2::Credited{"a", 6})
      .then_view([](const Balances& b) { return b.balance; },
                 std::map<std::string, std::int64_t>{{"a", 200 + 30 + 5 - 40 + 6}, {"b", 40}});
  evs::testing::ProjectionScenario<BalanceTable>()
      .given(v1::Credited{"a", 2}, v1::Transferred{"a", "b", 40})
      .then_rows("SELECT account, cents FROM balance ORDER BY account", {{"a", std::int64_t{160}}, {"b", std::int64_t{40}}});
}
