// Must NOT compile: a member left out of an event's BOOST_DESCRIBE_STRUCT would be neither stored nor
// fingerprinted (then() compares encoded bytes, so no test would notice).
#include <evs/core/event.hpp>

#include <cstdint>
#include <string>

struct ForgottenMember {
  std::string order_id;
  std::int64_t total_cents = 0;  // not described
};
BOOST_DESCRIBE_STRUCT(ForgottenMember, (), (order_id))
EVS_EVENT(ForgottenMember, "test.forgotten_member", 1)

int main() {}
