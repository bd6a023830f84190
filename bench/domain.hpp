// The benchmark's domain: two ~150-byte events, an account aggregate over them, an in-memory view, a SQL
// read model and a probe that records when each event is applied; and a versioned pair of the same events
// (version 2, with version 1 upcast to it) for the upcast scenarios.
#pragma once

#include <evs/core/aggregate.hpp>
#include <evs/core/codec.hpp>
#include <evs/core/event.hpp>
#include <evs/core/upcast.hpp>
#include <evs/projections/projection.hpp>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

using SteadyClock = std::chrono::steady_clock;

namespace bench {

// Both events encode to ~150 bytes in the binary encoding (account 11, cents ~3, seq ~3, memo 131).
struct Deposited {
  std::string account;
  std::int64_t cents = 0;
  std::int64_t seq = 0;
  std::string memo;
};
BOOST_DESCRIBE_STRUCT(Deposited, (), (account, cents, seq, memo))
EVS_EVENT(Deposited, "bench.deposited", 1)

struct Withdrawn {
  std::string account;
  std::int64_t cents = 0;
  std::int64_t seq = 0;
  std::string memo;
};
BOOST_DESCRIBE_STRUCT(Withdrawn, (), (account, cents, seq, memo))
EVS_EVENT(Withdrawn, "bench.withdrawn", 1)

constexpr std::string_view deposited_type = "bench.deposited";
constexpr std::string_view withdrawn_type = "bench.withdrawn";

inline const std::string memo(130, 'm');

struct AccountState {
  std::int64_t balance = 0;
  std::int64_t operations = 0;
  std::int64_t last_seq = 0;
};
BOOST_DESCRIBE_STRUCT(AccountState, (), (balance, operations, last_seq))

inline void apply_to(AccountState& s, bool deposit, std::int64_t cents, std::int64_t seq) {
  s.balance += deposit ? cents : -cents;
  ++s.operations;
  s.last_seq = seq;
}

// An account over a deposit and a withdrawal event type (D and W: account, cents, seq members).
template <class D, class W>
class AccountOf : public evs::Aggregate<AccountOf<D, W>, AccountState, D, W> {
  using Base = evs::Aggregate<AccountOf<D, W>, AccountState, D, W>;

