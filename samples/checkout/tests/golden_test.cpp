// Golden payloads of every checkout event (tests/golden/<name>.v<version>.bin and .json): what stores
// hold must keep decoding, and re-encode byte for byte. Never regenerate a file; a new version gets new files,
// and the old version's files stay, checked as the old type and upcast to the current one.
#include "events.hpp"

#include <evs/testing/golden.hpp>

#include <doctest/doctest.h>

using evs::testing::check_golden_event;
using evs::testing::check_golden_upcast_event;

TEST_CASE("every checkout event's golden payloads decode and re-encode byte for byte") {
  const std::filesystem::path dir = CHECKOUT_GOLDEN_DIR;
  CHECK_NOTHROW(check_golden_event(
      dir, checkout::OrderPlaced{"o-1001", "ada", "ada@example.com", "sku-42", 3, 4497, "EUR", "ch-77"}));
  CHECK_NOTHROW(check_golden_event(dir, checkout::OrderShipped{"o-1001"}));
  CHECK_NOTHROW(check_golden_event(dir, checkout::PaymentRefunded{"o-1001", 4497, "rf-9"}));
  CHECK_NOTHROW(check_golden_event(dir, checkout::OrderCancelled{"o-1001", "out of stock"}));
  CHECK_NOTHROW(check_golden_event(dir, checkout::Restocked{"sku-42", 100}));
  CHECK_NOTHROW(check_golden_event(dir, checkout::StockReserved{"sku-42", "o-1001", 3}));
  CHECK_NOTHROW(check_golden_event(dir, checkout::ReservationRejected{"sku-42", "o-1002", "only 2 left"}));
}

TEST_CASE("checkout.order_placed v1 golden payloads still decode as v1, and upcast to v2 in US dollars") {
  const std::filesystem::path dir = CHECKOUT_GOLDEN_DIR;
  CHECK_NOTHROW(check_golden_event(
      dir, checkout::v1::OrderPlaced{"o-1001", "ada", "ada@example.com", "sku-42", 3, 4497, "ch-77"}));
  CHECK_NOTHROW(check_golden_upcast_event<checkout::v1::OrderPlaced>(
      dir, checkout::OrderPlaced{"o-1001", "ada", "ada@example.com", "sku-42", 3, 4497, "USD", "ch-77"}));
}
