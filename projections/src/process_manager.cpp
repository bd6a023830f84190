// The non-template parts of process managers: derived ids, choreography metadata, the deadline timers
// (Asio stays in this file), the start-up scan for open instances, and the deadline append.
#include "evs/projections/process_manager.hpp"
#include "exception_text.hpp"

#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>

#include <condition_variable>
#include <exception>
#include <mutex>
#include <set>

namespace evs {

namespace asio = boost::asio;

// ---- Choreography helpers -------------------------------------------------------------------------------

EventMetadata caused_by(const RecordedEvent& cause) {
  EventMetadata m;
  m.correlation_id = cause.metadata.correlation_id.empty() ? cause.event_id.to_string() : cause.metadata.correlation_id;
  m.causation_id = cause.event_id.to_string();
  m.user = cause.metadata.user;
  return m;
}

Uuid derived_id(const Uuid& base, std::string_view salt) {
  // Two independent 64-bit FNV-1a hashes over (base, salt). Not cryptographic: ids only need to be
  // deterministic and not to collide by accident.
  auto fnv = [&](std::uint64_t h) {
    auto mix = [&h](unsigned char c) {
      h ^= c;
      h *= 1099511628211ULL;
    };
    for (std::uint8_t b : base.bytes()) mix(b);
    mix(0xff);  // separator, so (base, salt) pairs cannot shift into each other
    for (char c : salt) mix(static_cast<unsigned char>(c));
    return h;
  };
  const std::uint64_t hi = fnv(14695981039346656037ULL);
  const std::uint64_t lo = fnv(0x84222325cbf29ce4ULL ^ hi);
  std::array<std::uint8_t, 16> bytes{};
  for (int i = 0; i < 8; ++i) {
    bytes[static_cast<std::size_t>(i)] = static_cast<std::uint8_t>(hi >> (56 - 8 * i));
    bytes[static_cast<std::size_t>(8 + i)] = static_cast<std::uint8_t>(lo >> (56 - 8 * i));
  }
  bytes[6] = static_cast<std::uint8_t>((bytes[6] & 0x0f) | 0x80);  // version 8: custom
  bytes[8] = static_cast<std::uint8_t>((bytes[8] & 0x3f) | 0x80);  // RFC 9562 variant
  return Uuid(bytes);
}

namespace detail {

namespace {

std::string describe(std::exception_ptr e) { return exception_text(e); }

// A system-clock deadline as a steady-clock time point (deadlines are stored in wall-clock time so they
// survive restarts; timers run on the steady clock so clock adjustments do not disturb them much).
std::chrono::steady_clock::time_point steady_deadline(Timestamp deadline) {
  const auto left = deadline - Clock::now();
  return std::chrono::steady_clock::now() +
         std::max(std::chrono::duration_cast<std::chrono::steady_clock::duration>(left),
                  std::chrono::steady_clock::duration::zero());
}

}  // namespace

// ---- SagaTimers -----------------------------------------------------------------------------------------
//
// Lifetime: each waiting timer is owned by its own completion handler (shared_ptr), so destroying the
// io_context (the engine) first destroys the timers with their handlers, which Asio supports. The handlers
// hold only a weak_ptr to Impl and run the callbacks under a "running" count, so close() can wait for them
// and nothing runs after the process manager is gone.
struct SagaTimers::Impl : std::enable_shared_from_this<Impl> {
  struct Armed {
    std::string step;
    Timestamp deadline{};
    std::weak_ptr<asio::steady_timer> timer;
  };
  struct Instance {
    std::uint64_t version = 0;
    std::vector<Armed> armed;
  };

  Fire fire;
  std::chrono::milliseconds retry;
  mutable std::mutex mutex;
  std::condition_variable idle;
  asio::io_context* io = nullptr;
  bool closed = false;
  int running = 0;
  std::map<std::string, Instance> instances;
  std::string last_error;

  Impl(Fire f, std::chrono::milliseconds r) : fire(std::move(f)), retry(r) {}

  // mutex held
  void cancel_all_locked() {
    for (auto& [id, instance] : instances)
      for (auto& a : instance.armed)
        if (auto t = a.timer.lock()) t->cancel();
    instances.clear();
  }

  // mutex held
  void arm_locked(const std::string& id, const SagaDeadline& d, std::chrono::steady_clock::time_point at) {
    auto timer = std::make_shared<asio::steady_timer>(*io, at);
    instances[id].armed.push_back({d.step, d.deadline, timer});
    timer->async_wait([weak = weak_from_this(), timer, id, d](const boost::system::error_code& ec) {
      if (ec) return;  // cancelled: answered in time, synced away, or closing
      if (auto self = weak.lock()) self->expired(timer.get(), id, d);
    });
  }

  void expired(const asio::steady_timer* timer, const std::string& id, const SagaDeadline& d) {
    {
      std::lock_guard lock(mutex);
      if (closed) return;
      if (auto it = instances.find(id); it != instances.end()) {
        std::erase_if(it->second.armed, [&](const Armed& a) {
          auto t = a.timer.lock();
          return !t || t.get() == timer;
        });
        if (it->second.armed.empty()) instances.erase(it);
      }
      ++running;
    }
    Result<void> r;
    try {
      r = fire(id, d);
    } catch (...) {
      r = Error{errc::handler_failed, describe(std::current_exception())};
    }
    std::lock_guard lock(mutex);
    --running;
    if (!r && !closed) {
      last_error = "deadline of step " + d.step + " of " + id + ": " + r.error().what();
      arm_locked(id, d, std::chrono::steady_clock::now() + retry);
    }
    idle.notify_all();
  }

