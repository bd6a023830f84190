// The bank sample's domain: accounts, transfers between them as a saga, and a read model of balances.
//
//   Account          an aggregate: open, deposit, withdraw (rejected when funds are short), close
//   Bank             the application service: one method per command (evs::create / update)
//   TransferSaga     a process manager: debit the source, then credit the target; refund the source when
//                    the credit is rejected or does not answer in time
//   AccountBalances  a SQL read model: one row per account and per transfer
#pragma once

#include <evs/eventstore/command_handler.hpp>
#include <evs/eventstore/event_store.hpp>
#include <evs/projections/process_manager.hpp>
#include <evs/projections/projection.hpp>

#include <chrono>
#include <cstdint>
#include <string>
#include <tuple>
#include <vector>

namespace bank {

// ---- Events. Stored names and versions are on-disk format: never change them. ------------------------

// Stream "account-<id>".
struct AccountOpened {
  std::string owner;
};
EVS_EVENT(AccountOpened, "bank.account_opened", 1, owner)

// transfer_id is empty for cash at the counter, and names the transfer for a transfer's legs.
struct MoneyDeposited {
  std::int64_t cents = 0;
  std::string transfer_id;
};
EVS_EVENT(MoneyDeposited, "bank.money_deposited", 1, cents, transfer_id)

struct MoneyWithdrawn {
  std::int64_t cents = 0;
  std::string transfer_id;
};
EVS_EVENT(MoneyWithdrawn, "bank.money_withdrawn", 1, cents, transfer_id)

// The compensation of a transfer's debit: the money goes back to the source.
struct TransferRefunded {
  std::int64_t cents = 0;
  std::string transfer_id;
};
EVS_EVENT(TransferRefunded, "bank.transfer_refunded", 1, cents, transfer_id)

struct AccountClosed {
  std::string reason;
};
EVS_EVENT(AccountClosed, "bank.account_closed", 1, reason)

// Stream "transfer-<id>": the request, and the bank's answer when it refuses a leg.
struct TransferRequested {
  std::string transfer_id;
  std::string from;
  std::string to;
  std::int64_t cents = 0;
};
EVS_EVENT(TransferRequested, "bank.transfer_requested", 1, transfer_id, from, to, cents)

struct TransferLegRejected {
  std::string transfer_id;
  std::string leg;  // "debit" or "credit"
  std::string reason;
};
EVS_EVENT(TransferLegRejected, "bank.transfer_leg_rejected", 1, transfer_id, leg, reason)

// ---- The account aggregate ----------------------------------------------------------------------------

struct AccountState {
  std::string owner;
  std::int64_t balance = 0;  // cents
  bool open = false;
  bool closed = false;
};
BOOST_DESCRIBE_STRUCT(AccountState, (), (owner, balance, open, closed))

class Account : public evs::Aggregate<Account, AccountState, AccountOpened, MoneyDeposited, MoneyWithdrawn,
                                      TransferRefunded, AccountClosed> {
 public:
  static constexpr std::string_view category = "account";  // streams "account-<id>"
  using Aggregate::Aggregate;

  evs::Result<void> open(std::string owner);
  // A re-issued transfer leg applies once: the bank runs the saga's commands with their command id as
  // idempotency key, so the account itself keeps no record of the legs it saw.
  evs::Result<void> deposit(std::int64_t cents, const std::string& transfer_id = {});
  evs::Result<void> withdraw(std::int64_t cents, const std::string& transfer_id = {});  // never below zero
  evs::Result<void> refund(std::int64_t cents, const std::string& transfer_id);
  evs::Result<void> close(std::string reason);  // only an empty account

 private:
  friend evs::AggregateAccess;
  void apply(const AccountOpened& e);
  void apply(const MoneyDeposited& e);
  void apply(const MoneyWithdrawn& e);
  void apply(const TransferRefunded& e);
  void apply(const AccountClosed& e);

  evs::Result<void> usable() const;
};

// ---- The transfer saga --------------------------------------------------------------------------------

// Commands the saga sends (described structs: commands are not stored, their outcomes are).
struct DebitSource { std::string transfer_id, account; std::int64_t cents = 0; };
BOOST_DESCRIBE_STRUCT(DebitSource, (), (transfer_id, account, cents))
struct CreditTarget { std::string transfer_id, account; std::int64_t cents = 0; };
BOOST_DESCRIBE_STRUCT(CreditTarget, (), (transfer_id, account, cents))
struct RefundSource { std::string transfer_id, account; std::int64_t cents = 0; };
BOOST_DESCRIBE_STRUCT(RefundSource, (), (transfer_id, account, cents))

struct TransferData {
  std::string from, to;
  std::int64_t cents = 0;
};
BOOST_DESCRIBE_STRUCT(TransferData, (), (from, to, cents))

// The legs of a transfer. TransferLegRejected::leg holds an enumerator's name.
enum class TransferStep { debit, credit };
BOOST_DESCRIBE_ENUM(TransferStep, debit, credit)

// TransferRequested -> debit; MoneyWithdrawn -> credit; MoneyDeposited -> done. A rejected leg, or a leg
// with no answer within `step_timeout`, fails the transfer: a completed debit is refunded.
class TransferSaga : public evs::ProcessManager<TransferSaga, TransferData, TransferStep, TransferRequested,
                                                MoneyWithdrawn, MoneyDeposited, TransferLegRejected> {
 public:
  using Step = TransferStep;
  static constexpr std::string_view name = "transfer_saga";  // instance streams "transfer_saga-<transfer id>"
  // Every event names its transfer; cash deposits and withdrawals (no transfer id) belong to none.
  static constexpr auto correlate = evs::by(&TransferRequested::transfer_id, evs::if_set(&MoneyWithdrawn::transfer_id),
                                            evs::if_set(&MoneyDeposited::transfer_id), &TransferLegRejected::transfer_id);

  TransferSaga(evs::EventStore& store, std::chrono::milliseconds step_timeout);

  void handle(const TransferRequested& e, Saga& saga);
  void handle(const MoneyWithdrawn& e, Saga& saga);
  void handle(const MoneyDeposited& e, Saga& saga);
  void handle(const TransferLegRejected& e, Saga& saga);
  void compensate(Step step, Saga& saga);

 private:
  std::chrono::milliseconds step_timeout_;
};

// ---- The application service --------------------------------------------------------------------------

// Who asked, and which conversation it belongs to: stored with every event as metadata (the audit trail).
struct Actor {
  std::string who;
  std::string correlation_id;
};

class Bank {
 public:
  explicit Bank(evs::EventStore& store, evs::RepositoryOptions options = {.snapshot_every = 5});

