// Must compile: the control for the process-manager compile-fail tests (every form that is allowed).
#include "saga_fixture.hpp"

class Control : public evs::ProcessManager<Control, cf::Data, cf::Step, cf::Opened, cf::Closed> {
 public:
  static constexpr std::string_view name = "control";
  using ProcessManager::ProcessManager;
  void handle(const cf::Opened& e, Saga& saga) {
    saga.start_step(cf::Step::open);
    saga.send(cf::Notify{e.id});
  }

 private:
  friend evs::SagaAccess;  // private correlation, handler and hooks
  static constexpr auto correlate = evs::by(evs::if_set(&cf::Opened::id), [](const cf::Closed& e) { return e.id; });
  void handle(const cf::Closed&, const evs::RecordedEvent&, Saga& saga) { saga.fail_step(cf::Step::open, "closed"); }
  void compensate(cf::Step, Saga&) {}
  void on_timeout(cf::Step step, Saga& saga) { saga.fail_step(step, "late"); }
};

void compile(evs::EventStore& store) { cf::use<Control>(store); }
int main() {}
