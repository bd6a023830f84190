// Must not compile: the old correlation_id hook is no longer called.
#include "saga_fixture.hpp"

class Saga1 : public evs::ProcessManager<Saga1, cf::Data, cf::Step, cf::Opened, cf::Closed> {
 public:
  static constexpr std::string_view name = "saga1";
  using ProcessManager::ProcessManager;
  static constexpr auto correlate = evs::by(&cf::Opened::id, &cf::Closed::id);
  void handle(const cf::Opened&, Saga&) {}
  void handle(const cf::Closed&, Saga&) {}
  std::string correlation_id(const cf::Closed& e, const evs::RecordedEvent&) const { return e.id; }
};

void compile(evs::EventStore& store) { cf::use<Saga1>(store); }
int main() {}
