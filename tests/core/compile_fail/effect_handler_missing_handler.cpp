// Must NOT compile: Mailer lists Withdrawn and has no handle for it.
#include "../../support/test_events.hpp"

#include <evs/projections/projection.hpp>

using testdomain::Deposited;
using testdomain::Withdrawn;

class Mailer : public evs::EffectHandler<Mailer, Deposited, Withdrawn> {
 public:
  static constexpr std::string_view name = "mailer";
  void handle(const Deposited&) {}
};

int main() { Mailer m; }
