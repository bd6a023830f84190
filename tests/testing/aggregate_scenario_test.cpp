#include "../support/bank.hpp"

#include <evs/testing/aggregate_scenario.hpp>

#include <doctest/doctest.h>

using evs::testing::AggregateScenario;
using evs::testing::ScenarioFailure;
using testdomain::Account;
using testdomain::Deposited;
using testdomain::Withdrawn;

TEST_CASE("an aggregate scenario passes when the command raises exactly the expected events") {
  AggregateScenario<Account>("1").given(Deposited{100, ""}).when([](Account& a) { return a.withdraw(30); }).then(Withdrawn{30});
  AggregateScenario<Account>("1").when([](Account&) {}).then_nothing();
  AggregateScenario<Account>("1")
      .given(Deposited{10, ""})
      .when([](Account& a) { return a.withdraw(30); })
      .then_error("insufficient funds");
}

TEST_CASE("an aggregate scenario fails, showing both sides, on other events, a missing error or an unexpected one") {
  CHECK_THROWS_WITH_AS(AggregateScenario<Account>("1")
                           .given(Deposited{100, ""})
                           .when([](Account& a) { return a.withdraw(30); })
                           .then(Withdrawn{31}),
                       doctest::Contains(R"(test.withdrawn {"cents":31})"), ScenarioFailure);
  CHECK_THROWS_AS(AggregateScenario<Account>("1").when([](Account& a) { a.deposit(1); }).then_nothing(), ScenarioFailure);
  CHECK_THROWS_WITH_AS(AggregateScenario<Account>("1").when([](Account& a) { return a.withdraw(5); }).then(Withdrawn{5}),
                       doctest::Contains("the command failed: rejected: insufficient funds"), ScenarioFailure);
  CHECK_THROWS_AS(AggregateScenario<Account>("1")
                      .given(Deposited{100, ""})
                      .when([](Account& a) { return a.withdraw(1); })
                      .then_error("insufficient"),
                  ScenarioFailure);
  CHECK_THROWS_AS(AggregateScenario<Account>("1").then_nothing(), ScenarioFailure);  // then before when
}

TEST_CASE("then_error fails when the rejected command raised events anyway") {
  const auto raise_then_refuse = [](Account& a) -> evs::Result<void> {
    a.deposit(5);
    return evs::Error{evs::errc::invalid_argument, "refused"};
  };
  CHECK_THROWS_WITH_AS(AggregateScenario<Account>("1").when(raise_then_refuse).then_error("refused"),
                       doctest::Contains(R"(raised:
  test.deposited)"),
                       ScenarioFailure);
  // A command that throws after raising is caught the same way.
  CHECK_THROWS_AS(AggregateScenario<Account>("1")
                      .when([](Account& a) {
                        a.deposit(5);
                        throw std::runtime_error("refused");
                      })
                      .then_error("refused"),
                  ScenarioFailure);
}
