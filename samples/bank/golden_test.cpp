// Golden payloads of every bank event (golden/<name>.v<version>.bin and .json): what stores hold must keep
// decoding, and re-encode byte for byte. Never regenerate a file; a new version gets new files.
#include "bank.hpp"

#include <evs/testing/golden.hpp>

#include <doctest/doctest.h>

using evs::testing::check_golden_event;

TEST_CASE("every bank event's golden payloads decode and re-encode byte for byte") {
  const std::filesystem::path dir = BANK_GOLDEN_DIR;
  CHECK_NOTHROW(check_golden_event(dir, bank::AccountOpened{"alice"}));
  CHECK_NOTHROW(check_golden_event(dir, bank::MoneyDeposited{25000, ""}));
  CHECK_NOTHROW(check_golden_event(dir, bank::MoneyWithdrawn{-1, "t-1"}));
  CHECK_NOTHROW(check_golden_event(dir, bank::TransferRefunded{700, "t-1"}));
  CHECK_NOTHROW(check_golden_event(dir, bank::AccountClosed{"customer request"}));
  CHECK_NOTHROW(check_golden_event(dir, bank::TransferRequested{"t-1", "account-a", "account-b", 700}));
  CHECK_NOTHROW(check_golden_event(dir, bank::TransferLegRejected{"t-1", "credit", "account closed"}));
}
