// Must not compile: a compensate taking the step as a string would never run.
#include "saga_fixture.hpp"

class Saga1 : public evs::ProcessManager<Saga1, cf::Data, cf::Step, cf::Opened, cf::Closed> {
 public:
  static constexpr std::string_view name = "saga1";
  using ProcessManager::ProcessManager;
  static constexpr auto correlate = evs::by(&cf::Opened::id, &cf::Closed::id);
  void handle(const cf::Opened&, Saga&) {}
  void handle(const cf::Closed&, Saga&) {}
  void compensate(std::string_view, Saga&) {}
};

void compile(evs::EventStore& store) { cf::use<Saga1>(store); }
int main() {}