  evs::Result<evs::CommandResult> open(const std::string& id, const std::string& owner, const Actor& actor);
  evs::Result<evs::CommandResult> deposit(const std::string& id, std::int64_t cents, const Actor& actor);
  evs::Result<evs::CommandResult> withdraw(const std::string& id, std::int64_t cents, const Actor& actor);
  evs::Result<evs::CommandResult> close(const std::string& id, const std::string& reason, const Actor& actor);
  // Appends TransferRequested to "transfer-<id>"; the saga does the rest.
  evs::Result<evs::AppendResult> transfer(const std::string& transfer_id, const std::string& from,
                                          const std::string& to, std::int64_t cents, const Actor& actor);

  evs::Result<Account> account(const std::string& id) { return accounts_.load(id); }
  // Time travel: the account as it was at time t (from the stored history; snapshots newer than t are ignored).
  evs::Result<Account> account_as_of(const std::string& id, evs::Timestamp t) { return accounts_.load_as_of(id, t); }

  // The saga's command handlers: each applies a leg to an account, or records why the bank refused it.
  // An infrastructure error throws, so the engine retries the saga's reaction (same command id).
  // For TransferSaga::attach(engine, options, bank.commands()).
  auto commands() {
    return std::tuple([this](const DebitSource& c, const evs::CommandMetadata& m) { debit(c, m); },
                      [this](const CreditTarget& c, const evs::CommandMetadata& m) { credit(c, m); },
                      [this](const RefundSource& c, const evs::CommandMetadata& m) { refund(c, m); });
  }
  void debit(const DebitSource& c, const evs::CommandMetadata& m);
  void credit(const CreditTarget& c, const evs::CommandMetadata& m);
  void refund(const RefundSource& c, const evs::CommandMetadata& m);

  evs::EventStore& store() { return store_; }

 private:
  void reject(const std::string& transfer_id, TransferStep leg, const evs::Error& why,
              const evs::CommandMetadata& m);

  evs::EventStore& store_;
  evs::Repository<Account> accounts_;
};

// ---- Read model -----------------------------------------------------------------------------------------

// Tables bank_accounts(id, owner, balance_cents, status, events) and bank_transfers(id, from_account,
// to_account, cents, status, reason).
class AccountBalances : public evs::SqlProjection<AccountBalances, AccountOpened, MoneyDeposited, MoneyWithdrawn,
                                                  TransferRefunded, AccountClosed, TransferRequested, evs::SagaEnded> {
 public:
  static constexpr std::string_view name = "account_balances";
  void setup(evs::SqlSession& db);
  void handle(const AccountOpened& e, const evs::RecordedEvent& m, evs::SqlSession& db);
  void handle(const MoneyDeposited& e, const evs::RecordedEvent& m, evs::SqlSession& db);
  void handle(const MoneyWithdrawn& e, const evs::RecordedEvent& m, evs::SqlSession& db);
  void handle(const TransferRefunded& e, const evs::RecordedEvent& m, evs::SqlSession& db);
  void handle(const AccountClosed& e, const evs::RecordedEvent& m, evs::SqlSession& db);
  void handle(const TransferRequested& e, evs::SqlSession& db);
  void handle(const evs::SagaEnded& e, const evs::RecordedEvent& m, evs::SqlSession& db);
};

// "12.34" for 1234 cents.
std::string money(std::int64_t cents);

}  // namespace bank
