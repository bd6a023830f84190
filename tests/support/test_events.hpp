// Event types and helpers shared by the tests.
#pragma once

#include "result_printing.hpp"

#include <evs/core/event.hpp>
#include <evs/eventstore/event_store.hpp>

#include <cstdint>
#include <string>
#include <vector>

namespace testdomain {

struct Deposited {
  std::int64_t cents = 0;
  std::string memo;
};
BOOST_DESCRIBE_STRUCT(Deposited, (), (cents, memo))
EVS_EVENT(Deposited, "test.deposited", 1)

struct Withdrawn {
  std::int64_t cents = 0;
};
BOOST_DESCRIBE_STRUCT(Withdrawn, (), (cents))
EVS_EVENT(Withdrawn, "test.withdrawn", 1)

// A raw event for store-level tests: type "test.deposited" with a binary payload.
inline evs::EventData deposit(std::int64_t cents, std::string memo = {}) {
  evs::EventData e;
  e.type = "test.deposited";
  e.payload = evs::encode(Deposited{cents, std::move(memo)}, evs::Encoding::binary);
  return e;
}

inline evs::EventData of_type(std::string type, std::string payload = "x") {
  evs::EventData e;
  e.type = std::move(type);
  e.payload = std::move(payload);
  return e;
}

}  // namespace testdomain
