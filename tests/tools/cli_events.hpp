// Event types of the embedded test app (cli_app.cpp). The tests encode payloads with the same structs, so
// the app can decode them.
#pragma once

#include <evs/core/event.hpp>
#include <evs/core/upcast.hpp>

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

namespace v1 {
// Version 1 had no quantity: one item each.
struct ItemAdded {
  std::string order_id;
  std::string sku;
};
EVS_EVENT(ItemAdded, "clitest.item_added", 1, order_id, sku)
EVS_UPCAST(ItemAdded, [](const ItemAdded& e) { return clitest::ItemAdded{e.order_id, e.sku, 1}; })
}  // namespace v1

}  // namespace clitest
