// Shared by the process-manager compile-fail tests: two events, the saga's data, steps and a command.
#pragma once

#include <evs/projections/process_manager.hpp>

namespace cf {
struct Opened { std::string id; };
BOOST_DESCRIBE_STRUCT(Opened, (), (id))
EVS_EVENT(Opened, "cf.opened", 1)
struct Closed { std::string id; };
BOOST_DESCRIBE_STRUCT(Closed, (), (id))
EVS_EVENT(Closed, "cf.closed", 1)
struct Data { std::string id; };
BOOST_DESCRIBE_STRUCT(Data, (), (id))
enum class Step { open, close };
BOOST_DESCRIBE_ENUM(Step, open, close)
struct Notify { std::string id; };
BOOST_DESCRIBE_STRUCT(Notify, (), (id))

// Instantiates the process manager's checks.
template <class PM>
void use(evs::EventStore& store) {
  PM pm(store);
  (void)pm;
}
}  // namespace cf
