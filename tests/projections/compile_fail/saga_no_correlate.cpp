// Must not compile: no correlate at all.
#include "saga_fixture.hpp"

class Saga1 : public evs::ProcessManager<Saga1, cf::Data, cf::Step, cf::Opened, cf::Closed> {
 public:
  static constexpr std::string_view name = "saga1";
  using ProcessManager::ProcessManager;
  void handle(const cf::Opened&, Saga&) {}
  void handle(const cf::Closed&, Saga&) {}
};

void compile(evs::EventStore& store) { cf::use<Saga1>(store); }
int main() {}
