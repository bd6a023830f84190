#include "bank.hpp"

#include <boost/describe/enum_from_string.hpp>
#include <boost/describe/enum_to_string.hpp>

#include <algorithm>
#include <cstdio>
#include <stdexcept>

namespace bank {

using evs::errc;
using evs::Result;

std::string money(std::int64_t cents) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%s%lld.%02lld", cents < 0 ? "-" : "", static_cast<long long>(std::llabs(cents) / 100),
                static_cast<long long>(std::llabs(cents) % 100));
  return buf;
}

// ---- Account ------------------------------------------------------------------------------------------

Result<void> Account::usable() const {
  if (!state().open) return evs::reject("account " + id() + " does not exist");
  if (state().closed) return evs::reject("account " + id() + " is closed");
  return {};
}

Result<void> Account::open(std::string owner) {
  if (state().open) return evs::reject("account " + id() + " is already open");
  return emit(AccountOpened{std::move(owner)});
}

Result<void> Account::deposit(std::int64_t cents, const std::string& transfer_id) {
  if (auto ok = usable(); !ok) return ok;
  if (cents <= 0) return evs::reject("a deposit must be positive");
  return emit(MoneyDeposited{cents, transfer_id});
}

Result<void> Account::withdraw(std::int64_t cents, const std::string& transfer_id) {
  if (auto ok = usable(); !ok) return ok;
  if (cents <= 0) return evs::reject("a withdrawal must be positive");
  if (state().balance < cents)
    return evs::reject("insufficient funds: " + id() + " has " + money(state().balance) + ", asked for " + money(cents));
  return emit(MoneyWithdrawn{cents, transfer_id});
}

Result<void> Account::refund(std::int64_t cents, const std::string& transfer_id) {
  return emit(TransferRefunded{cents, transfer_id});  // also to a closed account: the money was taken from it
}

Result<void> Account::close(std::string reason) {
  if (auto ok = usable(); !ok) return ok;
  if (state().balance != 0) return evs::reject("account " + id() + " still holds " + money(state().balance));
  return emit(AccountClosed{std::move(reason)});
}

void Account::apply(const AccountOpened& e) {
  state_.owner = e.owner;
  state_.open = true;
}
void Account::apply(const MoneyDeposited& e) { state_.balance += e.cents; }
void Account::apply(const MoneyWithdrawn& e) { state_.balance -= e.cents; }
void Account::apply(const TransferRefunded& e) { state_.balance += e.cents; }
void Account::apply(const AccountClosed&) { state_.closed = true; }

// ---- TransferSaga -------------------------------------------------------------------------------------

TransferSaga::TransferSaga(evs::EventStore& store, std::chrono::milliseconds step_timeout)
    : ProcessManager(store), step_timeout_(step_timeout) {}

void TransferSaga::handle(const TransferRequested& e, Saga& saga) {
  if (!saga.is_new()) return;
  saga.data() = {e.from, e.to, e.cents};
  saga.start_step(Step::debit, step_timeout_);
  saga.send(DebitSource{e.transfer_id, e.from, e.cents});
}

void TransferSaga::handle(const MoneyWithdrawn& e, Saga& saga) {
  if (saga.is_pending(Step::debit)) {
    saga.complete_step(Step::debit);
    saga.start_step(Step::credit, step_timeout_);
    saga.send(CreditTarget{e.transfer_id, saga.data().to, e.cents});
  } else if (saga.status() == evs::SagaStatus::compensated && !saga.is_completed(Step::debit)) {
    // The debit landed after the saga gave up on it: give the money back.
    saga.send(RefundSource{e.transfer_id, saga.data().from, e.cents});
  }
}

void TransferSaga::handle(const MoneyDeposited&, Saga& saga) {
  if (!saga.is_pending(Step::credit)) return;
  saga.complete_step(Step::credit);
  saga.complete();
}

void TransferSaga::handle(const TransferLegRejected& e, Saga& saga) {
  Step leg{};
  if (boost::describe::enum_from_string(e.leg.c_str(), leg) && saga.is_pending(leg)) saga.fail_step(leg, e.reason);
}

void TransferSaga::compensate(Step step, Saga& saga) {
  if (step == Step::debit) saga.send(RefundSource{saga.correlation_id(), saga.data().from, saga.data().cents});
}

// ---- Bank ---------------------------------------------------------------------------------------------

namespace {
evs::CommandOptions options_for(const Actor& actor) {
  return {.metadata = {.correlation_id = actor.correlation_id, .user = {{"who", actor.who}}}};
}
// Correlation = the transfer, causation = the saga's command; the command id is the idempotency key, so a
// re-issued command appends nothing new and gets its first answer.
evs::CommandOptions options_for(const evs::CommandMetadata& m) {
  evs::CommandOptions o = m.options();
  o.metadata.user["who"] = std::string(TransferSaga::name);
  return o;
}
}  // namespace

Bank::Bank(evs::EventStore& store, evs::RepositoryOptions options) : store_(store), accounts_(store, options) {}

Result<evs::CommandResult> Bank::open(const std::string& id, const std::string& owner, const Actor& actor) {
  return evs::create(accounts_, id, options_for(actor), &Account::open, owner);
}
Result<evs::CommandResult> Bank::deposit(const std::string& id, std::int64_t cents, const Actor& actor) {
  return evs::update(accounts_, id, options_for(actor), &Account::deposit, cents, "");  // cash: no transfer
}
Result<evs::CommandResult> Bank::withdraw(const std::string& id, std::int64_t cents, const Actor& actor) {
  return evs::update(accounts_, id, options_for(actor), &Account::withdraw, cents, "");
}
Result<evs::CommandResult> Bank::close(const std::string& id, const std::string& reason, const Actor& actor) {
  return evs::update(accounts_, id, options_for(actor), &Account::close, reason);
}

