// An effect handler for the dead-letter tests: sends "mail" for each deposit and fails for memo "bad" while
// `broken` is set (so one event is parked, and a retry succeeds once it is cleared).
#pragma once

#include "test_events.hpp"

#include <evs/projections/projection.hpp>

#include <atomic>
#include <stdexcept>
#include <string_view>

namespace evs::test {

struct Mailer : evs::EffectHandler<Mailer, testdomain::Deposited> {
  static constexpr std::string_view name = "mailer";
  std::atomic<bool> broken{true};
  std::atomic<int> sent{0};
  void handle(const testdomain::Deposited& d, const evs::RecordedEvent&) {
    if (d.memo == "bad" && broken) throw std::runtime_error("smtp: mailbox unavailable");
    ++sent;
  }
};

}  // namespace evs::test
