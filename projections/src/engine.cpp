// The projection engine. Layout:
//   - Lane (lane.cpp): one partition of one projection: its database connection, checkpoint and batch
//     processing
//   - Runner (runner.cpp): one projection: the read loop (catch-up, live wait, polling), partitions,
//     health, waiters
//   - ProjectionEngine::Impl (here): the io_context, the commit listener, start/stop
//
// Threading: every Runner's loop is a coroutine on its own strand; the lanes of a partitioned projection
// run on strands of their own, in parallel. While catching up, a Runner reads its next batch as it
// processes the current one (in parallel when the io_context has a second thread). SQLite calls block the
// io thread they run on (they are short).
#include "evs/projections/engine.hpp"

#include "evs/core/registry.hpp"

#include "runner.hpp"

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>

#include <future>
#include <mutex>
#include <thread>

namespace evs {

namespace asio = boost::asio;
using detail::Runner;

std::string_view to_string(ProjectionState state) {
  switch (state) {
    case ProjectionState::starting: return "starting";
    case ProjectionState::catching_up: return "catching_up";
    case ProjectionState::live: return "live";
    case ProjectionState::stalled: return "stalled";
    case ProjectionState::stopped: return "stopped";
    case ProjectionState::failed: return "failed";
  }
  return "?";
}

namespace {

// A projection as added, and the runner of its current (or last) run.
struct Registration {
  Projection* projection;
  ProjectionOptions options;
  std::uint64_t memory_resume = 0;  // memory views: where a restart of the same engine continues
  std::shared_ptr<Runner> runner;   // replaced at every start(); guarded by Impl::runners_mutex
};

}  // namespace

struct ProjectionEngine::Impl {
  EventStore& store;
  EngineOptions options;
  std::unique_ptr<asio::io_context> owned_io;
  asio::io_context& io;

  std::mutex lifecycle;  // add/start/stop; guards everything below but `registrations[i].runner`
  std::vector<Registration> registrations;
  std::vector<std::thread> threads;
  std::optional<asio::executor_work_guard<asio::io_context::executor_type>> work;
  std::optional<std::uint64_t> listener;
  bool running = false;
  std::uint64_t starts = 0;  // start()s so far (ProjectionHealth::run)

  mutable std::mutex runners_mutex;  // the runner pointers (read by health() and waits on any thread)

  Impl(EventStore& s, EngineOptions o, asio::io_context* external)
      : store(s), options(o), owned_io(external ? nullptr : std::make_unique<asio::io_context>()),
        io(external ? *external : *owned_io) {}

  std::shared_ptr<Runner> find(std::string_view name) const {
    std::lock_guard lock(runners_mutex);
    for (const auto& r : registrations)
      if (r.runner->name == name) return r.runner;
    return nullptr;
  }
  std::vector<std::shared_ptr<Runner>> runners() const {
    std::lock_guard lock(runners_mutex);
    std::vector<std::shared_ptr<Runner>> out;
    for (const auto& r : registrations) out.push_back(r.runner);
    return out;
  }

