// A process manager receives old versions of its events, renamed and split ones included, as current types.
#include "../support/upcast_events.hpp"

#include <evs/projections/process_manager.hpp>
#include <evs/testing/saga_scenario.hpp>

#include <boost/describe/enum.hpp>
#include <doctest/doctest.h>

namespace {

struct ReceiptData {
  std::int64_t receipts = 0;
};
BOOST_DESCRIBE_STRUCT(ReceiptData, (), (receipts))

enum class ReceiptStep { sent };
BOOST_DESCRIBE_ENUM(ReceiptStep, sent)

struct SendReceipt {
  std::string account;
  std::int64_t cents = 0;
  std::string currency;
};
BOOST_DESCRIBE_STRUCT(SendReceipt, (), (account, cents, currency))

// Sends a receipt for every credit, correlated by account.
class Receipts : public evs::ProcessManager<Receipts, ReceiptData, ReceiptStep, updomain::Credited> {
 public:
  static constexpr std::string_view name = "receipts";
  static constexpr auto correlate = evs::by(&updomain::Credited::account);
  using ProcessManager::ProcessManager;

 private:
  friend evs::SagaAccess;
  void handle(const updomain::Credited& e, Saga& saga) {
    ++saga.data().receipts;
    saga.send(SendReceipt{e.account, e.cents, e.currency});
  }
};

}  // namespace

TEST_CASE("a process manager handles old versions, renames and splits of its events as current ones") {
  evs::MemoryEventStore store;
  CHECK(Receipts(store).event_types() ==
        std::vector<std::string>{"evs.saga.deadline_reached", "up.credited", "up.funded", "up.transferred"});
  evs::testing::SagaScenario<Receipts> scenario;
  scenario.when(updomain::v1::Credited{"a", 2}).then_commands(SendReceipt{"a", 200, "USD"});
  scenario.when(updomain::v1::Funded{"a", 7}).then_commands(SendReceipt{"a", 7, "EUR"});
  // The split's debit is not this process manager's event; its credit is.
  scenario.when(updomain::v1::Transferred{"a", "b", 40}).then_commands(SendReceipt{"b", 40, "USD"});
}