Result<evs::AppendResult> Bank::transfer(const std::string& transfer_id, const std::string& from, const std::string& to,
                                         std::int64_t cents, const Actor& actor) {
  const std::string correlation = actor.correlation_id.empty() ? transfer_id : actor.correlation_id;
  return store_.append_event("transfer-" + transfer_id, evs::ExpectedVersion::no_stream(),
                             TransferRequested{transfer_id, from, to, cents},
                             {.metadata = {.correlation_id = correlation, .user = {{"who", actor.who}}}});
}

void Bank::debit(const DebitSource& c, const evs::CommandMetadata& m) {
  auto r = evs::upsert(accounts_, c.account, options_for(m), &Account::withdraw, c.cents, c.transfer_id);
  if (!r) reject(c.transfer_id, TransferStep::debit, r.error(), m);
}
void Bank::credit(const CreditTarget& c, const evs::CommandMetadata& m) {
  auto r = evs::upsert(accounts_, c.account, options_for(m), &Account::deposit, c.cents, c.transfer_id);
  if (!r) reject(c.transfer_id, TransferStep::credit, r.error(), m);
}
void Bank::refund(const RefundSource& c, const evs::CommandMetadata& m) {
  auto r = evs::update(accounts_, c.account, options_for(m), &Account::refund, c.cents, c.transfer_id);
  if (!r) throw evs::Exception(r.error());  // a refund must not be dropped: the engine retries, then parks it
}

// A business refusal (the domain said no) becomes an event the saga reacts to. Anything else is an
// infrastructure failure: throw, and the engine retries the reaction with the same command id.
void Bank::reject(const std::string& transfer_id, TransferStep leg, const evs::Error& why,
                  const evs::CommandMetadata& m) {
  if (!why.is(errc::rejected)) throw evs::Exception(why);
  evs::EventMetadata metadata = m.event_metadata();
  metadata.user["who"] = "bank";
  // The command id as event id: a re-issued command stores its refusal once.
  const TransferLegRejected refused{transfer_id, boost::describe::enum_to_string(leg, ""), why.message};
  auto r = store_.append_event("transfer-" + transfer_id, evs::ExpectedVersion::any(), refused,
                               {.metadata = metadata, .event_id = m.command_id});
  if (!r) throw evs::Exception(r.error());
}

// ---- AccountBalances ----------------------------------------------------------------------------------

namespace {
std::string account_of(const evs::RecordedEvent& m) { return m.stream_id.substr(Account::category.size() + 1); }
void add(evs::SqlSession& db, const evs::RecordedEvent& m, std::int64_t cents) {
  db.exec("UPDATE bank_accounts SET balance_cents = balance_cents + ?2, events = events + 1 WHERE id = ?1",
          {account_of(m), cents});
}
}  // namespace

void AccountBalances::setup(evs::SqlSession& db) {
  db.exec("CREATE TABLE IF NOT EXISTS bank_accounts (id TEXT PRIMARY KEY, owner TEXT NOT NULL, "
          "balance_cents INTEGER NOT NULL, status TEXT NOT NULL, events INTEGER NOT NULL)");
  db.exec("CREATE TABLE IF NOT EXISTS bank_transfers (id TEXT PRIMARY KEY, from_account TEXT NOT NULL, "
          "to_account TEXT NOT NULL, cents INTEGER NOT NULL, status TEXT NOT NULL, reason TEXT NOT NULL)");
}
void AccountBalances::handle(const AccountOpened& e, const evs::RecordedEvent& m, evs::SqlSession& db) {
  db.exec("INSERT INTO bank_accounts VALUES (?1, ?2, 0, 'open', 1)", {account_of(m), e.owner});
}
void AccountBalances::handle(const MoneyDeposited& e, const evs::RecordedEvent& m, evs::SqlSession& db) { add(db, m, e.cents); }
void AccountBalances::handle(const MoneyWithdrawn& e, const evs::RecordedEvent& m, evs::SqlSession& db) { add(db, m, -e.cents); }
void AccountBalances::handle(const TransferRefunded& e, const evs::RecordedEvent& m, evs::SqlSession& db) { add(db, m, e.cents); }
void AccountBalances::handle(const AccountClosed&, const evs::RecordedEvent& m, evs::SqlSession& db) {
  db.exec("UPDATE bank_accounts SET status = 'closed', events = events + 1 WHERE id = ?1", {account_of(m)});
}
void AccountBalances::handle(const TransferRequested& e, evs::SqlSession& db) {
  db.exec("INSERT OR IGNORE INTO bank_transfers VALUES (?1, ?2, ?3, ?4, 'running', '')",
          {e.transfer_id, e.from, e.to, e.cents});
}
void AccountBalances::handle(const evs::SagaEnded& e, const evs::RecordedEvent& m, evs::SqlSession& db) {
  const std::string prefix = std::string(TransferSaga::name) + "-";
  if (m.stream_id.rfind(prefix, 0) != 0) return;  // another process manager's instance
  const std::string status = e.status == evs::SagaStatus::completed ? "completed" : "compensated";
  db.exec("UPDATE bank_transfers SET status = ?2, reason = ?3 WHERE id = ?1",
          {m.stream_id.substr(prefix.size()), status, e.reason});
}

}  // namespace bank
