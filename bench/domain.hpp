// The benchmark's domain: two ~150-byte events, an account aggregate over them, an in-memory view, a SQL
// read model and a probe that records when each event is applied.
#pragma once

#include <evs/core/aggregate.hpp>
#include <evs/core/codec.hpp>
#include <evs/core/event.hpp>
#include <evs/projections/projection.hpp>

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

class Account : public evs::Aggregate<Account, AccountState, Deposited, Withdrawn> {
 public:
  static constexpr std::string_view category = "acc";
  using Aggregate::Aggregate;
  void apply(const Deposited& e) { apply_to(state_, true, e.cents, e.seq); }
  void apply(const Withdrawn& e) { apply_to(state_, false, e.cents, e.seq); }
};

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

// In-memory view: balance per account.
class Balances : public evs::MemoryProjection<Balances, Deposited, Withdrawn> {
 public:
  static constexpr std::string_view name = "balances";
  void handle(const Deposited& e, const evs::RecordedEvent&) { balance[e.account] += e.cents; }
  void handle(const Withdrawn& e, const evs::RecordedEvent&) { balance[e.account] -= e.cents; }
  std::unordered_map<std::string, std::int64_t> balance;
};

// SQL read model: one upsert per event.
constexpr const char* balances_ddl =
    "CREATE TABLE IF NOT EXISTS balances(account TEXT PRIMARY KEY, balance INTEGER NOT NULL, "
    "events INTEGER NOT NULL)";
constexpr const char* balances_upsert =
    "INSERT INTO balances(account, balance, events) VALUES(?1, ?2, 1) "
    "ON CONFLICT(account) DO UPDATE SET balance = balance + excluded.balance, events = events + 1";

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

// Records when each event (by seq) was applied.
class Probe : public evs::MemoryProjection<Probe, Deposited, Withdrawn> {
 public:
  static constexpr std::string_view name = "probe";
  explicit Probe(std::size_t n) : applied(n) {}
  void handle(const Deposited& e, const evs::RecordedEvent&) { mark(e.seq); }
  void handle(const Withdrawn& e, const evs::RecordedEvent&) { mark(e.seq); }
  void mark(std::int64_t seq) {
    if (seq >= 0 && static_cast<std::size_t>(seq) < applied.size()) applied[seq] = SteadyClock::now();
  }
  std::vector<SteadyClock::time_point> applied;
};

}  // namespace bench
