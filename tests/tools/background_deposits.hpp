// A thread that appends one deposit every 2 ms to streams acc-0..acc-12 until stop() (or destruction): the
// appends that keep coming while a rebuild runs.
#pragma once

#include "../support/test_events.hpp"

#include <evs/eventstore/event_store.hpp>

#include <atomic>
#include <chrono>
#include <string>
#include <thread>

namespace rebuildtest {

class BackgroundDeposits {
 public:
  explicit BackgroundDeposits(evs::EventStore& store)
      : thread_([this, &store] {
          for (int i = 0; running_; ++i) {
            (void)store.append("acc-" + std::to_string(i % 13), evs::ExpectedVersion::any(),
                               std::vector{testdomain::deposit(3)});
            std::this_thread::sleep_for(std::chrono::milliseconds(2));
          }
        }) {}
  ~BackgroundDeposits() { stop(); }
  BackgroundDeposits(const BackgroundDeposits&) = delete;
  BackgroundDeposits& operator=(const BackgroundDeposits&) = delete;

  void stop() {
    running_ = false;
    if (thread_.joinable()) thread_.join();
  }

 private:
  std::atomic<bool> running_{true};
  std::thread thread_;
};

}  // namespace rebuildtest