  // Waits for a runner's loop to end. With a caller's io_context, the wait helps run it (nothing else may,
  // for instance after run_for() or poll() returned), and gives up when it cannot: called on one of its
  // threads (the loop may need this very thread), or once it is stopped. Returns false when it let go.
  bool wait_or_abandon(Runner& r) {
    if (owned_io) {
      r.finished.get_future().wait();
      return true;
    }
    if (r.abandon_if_idle()) return false;
    auto finished = r.finished.get_future();
    while (finished.wait_for(std::chrono::seconds(0)) != std::future_status::ready) {
      if (io.get_executor().running_in_this_thread() || io.stopped()) {
        r.abandon();
        return false;
      }
      io.run_one_for(std::chrono::milliseconds(10));
    }
    return true;
  }
};

ProjectionEngine::ProjectionEngine(EventStore& store, EngineOptions options)
    : impl_(std::make_unique<Impl>(store, options, nullptr)) {}

ProjectionEngine::ProjectionEngine(EventStore& store, asio::io_context& io, EngineOptions options)
    : impl_(std::make_unique<Impl>(store, options, &io)) {}

ProjectionEngine::~ProjectionEngine() { stop(); }

void ProjectionEngine::add(Projection& projection, ProjectionOptions options) {
  detail::require_valid_upcasting_chains();
  std::lock_guard lock(impl_->lifecycle);
  const std::string name(projection.name());
  if (impl_->running) throw Exception(errc::invalid_argument, "add " + name + ": the engine is already running");
  if (name.empty()) throw Exception(errc::invalid_argument, "a projection needs a name");
  if (impl_->find(name)) throw Exception(errc::invalid_argument, "projection " + name + " is added twice");
  if (projection.kind() != ProjectionKind::memory && options.database.empty())
    throw Exception(errc::invalid_argument, "projection " + name +
                                                " needs ProjectionOptions::database (the SQLite file for its "
                                                "checkpoints, and its read model if it is a SQL projection)");
  if (projection.event_types().empty())
    throw Exception(errc::invalid_argument, "projection " + name + " handles no event types");
  auto runner = std::make_shared<Runner>(projection, options, impl_->store, impl_->options, impl_->io);
  std::lock_guard runners(impl_->runners_mutex);
  impl_->registrations.push_back(Registration{&projection, std::move(options), 0, std::move(runner)});
}

void ProjectionEngine::start() {
  std::lock_guard lock(impl_->lifecycle);
  if (impl_->running) return;
  // Fresh runners: a runner let go of at an earlier stop may still wait in the caller's io_context.
  std::vector<std::shared_ptr<Runner>> fresh;
  ++impl_->starts;
  for (auto& reg : impl_->registrations) {
    fresh.push_back(std::make_shared<Runner>(*reg.projection, reg.options, impl_->store, impl_->options, impl_->io));
    fresh.back()->engine_run = impl_->starts;
    fresh.back()->open(reg.memory_resume);
  }
  {
    std::lock_guard runners(impl_->runners_mutex);
    for (std::size_t i = 0; i < fresh.size(); ++i) impl_->registrations[i].runner = fresh[i];
  }
  impl_->listener = impl_->store.add_commit_listener([fresh](std::uint64_t) {
    for (const auto& r : fresh) asio::post(r->strand, [r] { r->poke(); });
  });
  for (auto& r : fresh) r->spawn();
  if (impl_->owned_io) {
    impl_->owned_io->restart();
    impl_->work.emplace(impl_->io.get_executor());
    for (std::size_t i = 0; i < std::max<std::size_t>(impl_->options.threads, 1); ++i)
      impl_->threads.emplace_back([io = &impl_->io] { io->run(); });
  }
  impl_->running = true;
}

void ProjectionEngine::stop() {
  std::lock_guard lock(impl_->lifecycle);
  if (!impl_->running) return;
  if (impl_->listener) impl_->store.remove_commit_listener(*impl_->listener);
  impl_->listener.reset();
  const auto runners = impl_->runners();
  for (auto& r : runners) r->request_stop();
  for (std::size_t i = 0; i < runners.size(); ++i) {
    Runner& r = *runners[i];
    const bool ended = impl_->wait_or_abandon(r);
    r.fail_waiters(Error{errc::shutting_down, "the projection engine stopped"});
    if (r.projection.kind() == ProjectionKind::memory)
      impl_->registrations[i].memory_resume = ended ? r.min_checkpoint() : r.position_now();
    if (ended) r.lanes.clear();  // closes the databases; a runner let go of closes them when it is destroyed
  }
  if (impl_->owned_io) {
    impl_->work.reset();
    impl_->io.stop();
    for (auto& t : impl_->threads) t.join();
    impl_->threads.clear();
  }
  impl_->running = false;
}

std::optional<ProjectionHealth> ProjectionEngine::health(std::string_view name) const {
  auto r = impl_->find(name);
  if (!r) return std::nullopt;
  return r->health();
}

std::vector<ProjectionHealth> ProjectionEngine::health() const {
  std::vector<ProjectionHealth> out;
  for (const auto& r : impl_->runners()) out.push_back(r->health());
  return out;
}

void ProjectionEngine::async_wait_for(std::string_view name, std::uint64_t position, std::chrono::milliseconds timeout,
                                      std::function<void(Result<void>)> done) {
  auto r = impl_->find(name);
  if (!r) {
    done(Error{errc::invalid_argument, "no projection named " + std::string(name)});
    return;
  }
  r->async_wait_for(position, timeout, std::move(done));
}

Result<void> ProjectionEngine::wait_for(std::string_view name, std::uint64_t position,
                                        std::chrono::milliseconds timeout) {
  auto promise = std::make_shared<std::promise<Result<void>>>();
  auto future = promise->get_future();
  async_wait_for(name, position, timeout, [promise](Result<void> r) { promise->set_value(std::move(r)); });
  return future.get();
}

asio::io_context& ProjectionEngine::io_context() { return impl_->io; }

}  // namespace evs
