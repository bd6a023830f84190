// Must NOT compile: raising an event type the aggregate does not list.
#include "../../support/test_events.hpp"

#include <evs/core/aggregate.hpp>

struct State { std::int64_t n = 0; };
BOOST_DESCRIBE_STRUCT(State, (), (n))

class Account : public evs::Aggregate<Account, State, testdomain::Deposited> {
 public:
  static constexpr std::string_view category = "acc";
  void apply(const testdomain::Deposited&) {}
  void oops() { raise(testdomain::Withdrawn{1}); }
};

int main() { Account a; a.oops(); }
