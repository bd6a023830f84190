// Must compile: the control for the projection compile-fail tests. Each handler form, with and without
// the envelope, for each kind of projection.
#include "../../support/test_events.hpp"

#include <evs/projections/projection.hpp>

using testdomain::Deposited;
using testdomain::Withdrawn;

class Ledger : public evs::SqlProjection<Ledger, Deposited, Withdrawn> {
 public:
  static constexpr std::string_view name = "ledger";
  void handle(const Deposited&, evs::SqlSession&) {}
  void handle(const Withdrawn&, const evs::RecordedEvent&, evs::SqlSession&) {}
};

class Totals : public evs::MemoryProjection<Totals, Deposited, Withdrawn> {
 public:
  static constexpr std::string_view name = "totals";
  void handle(const Deposited&) {}
  void handle(const Withdrawn&, const evs::RecordedEvent&) {}
};

class Mailer : public evs::EffectHandler<Mailer, Deposited> {
 public:
  static constexpr std::string_view name = "mailer";
  void handle(const Deposited&) {}
};

int main() {
  Ledger l;
  Totals t;
  Mailer m;
}
