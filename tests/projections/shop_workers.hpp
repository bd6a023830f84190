// The effect handler and the process manager that the worker-process tests run beside ShopStats on every
// node (projection_child work ... EFFECTS_FILE), and read back in the parent.
#pragma once

#include "../support/shop_events.hpp"

#include <evs/projections/process_manager.hpp>

#include <boost/describe.hpp>

#include <cerrno>
#include <chrono>
#include <fcntl.h>
#include <stdexcept>
#include <string>
#include <unistd.h>

namespace shop {

// "Sends" one message per order placed or cancelled: one line "<position>" appended to a file shared by all
// nodes (O_APPEND: whole lines from several processes). A repeated line is an effect run twice.
class OrderMailer : public evs::EffectHandler<OrderMailer, OrderPlaced, OrderCancelled> {
 public:
  static constexpr std::string_view name = "order_mailer";
  explicit OrderMailer(std::string path) : path_(std::move(path)) {}
  void handle(const OrderPlaced&, const evs::RecordedEvent& m) { send(m.position); }
  void handle(const OrderCancelled&, const evs::RecordedEvent& m) { send(m.position); }

 private:
  void send(std::uint64_t position) {
    const int fd = ::open(path_.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0) throw std::runtime_error("open " + path_ + ": errno " + std::to_string(errno));
    const std::string line = std::to_string(position) + "\n";
    const bool ok = ::write(fd, line.data(), line.size()) == static_cast<ssize_t>(line.size());
    ::close(fd);
    if (!ok) throw std::runtime_error("write " + path_);
  }
  std::string path_;
};

struct WatchData {
  std::int64_t total_cents = 0;
};
BOOST_DESCRIBE_STRUCT(WatchData, (), (total_cents))

enum class WatchStep { settle };
BOOST_DESCRIBE_ENUM(WatchStep, settle)

// One instance per order: placing it starts the step "settle" with a deadline; a cancellation completes the
// saga; an order still open at the deadline times out (the step fails, the saga ends compensated). Every
// instance must have ended once its deadline passed, whichever node held its partition then.
class OrderWatch : public evs::ProcessManager<OrderWatch, WatchData, WatchStep, OrderPlaced, OrderCancelled> {
 public:
  static constexpr std::string_view name = "orderwatch";
  static constexpr auto correlate = evs::by(&OrderPlaced::order_id, &OrderCancelled::order_id);
  static constexpr std::chrono::milliseconds settle_within{2000};
  using ProcessManager::ProcessManager;

 private:
  friend evs::SagaAccess;
  void handle(const OrderPlaced& e, Saga& saga) {
    if (!saga.is_new()) return;
    saga.data().total_cents = e.total_cents;
    saga.start_step(Step::settle, settle_within);
  }
  void handle(const OrderCancelled&, Saga& saga) {
    if (!saga.is_pending(Step::settle)) return;  // settled, or timed out already
    saga.complete_step(Step::settle);
    saga.complete();
  }
  using Step = WatchStep;
};

}  // namespace shop
