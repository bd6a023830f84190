// A small ledger whose events evolved: "up.credited" went v1 (whole dollars) -> v2 (cents) -> v3 (cents and a
// currency); "up.funded" was renamed into "up.credited"; "up.transferred" was split into a debit and a
// credit. Old versions stay as frozen structs with their upcasters, as an application keeps them.
#pragma once

#include <evs/core/aggregate.hpp>
#include <evs/core/event.hpp>
#include <evs/core/upcast.hpp>

#include <cstdint>
#include <string>
#include <variant>
#include <vector>

namespace updomain {

// ---- current types
struct Credited {
  std::string account;
  std::int64_t cents = 0;
  std::string currency;
  bool operator==(const Credited&) const = default;
};
EVS_EVENT(Credited, "up.credited", 3, account, cents, currency)

struct Debited {
  std::string account;
  std::int64_t cents = 0;
  bool operator==(const Debited&) const = default;
};
EVS_EVENT(Debited, "up.debited", 1, account, cents)

// ---- history
namespace v2 {
struct Credited {
  std::string account;
  std::int64_t cents = 0;
};
EVS_EVENT(Credited, "up.credited", 2, account, cents)
EVS_UPCAST(Credited, [](const Credited& e) { return updomain::Credited{e.account, e.cents, "USD"}; })
}  // namespace v2

namespace v1 {
struct Credited {
  std::string account;
  std::int64_t dollars = 0;
};
EVS_EVENT(Credited, "up.credited", 1, account, dollars)
EVS_UPCAST(Credited, [](const Credited& e) { return v2::Credited{e.account, e.dollars * 100}; })

// Renamed: "up.funded" is now "up.credited" (in euros).
struct Funded {
  std::string account;
  std::int64_t cents = 0;
};
EVS_EVENT(Funded, "up.funded", 1, account, cents)
EVS_UPCAST(Funded, [](const Funded& e) { return updomain::Credited{e.account, e.cents, "EUR"}; })

// Split: one transfer is now a debit of one account and a credit of another.
struct Transferred {
  std::string from;
  std::string to;
  std::int64_t cents = 0;
};
EVS_EVENT(Transferred, "up.transferred", 1, from, to, cents)
EVS_UPCAST(Transferred, [](const Transferred& e) {
  return std::vector<std::variant<updomain::Debited, updomain::Credited>>{updomain::Debited{e.from, e.cents},
                                                                          updomain::Credited{e.to, e.cents, "USD"}};
})
}  // namespace v1

// ---- an aggregate over the current types
struct LedgerState {
  std::int64_t credited = 0;
  std::int64_t debited = 0;
  std::vector<std::string> currencies;  // of each credit, in order
};
BOOST_DESCRIBE_STRUCT(LedgerState, (), (credited, debited, currencies))

class Ledger : public evs::Aggregate<Ledger, LedgerState, Credited, Debited> {
 public:
  static constexpr std::string_view category = "ledger";
  using Aggregate::Aggregate;
  void credit(std::int64_t cents) { raise(Credited{id(), cents, "USD"}); }

 private:
  friend evs::AggregateAccess;
  void apply(const Credited& e) {
    state_.credited += e.cents;
    state_.currencies.push_back(e.currency);
  }
  void apply(const Debited& e) { state_.debited += e.cents; }
};

}  // namespace updomain
