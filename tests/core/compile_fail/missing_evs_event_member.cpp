// Must NOT compile: EVS_EVENT's member list leaves a member out.
#include <evs/core/event.hpp>

#include <optional>
#include <string>

struct ShortMemberList {
  std::string order_id;
  std::optional<std::string> coupon;  // not listed
};
EVS_EVENT(ShortMemberList, "test.short_member_list", 1, order_id)

int main() {}
