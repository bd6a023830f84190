// A deliberately broken program for registry_test: two event types share one stable name.
#include <evs/core/event.hpp>

#include <cstdio>

namespace twice {
struct First { int a = 0; };
BOOST_DESCRIBE_STRUCT(First, (), (a))
EVS_EVENT(First, "dup.name", 1)
struct Second { int b = 0; };
BOOST_DESCRIBE_STRUCT(Second, (), (b))
EVS_EVENT(Second, "dup.name", 1)
}  // namespace twice

int main() {
  std::puts("main ran");
  return 0;
}