  void run_task(Task task) {
    {
      std::lock_guard lock(mutex);
      if (closed) return;
      ++running;
    }
    Result<void> r;
    try {
      r = task();
    } catch (...) {
      r = Error{errc::handler_failed, describe(std::current_exception())};
    }
    std::lock_guard lock(mutex);
    --running;
    if (!r && !closed) {
      last_error = r.error().what();
      auto timer = std::make_shared<asio::steady_timer>(*io, retry);
      timer->async_wait([weak = weak_from_this(), timer, task](const boost::system::error_code& ec) {
        if (ec) return;
        if (auto self = weak.lock()) self->run_task(task);
      });
    }
    idle.notify_all();
  }
};

SagaTimers::SagaTimers(Fire fire, std::chrono::milliseconds retry)
    : impl_(std::make_shared<Impl>(std::move(fire), retry)) {}

SagaTimers::~SagaTimers() { close(); }

void SagaTimers::attach(asio::io_context& io) {
  std::lock_guard lock(impl_->mutex);
  if (impl_->io != &io) impl_->cancel_all_locked();
  impl_->io = &io;
  impl_->closed = false;
}

bool SagaTimers::attached() const {
  std::lock_guard lock(impl_->mutex);
  return impl_->io != nullptr && !impl_->closed;
}

void SagaTimers::sync(const std::string& correlation_id, std::uint64_t version,
                      const std::vector<SagaDeadline>& deadlines) {
  std::lock_guard lock(impl_->mutex);
  if (impl_->closed || !impl_->io) return;
  auto found = impl_->instances.find(correlation_id);
  if (found != impl_->instances.end() && version < found->second.version) return;  // a newer sync won
  if (found == impl_->instances.end()) {
    if (deadlines.empty()) return;
    found = impl_->instances.emplace(correlation_id, Impl::Instance{}).first;
  }
  auto& instance = found->second;
  instance.version = version;
  auto wanted = [&](const Impl::Armed& a) {
    return std::any_of(deadlines.begin(), deadlines.end(),
                       [&](const SagaDeadline& d) { return d.step == a.step && d.deadline == a.deadline; });
  };
  std::erase_if(instance.armed, [&](const Impl::Armed& a) {
    auto t = a.timer.lock();
    if (!t) return true;
    if (wanted(a)) return false;
    t->cancel();
    return true;
  });
  for (const SagaDeadline& d : deadlines) {
    const bool armed = std::any_of(instance.armed.begin(), instance.armed.end(), [&](const Impl::Armed& a) {
      return a.step == d.step && a.deadline == d.deadline;
    });
    if (!armed) impl_->arm_locked(correlation_id, d, steady_deadline(d.deadline));
  }
  // Keep an empty entry (with its version) only while it guards against stale syncs of this instance.
  if (instance.armed.empty() && deadlines.empty()) impl_->instances.erase(correlation_id);
}

void SagaTimers::post(Task task) {
  std::lock_guard lock(impl_->mutex);
  if (impl_->closed || !impl_->io) return;
  asio::post(*impl_->io, [weak = std::weak_ptr<Impl>(impl_), task = std::move(task)] {
    if (auto self = weak.lock()) self->run_task(task);
  });
}

void SagaTimers::close() {
  std::unique_lock lock(impl_->mutex);
  impl_->closed = true;
  impl_->cancel_all_locked();
  impl_->idle.wait(lock, [&] { return impl_->running == 0; });
}

std::size_t SagaTimers::armed() const {
  std::lock_guard lock(impl_->mutex);
  std::size_t n = 0;
  for (const auto& [id, instance] : impl_->instances) n += instance.armed.size();
  return n;
}

std::string SagaTimers::last_error() const {
  std::lock_guard lock(impl_->mutex);
  return impl_->last_error;
}

// ---- Scan and deadline append ---------------------------------------------------------------------------

Result<std::vector<std::string>> open_saga_streams(EventStore& store, std::string_view category,
                                                   std::size_t batch_size) {
  ReadAllFilter filter;
  filter.categories = {std::string(category)};
  filter.event_types = {std::string(event_info_v<SagaStepStarted>.name), std::string(event_info_v<SagaEnded>.name)};
  std::set<std::string> open;
  std::uint64_t from = 1;
  for (;;) {
    auto batch = store.read_all(from, batch_size, filter);
    if (!batch) return batch.error();
    for (const RecordedEvent& e : batch->events) {
      if (e.type == event_info_v<SagaEnded>.name)
        open.erase(e.stream_id);
      else
        open.insert(e.stream_id);
    }
    if (batch->next_position <= from) break;  // past the end
    from = batch->next_position;
  }
  return std::vector<std::string>(open.begin(), open.end());
}

Result<void> append_deadline_reached(EventStore& store, const std::string& stream_id,
                                     const std::string& correlation_id, const SagaDeadline& deadline,
                                     Encoding encoding) {
  EventData data;
  data.event_id = derived_id(Uuid{}, stream_id + "/deadline/" + deadline.step + "/" +
                                         std::to_string(deadline.deadline.time_since_epoch().count()));
  data.type = std::string(event_info_v<SagaDeadlineReached>.name);
  data.schema_version = event_info_v<SagaDeadlineReached>.version;
  data.encoding = encoding;
  data.payload = encode(SagaDeadlineReached{deadline.step, deadline.deadline}, encoding);
  data.metadata.correlation_id = correlation_id;
  auto r = store.append(stream_id, ExpectedVersion::stream_exists(), std::span<const EventData>(&data, 1));
  if (!r) return r.error();
  return {};
}

}  // namespace detail
}  // namespace evs
