// A deliberately broken program for upcast_startup_test: an old version of an event without its upcaster,
// and a component that starts up over a store that is still empty. `broken_chain_startup_app repository`,
// `engine` or `process_manager` must stop while that component starts, before it reads any event, naming the
// missing link; `none` starts nothing and exits 0 (the chain is checked only at start-up or decode).
#include <evs/eventstore/memory_event_store.hpp>
#include <evs/eventstore/repository.hpp>
#include <evs/projections/engine.hpp>
#include <evs/projections/process_manager.hpp>

#include <cstdio>
#include <cstring>

namespace startup {
struct Opened { std::string id; std::string owner; };
EVS_EVENT(Opened, "startup.opened", 2, id, owner)
namespace v1 {
struct Opened { std::string id; };
EVS_EVENT(Opened, "startup.opened", 1, id)  // no EVS_UPCAST: the broken link
}  // namespace v1

struct State { std::string id; };
BOOST_DESCRIBE_STRUCT(State, (), (id))

class Account : public evs::Aggregate<Account, State, Opened> {
 public:
  static constexpr std::string_view category = "acc";
  using Aggregate::Aggregate;

 private:
  friend evs::AggregateAccess;
  void apply(const Opened& e) { state_.id = e.id; }
};

class Count : public evs::MemoryProjection<Count, Opened> {
 public:
  static constexpr std::string_view name = "count";
  void handle(const Opened&) { ++seen; }
  int seen = 0;
};

struct Data { std::string id; };
BOOST_DESCRIBE_STRUCT(Data, (), (id))
enum class Step { open };
BOOST_DESCRIBE_ENUM(Step, open)

class Onboarding : public evs::ProcessManager<Onboarding, Data, Step, Opened> {
 public:
  static constexpr std::string_view name = "onboarding";
  using ProcessManager::ProcessManager;

 private:
  friend evs::SagaAccess;
  static constexpr auto correlate = evs::by(&Opened::id);
  void handle(const Opened&, Saga&) {}
};
}  // namespace startup

int main(int argc, char** argv) {
  const char* mode = argc > 1 ? argv[1] : "none";
  std::puts("main ran");
  std::fflush(stdout);
  evs::MemoryEventStore store;
  if (std::strcmp(mode, "repository") == 0) {
    evs::Repository<startup::Account> repository(store);
  } else if (std::strcmp(mode, "engine") == 0) {
    evs::ProjectionEngine engine(store, evs::EngineOptions{.threads = 1});
    startup::Count count;
    engine.add(count);
    engine.start();
    engine.stop();
  } else if (std::strcmp(mode, "process_manager") == 0) {
    evs::ProjectionEngine engine(store, evs::EngineOptions{.threads = 1});
    startup::Onboarding onboarding(store);
    onboarding.attach(engine, {.database = argc > 2 ? argv[2] : "onboarding.db"});
  } else if (std::strcmp(mode, "none") != 0) {
    std::fprintf(stderr, "unknown mode %s\n", mode);
    return 2;
  }
  std::puts("started");
  return 0;
}
