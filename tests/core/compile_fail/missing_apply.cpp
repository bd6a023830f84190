// Must NOT compile: Account lists Withdrawn but has no apply(const Withdrawn&).
#include "../../support/test_events.hpp"

#include <evs/core/aggregate.hpp>

struct State { std::int64_t n = 0; };
BOOST_DESCRIBE_STRUCT(State, (), (n))

class Account : public evs::Aggregate<Account, State, testdomain::Deposited, testdomain::Withdrawn> {
 public:
  static constexpr std::string_view category = "acc";
  void apply(const testdomain::Deposited&) {}
};

int main() { Account a; }
