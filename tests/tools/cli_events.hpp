// Event types of the embedded test app (cli_app.cpp). The tests encode payloads with the same structs, so
// the app can decode them.
#pragma once

#include <evs/core/event.hpp>

#include <cstdint>
#include <string>

namespace clitest {

struct OrderPlaced {
  std::string order_id;
  std::string customer;
  std::int64_t total_cents = 0;
};
BOOST_DESCRIBE_STRUCT(OrderPlaced, (), (order_id, customer, total_cents))
EVS_EVENT(OrderPlaced, "clitest.order_placed", 1)

struct ItemAdded {
  std::string order_id;
  std::string sku;
  std::int64_t qty = 0;
};
BOOST_DESCRIBE_STRUCT(ItemAdded, (), (order_id, sku, qty))
EVS_EVENT(ItemAdded, "clitest.item_added", 2)

}  // namespace clitest
