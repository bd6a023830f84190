// A fake card gateway, in process. Like a real one it takes an idempotency key: charging twice with one
// key charges once and answers with the first charge. Its counters let the demo and the tests check that
// every order was charged exactly once.
#pragma once

#include <evs/core/error.hpp>

#include <cstdint>
#include <map>
#include <mutex>
#include <string>

namespace checkout {

class CardGateway {
 public:
  static constexpr const char* declined_card = "4000-0000-0000-0002";

  // Charges `card`, or answers with the earlier charge made under `idempotency_key`.
  evs::Result<std::string> charge(const std::string& idempotency_key, const std::string& card, std::int64_t cents) {
    std::lock_guard lock(mutex_);
    ++calls_;
    if (auto earlier = charges_.find(idempotency_key); earlier != charges_.end()) return earlier->second.id;
    if (card == declined_card) return evs::Error{evs::errc::invalid_argument, "card declined"};
    const std::string id = "ch_" + std::to_string(charges_.size() + 1);
    charges_[idempotency_key] = {id, cents};
    charged_cents_ += cents;
    return id;
  }

  // Refunds a charge in full; refunding it again answers with the first refund.
  evs::Result<std::string> refund(const std::string& charge_id) {
    std::lock_guard lock(mutex_);
    if (auto earlier = refunds_.find(charge_id); earlier != refunds_.end()) return earlier->second;
    for (const auto& [key, c] : charges_)
      if (c.id == charge_id) {
        refunded_cents_ += c.cents;
        return refunds_[charge_id] = "re_" + std::to_string(refunds_.size() + 1);
      }
    return evs::Error{evs::errc::invalid_argument, "no charge " + charge_id};
  }

  int calls() const { std::lock_guard lock(mutex_); return calls_; }
  int charges() const { std::lock_guard lock(mutex_); return static_cast<int>(charges_.size()); }
  int refunds() const { std::lock_guard lock(mutex_); return static_cast<int>(refunds_.size()); }
  std::int64_t charged_cents() const { std::lock_guard lock(mutex_); return charged_cents_; }
  std::int64_t refunded_cents() const { std::lock_guard lock(mutex_); return refunded_cents_; }

 private:
  struct Charge {
    std::string id;
    std::int64_t cents = 0;
  };
  mutable std::mutex mutex_;
  std::map<std::string, Charge> charges_;      // idempotency key -> charge
  std::map<std::string, std::string> refunds_;  // charge id -> refund id
  int calls_ = 0;
  std::int64_t charged_cents_ = 0;
  std::int64_t refunded_cents_ = 0;
};

}  // namespace checkout