 public:
  static constexpr std::string_view category = "acc";
  using Base::Base;
  void apply(const D& e) { apply_to(this->state_, true, e.cents, e.seq); }
  void apply(const W& e) { apply_to(this->state_, false, e.cents, e.seq); }
};
using Account = AccountOf<Deposited, Withdrawn>;

// The event number `seq` of account `account`: three deposits, then a withdrawal.
struct Movement {
  bool deposit;
  std::int64_t cents;
  std::int64_t seq;
};
inline Movement movement(std::int64_t seq) { return {seq % 4 != 3, 100 + seq % 9000, seq}; }

inline std::string account_name(std::size_t i) {
  char buf[16];
  std::snprintf(buf, sizeof buf, "acc-%06zu", i);
  return buf;
}

inline evs::EventData event_data(const std::string& account, std::int64_t seq, evs::Encoding encoding) {
  const Movement m = movement(seq);
  evs::EventData e;
  e.encoding = encoding;
  if (m.deposit) {
    e.type = std::string(deposited_type);
    evs::encode_to(e.payload, Deposited{account, m.cents, seq, memo}, encoding);
  } else {
    e.type = std::string(withdrawn_type);
    evs::encode_to(e.payload, Withdrawn{account, m.cents, seq, memo}, encoding);
  }
  return e;
}

// In-memory view: balance per account, over a deposit and a withdrawal event type.
template <class D, class W>
class BalancesOf : public evs::MemoryProjection<BalancesOf<D, W>, D, W> {
 public:
  static constexpr std::string_view name = "balances";
  void handle(const D& e, const evs::RecordedEvent&) { balance[e.account] += e.cents; }
  void handle(const W& e, const evs::RecordedEvent&) { balance[e.account] -= e.cents; }
  std::int64_t total() const {
    std::int64_t sum = 0;
    for (const auto& [account, cents] : balance) sum += cents;
    return sum;
  }
  std::unordered_map<std::string, std::int64_t> balance;
};
using Balances = BalancesOf<Deposited, Withdrawn>;

// SQL read model: one upsert per event.
constexpr const char* balances_ddl =
    "CREATE TABLE IF NOT EXISTS balances(account TEXT PRIMARY KEY, balance BIGINT NOT NULL, "
    "events BIGINT NOT NULL)";
constexpr const char* balances_upsert =
    "INSERT INTO balances(account, balance, events) VALUES(?1, ?2, 1) "
    "ON CONFLICT(account) DO UPDATE SET balance = balances.balance + excluded.balance, events = balances.events + 1";

class BalanceTable : public evs::SqlProjection<BalanceTable, Deposited, Withdrawn> {
 public:
  static constexpr std::string_view name = "balance_table";
  void setup(evs::SqlSession& db) { db.exec(balances_ddl); }
  void handle(const Deposited& e, const evs::RecordedEvent&, evs::SqlSession& db) {
    db.exec(balances_upsert, {e.account, e.cents});
  }
  void handle(const Withdrawn& e, const evs::RecordedEvent&, evs::SqlSession& db) {
    db.exec(balances_upsert, {e.account, -e.cents});
  }
};

// Records when each event (by seq) was applied, and counts the events it applied.
class Probe : public evs::MemoryProjection<Probe, Deposited, Withdrawn> {
 public:
  static constexpr std::string_view name = "probe";
  explicit Probe(std::size_t n) : applied(n) {}
  void handle(const Deposited& e, const evs::RecordedEvent&) { mark(e.seq); }
  void handle(const Withdrawn& e, const evs::RecordedEvent&) { mark(e.seq); }
  void mark(std::int64_t seq) {
    if (seq >= 0 && static_cast<std::size_t>(seq) < applied.size()) applied[seq] = SteadyClock::now();
    count.fetch_add(1, std::memory_order_release);
  }
  std::vector<SteadyClock::time_point> applied;
  std::atomic<std::size_t> count{0};
};

// ---- Versioned events (the upcast scenarios) ----------------------------------------------------------------
//
// The same movements as events whose current version (2) added a currency; version 1, the shape of Deposited
// / Withdrawn above, stays registered under the same names with an upcaster to version 2, as an application
// keeps its old event structs.
namespace versioned {

struct Deposited {
  std::string account;
  std::int64_t cents = 0;
  std::int64_t seq = 0;
  std::string memo;
  std::string currency;
};
EVS_EVENT(Deposited, "bench.versioned.deposited", 2, account, cents, seq, memo, currency)

struct Withdrawn {
  std::string account;
  std::int64_t cents = 0;
  std::int64_t seq = 0;
  std::string memo;
  std::string currency;
};
EVS_EVENT(Withdrawn, "bench.versioned.withdrawn", 2, account, cents, seq, memo, currency)

// What version 1 events upcast to, and what current events are written with.
inline const std::string default_currency = "EUR";

namespace v1 {
struct Deposited {
  std::string account;
  std::int64_t cents = 0;
  std::int64_t seq = 0;
  std::string memo;
};
EVS_EVENT(Deposited, "bench.versioned.deposited", 1, account, cents, seq, memo)
EVS_UPCAST(Deposited, [](const Deposited& e) {
  return versioned::Deposited{e.account, e.cents, e.seq, e.memo, default_currency};
})

struct Withdrawn {
  std::string account;
  std::int64_t cents = 0;
  std::int64_t seq = 0;
  std::string memo;
};
EVS_EVENT(Withdrawn, "bench.versioned.withdrawn", 1, account, cents, seq, memo)
EVS_UPCAST(Withdrawn, [](const Withdrawn& e) {
  return versioned::Withdrawn{e.account, e.cents, e.seq, e.memo, default_currency};
})
}  // namespace v1

using Account = AccountOf<Deposited, Withdrawn>;
using Balances = BalancesOf<Deposited, Withdrawn>;

// Whether the movement `seq` is stored as version 1 in the logs with old events: every other one (deposits
// and withdrawals alike, see movement()).
inline bool stored_old(std::int64_t seq) { return seq % 2 == 1; }

// The movement `seq` of `account`, written as a real old event is: encoded from the version 1 struct, with
// schema version 1, when `old`; as the current version 2 otherwise.
inline evs::EventData event_data(const std::string& account, std::int64_t seq, bool old) {
  const Movement m = movement(seq);
  if (old) {
    return m.deposit ? evs::make_event_data(v1::Deposited{account, m.cents, seq, memo})
                     : evs::make_event_data(v1::Withdrawn{account, m.cents, seq, memo});
  }
  return m.deposit ? evs::make_event_data(Deposited{account, m.cents, seq, memo, default_currency})
                   : evs::make_event_data(Withdrawn{account, m.cents, seq, memo, default_currency});
}

}  // namespace versioned

}  // namespace bench
