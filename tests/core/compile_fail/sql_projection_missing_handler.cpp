// Must NOT compile: Ledger lists Withdrawn but handles it without the session, which is neither SQL form.
#include "../../support/test_events.hpp"

#include <evs/projections/projection.hpp>

using testdomain::Deposited;
using testdomain::Withdrawn;

class Ledger : public evs::SqlProjection<Ledger, Deposited, Withdrawn> {
 public:
  static constexpr std::string_view name = "ledger";
  void handle(const Deposited&, evs::SqlSession&) {}
  void handle(const Withdrawn&, const evs::RecordedEvent&) {}
};

int main() { Ledger l; }
