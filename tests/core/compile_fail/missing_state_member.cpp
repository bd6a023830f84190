// Must NOT compile: an aggregate state with a member missing from its description would snapshot without
// it, and a loaded aggregate would silently come back with its default.
#include "../../support/test_events.hpp"

#include <evs/core/aggregate.hpp>

struct HalfDescribedState {
  std::int64_t balance = 0;
  std::int64_t operations = 0;  // not described
};
BOOST_DESCRIBE_STRUCT(HalfDescribedState, (), (balance))

class Account : public evs::Aggregate<Account, HalfDescribedState, testdomain::Deposited> {
 public:
  static constexpr std::string_view category = "acc";
  void apply(const testdomain::Deposited& e) { state_.balance += e.cents; }
};

int main() { Account a; }
