#include "bank.hpp"

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

TransferSaga::TransferSaga(evs::EventStore& store, TransferCommands commands, std::chrono::milliseconds step_timeout)
    : ProcessManager(store), commands_(std::move(commands)), step_timeout_(step_timeout) {}

void TransferSaga::handle(const TransferRequested& e, const evs::RecordedEvent&, Saga& saga) {
  if (!saga.is_new()) return;
  saga.data() = {e.from, e.to, e.cents};
  saga.start_step("debit", step_timeout_);
  saga.send("DebitSource", DebitSource{e.transfer_id, e.from, e.cents}, commands_.debit);
}

void TransferSaga::handle(const MoneyWithdrawn& e, const evs::RecordedEvent&, Saga& saga) {
  if (saga.is_pending("debit")) {
    saga.complete_step("debit");
    saga.start_step("credit", step_timeout_);
    saga.send("CreditTarget", CreditTarget{e.transfer_id, saga.data().to, e.cents}, commands_.credit);
  } else if (saga.status() == evs::SagaStatus::compensated && !saga.is_completed("debit")) {
    // The debit landed after the saga gave up on it: give the money back.
    saga.send("RefundSource", RefundSource{e.transfer_id, saga.data().from, e.cents}, commands_.refund);
  }
}

void TransferSaga::handle(const MoneyDeposited&, const evs::RecordedEvent&, Saga& saga) {
  if (!saga.is_pending("credit")) return;
  saga.complete_step("credit");
  saga.complete();
}

void TransferSaga::handle(const TransferLegRejected& e, const evs::RecordedEvent&, Saga& saga) {
  if (saga.is_pending(e.leg)) saga.fail_step(e.leg, e.reason);
}

void TransferSaga::compensate(std::string_view step, Saga& saga) {
  if (step == "debit")
    saga.send("RefundSource", RefundSource{saga.correlation_id(), saga.data().from, saga.data().cents}, commands_.refund);
}

// ---- Bank ---------------------------------------------------------------------------------------------

namespace {
evs::CommandOptions options_for(const Actor& actor) {
  return {.metadata = {.correlation_id = actor.correlation_id, .user = {{"who", actor.who}}}};
}
evs::CommandOptions options_for(const evs::CommandMetadata& m) {
  evs::CommandOptions o;
  o.create_if_missing = true;
  o.metadata = m.event_metadata();  // correlation = the transfer, causation = the saga's command
  o.command_id = m.command_id;       // a re-issued command appends nothing new and gets its first answer
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

TransferCommands Bank::commands() {
  return {[this](const DebitSource& c, const evs::CommandMetadata& m) { debit(c, m); },
          [this](const CreditTarget& c, const evs::CommandMetadata& m) { credit(c, m); },
          [this](const RefundSource& c, const evs::CommandMetadata& m) { refund(c, m); }};
}

void Bank::debit(const DebitSource& c, const evs::CommandMetadata& m) {
  auto r = evs::handle_command(accounts_, c.account, [&](Account& a) { return a.withdraw(c.cents, c.transfer_id); },
                               options_for(m));
  if (!r) reject(c.transfer_id, "debit", r.error(), m);
}
void Bank::credit(const CreditTarget& c, const evs::CommandMetadata& m) {
  auto r = evs::handle_command(accounts_, c.account, [&](Account& a) { return a.deposit(c.cents, c.transfer_id); },
                               options_for(m));
  if (!r) reject(c.transfer_id, "credit", r.error(), m);
}
void Bank::refund(const RefundSource& c, const evs::CommandMetadata& m) {
  auto r = evs::handle_command(accounts_, c.account, [&](Account& a) { return a.refund(c.cents, c.transfer_id); },
                               options_for(m));
  if (!r) throw evs::Exception(r.error());  // a refund must not be dropped: the engine retries, then parks it
}

// A business refusal (the domain said no) becomes an event the saga reacts to. Anything else is an
// infrastructure failure: throw, and the engine retries the reaction with the same command id.
void Bank::reject(const std::string& transfer_id, const std::string& leg, const evs::Error& why,
                  const evs::CommandMetadata& m) {
  if (!why.is(errc::rejected)) throw evs::Exception(why);
  evs::EventMetadata metadata = m.event_metadata();
  metadata.user["who"] = "bank";
  // The command id as event id: a re-issued command stores its refusal once.
  const evs::EventData d = evs::make_event_data(TransferLegRejected{transfer_id, leg, why.message},
                                                evs::Encoding::binary, metadata, m.command_id);
  auto r = store_.append("transfer-" + transfer_id, evs::ExpectedVersion::any(), std::span(&d, 1));
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
