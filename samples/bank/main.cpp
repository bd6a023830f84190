// bank demo DB [--fresh] [--short]   tells the bank's story and checks its own results (exit 1 on a mismatch)
// bank <evs tool command> ...          the embedded evs tool, e.g. `bank --db demo-data/bank.db stats` or
//                                      `bank --db demo-data/bank.db rebuild account_balances`
#include "bank.hpp"

#include <evs/cli/cli.hpp>
#include <evs/eventstore/sqlite_event_store.hpp>
#include <evs/projections/engine.hpp>

#include <sqlite3.h>

#include <cstdio>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <map>
#include <string>
#include <thread>
#include <vector>

using namespace std::chrono_literals;
using bank::money;

namespace {

// The read models live next to the event store: demo-data/bank.db -> demo-data/bank.read.db.
std::filesystem::path read_db_for(std::filesystem::path db) { return db.replace_extension(".read.db"); }

void remove_db(const std::filesystem::path& p) {
  for (const char* suffix : {"", "-wal", "-shm"}) std::filesystem::remove(p.string() + suffix);
}

std::string clock_time(evs::Timestamp t) {
  const std::time_t secs = std::chrono::system_clock::to_time_t(std::chrono::time_point_cast<std::chrono::seconds>(t));
  std::tm tm{};
  localtime_r(&secs, &tm);
  char buf[64];
  std::strftime(buf, sizeof buf, "%Y-%m-%d %H:%M:%S", &tm);
  const auto micros = t.time_since_epoch().count() % 1000000;
  char out[80];
  std::snprintf(out, sizeof out, "%s.%06lld", buf, static_cast<long long>(micros));
  return out;
}

struct Checks {
  std::vector<std::pair<std::string, bool>> items;
  bool check(bool ok, std::string what) {
    items.emplace_back(std::move(what), ok);
    if (!ok) std::printf("    !! check failed: %s\n", items.back().first.c_str());
    return ok;
  }
  int summary() const {
    int failed = 0;
    std::printf("\nSelf-check:\n");
    for (const auto& [what, ok] : items) {
      std::printf("  [%s] %s\n", ok ? " ok " : "FAIL", what.c_str());
      failed += ok ? 0 : 1;
    }
    std::printf("%zu/%zu checks passed\n", items.size() - failed, items.size());
    return failed == 0 ? 0 : 1;
  }
};

void step(int n, const char* title) { std::printf("\n[%d] %s\n", n, title); }

template <class T>
T must(evs::Result<T> r, const char* what) {
  if (!r) {
    std::fprintf(stderr, "bank: %s: %s\n", what, r.error().what().c_str());
    std::exit(1);
  }
  return std::move(*r);
}

std::string payload_json(const evs::RecordedEvent& e) {
  const auto* info = evs::EventRegistry::global().find(e.type);
  if (!info) return "?";
  auto j = info->to_json(e.payload, e.encoding);
  return j ? *j : "?";
}
std::string meta(const evs::EventMetadata& m, const char* key) {
  auto it = m.user.find(key);
  return it == m.user.end() ? "" : it->second;
}

int demo(const std::filesystem::path& db, bool fresh, bool short_mode) {
  const auto read_db = read_db_for(db);
  if (fresh) {
    remove_db(db);
    remove_db(read_db);
  }
  if (!db.parent_path().empty()) std::filesystem::create_directories(db.parent_path());
  Checks checks;
  const auto step_timeout = short_mode ? 300ms : 1500ms;

  std::printf("bank: accounts, a transfer saga, snapshots, time travel and an audit trail on %s\n", db.c_str());
  evs::SqliteEventStore store({.path = db, .durability = evs::Durability::normal});
  if (must(store.last_position(), "read the store") != 0) {
    std::fprintf(stderr, "bank: %s already holds events; run with --fresh\n", db.c_str());
    return 1;
  }
  bank::Bank bank(store, {.snapshot_every = 5});

  // Dave's branch is offline: credits to dave never get an answer, so that leg times out.
  const auto handlers = bank.commands();  // debit, credit, refund
  bank::TransferSaga transfers(store, step_timeout);
  bank::AccountBalances balances;
  evs::ProjectionEngine engine(store);
  transfers.attach(engine, {.database = read_db}, std::get<0>(handlers), std::get<2>(handlers),
                   [&bank](const bank::CreditTarget& c, const evs::CommandMetadata& m) {
                     if (c.account != "dave") bank.credit(c, m);
                   });
  engine.add(balances, {.database = read_db});
  engine.start();

  // ---------------------------------------------------------------------------------------------------
  step(1, "Ann, a teller, opens four accounts and takes cash deposits");
  const bank::Actor ann{"teller:ann", "branch-visit-1"};
  std::int64_t cash_in = 0, cash_out = 0;
  for (auto [id, owner] : {std::pair{"alice", "Alice Martin"}, {"bob", "Bob Chen"}, {"carol", "Carol Diaz"},
                           {"dave", "Dave Okafor"}})
    must(bank.open(id, owner, ann), "open");
  for (auto [id, cents] : {std::pair{"alice", 100'00}, {"bob", 50'00}, {"dave", 10'00}}) {
    must(bank.deposit(id, cents, ann), "deposit");
    cash_in += cents;
  }
  std::printf("    opened alice, bob, carol, dave; deposited alice 100.00, bob 50.00, dave 10.00\n");

  step(2, "A withdrawal larger than the balance is rejected, and nothing is stored");
  const auto before_rejection = must(store.last_position(), "position");
  auto rejected = bank.withdraw("bob", 80'00, {"atm:42", "atm-session-7"});
  std::printf("    bob withdraws 80.00 at ATM 42 -> %s\n", rejected ? "accepted?!" : rejected.error().message.c_str());
  checks.check(!rejected && must(store.last_position(), "position") == before_rejection,
               "a withdrawal beyond the balance is rejected and appends nothing");
  must(bank.withdraw("bob", 20'00, {"atm:42", "atm-session-7"}), "withdraw");
  cash_out += 20'00;
  std::printf("    bob withdraws 20.00 at ATM 42 -> ok, balance %s\n", money(must(bank.account("bob"), "load").state().balance).c_str());

  step(3, "A busy day at the counter; snapshots are taken every 5 events");
  const int ops = short_mode ? 12 : 120;
  for (int i = 0; i < ops; ++i) {
    const std::int64_t cents = 1'00 + (i * 37) % 900;
    if (i % 3 == 2) {
      must(bank.withdraw("alice", cents, ann), "withdraw");
      cash_out += cents;
    } else {
      must(bank.deposit("alice", cents, ann), "deposit");
      cash_in += cents;
    }
  }
  must(bank.close("carol", "customer moved away", ann), "close");
  const auto alice = must(bank.account("alice"), "load");
  const auto snap = must(store.load_snapshot("account-alice"), "snapshot");
  std::printf("    alice: %d more operations, now at version %llu, balance %s\n", ops,
              static_cast<unsigned long long>(alice.version()), money(alice.state().balance).c_str());
  std::printf("    latest snapshot of account-alice: version %llu, so a load replays only %llu event(s)\n",
              static_cast<unsigned long long>(snap ? snap->version : 0),
              static_cast<unsigned long long>(alice.version() - (snap ? snap->version : 0)));
  std::printf("    carol closed her (empty) account\n");
  checks.check(snap && snap->version == alice.version() / 5 * 5, "a snapshot exists at the last multiple of 5");

  // ---------------------------------------------------------------------------------------------------
  step(4, "Four transfers, each run by the transfer saga (debit the source, then credit the target)");
  struct Case { const char* id; const char* from; const char* to; std::int64_t cents; const char* story; evs::SagaStatus want; };
  const std::vector<Case> cases = {
      {"t-100", "alice", "bob", 30'00, "alice -> bob: the happy path", evs::SagaStatus::completed},
      {"t-101", "bob", "alice", 500'00, "bob -> alice 500.00: bob is short, the debit is refused", evs::SagaStatus::compensated},
      {"t-102", "alice", "carol", 15'00, "alice -> carol: carol's account is closed, alice is refunded", evs::SagaStatus::compensated},
      {"t-103", "alice", "dave", 5'00, "alice -> dave: dave's branch is offline, the credit times out, alice is refunded",
       evs::SagaStatus::compensated},
  };
  const bank::Actor web{"web:alice", ""};
  for (const auto& c : cases) must(bank.transfer(c.id, c.from, c.to, c.cents, web), "transfer");
  const auto deadline = std::chrono::steady_clock::now() + 20s;
  auto ended = [&](const char* id) {
    auto s = transfers.instance(id);
    return s && (s->status == evs::SagaStatus::completed || s->status == evs::SagaStatus::compensated);
  };
  for (const auto& c : cases)
    while (!ended(c.id) && std::chrono::steady_clock::now() < deadline) std::this_thread::sleep_for(5ms);
  for (const auto& c : cases) {
    auto s = transfers.instance(c.id);
    const bool ok = s && s->status == c.want;
    std::printf("    %s %s\n        -> %s%s%s; steps done: ", c.id, c.story, s ? std::string(boost::describe::enum_to_string(s->status, "?")).c_str() : "missing",
                s && !s->reason.empty() ? ": " : "", s ? s->reason.c_str() : "");
    if (s) for (const auto& d : s->completed) std::printf("%s ", d.c_str());
    if (s && !s->compensated.empty()) { std::printf("; compensated: "); for (const auto& d : s->compensated) std::printf("%s ", d.c_str()); }
    std::printf("\n");
    checks.check(ok, std::string("transfer ") + c.id + " ends " + std::string(boost::describe::enum_to_string(c.want, "?")));
  }
  // The refunds are issued after the saga's reaction is stored: wait until they have landed.
  while (std::chrono::steady_clock::now() < deadline) {
    auto a = bank.account("alice");
    if (a && a->state().balance == alice.state().balance - 30'00) break;
    std::this_thread::sleep_for(5ms);
  }
  const auto alice_now = must(bank.account("alice"), "load");
  std::printf("    alice: %s -> %s (only t-100 moved money); bob: %s\n", money(alice.state().balance).c_str(),
              money(alice_now.state().balance).c_str(), money(must(bank.account("bob"), "load").state().balance).c_str());
  checks.check(alice_now.state().balance == alice.state().balance - 30'00, "failed transfers refunded alice in full");

  // ---------------------------------------------------------------------------------------------------
  step(5, "Time travel: 'what was alice's balance at 15:00 yesterday?'");
  const auto history = must(store.read_stream("account-alice"), "read");
  const auto yesterday_15 = [] {
    std::time_t now = std::time(nullptr) - 24 * 3600;
    std::tm tm{};
    localtime_r(&now, &tm);
    tm.tm_hour = 15, tm.tm_min = 0, tm.tm_sec = 0;
    return std::chrono::time_point_cast<std::chrono::microseconds>(std::chrono::system_clock::from_time_t(std::mktime(&tm)));
  }();
  auto literal = bank.account_as_of("alice", yesterday_15);
  std::printf("    at %s: %s\n", clock_time(yesterday_15).c_str(),
              literal ? ("balance " + money(literal->state().balance)).c_str()
                      : "no answer: alice's account did not exist yet (this store was created moments ago)");
  checks.check(!literal && literal.error().is(evs::errc::stream_not_found), "before the first event, the account did not exist");
  std::printf("    The same question about moments of this store's own history (times as recorded by the store):\n");
  bank::Account replayed("alice");
  int answered = 0, matched = 0;
  const std::size_t shown = 6;
  for (std::size_t i = 0; i < history.size(); ++i) {
    (void)replayed.replay(history[i]);
    // A moment strictly between this event and the next one: the answer must include this event and no later one.
    const evs::Timestamp t = i + 1 < history.size() ? history[i].recorded_at + (history[i + 1].recorded_at - history[i].recorded_at) / 2
                                                    : history[i].recorded_at;
    if (i + 1 < history.size() && history[i + 1].recorded_at == history[i].recorded_at) continue;
    auto then = bank.account_as_of("alice", t);
    ++answered;
    const bool same = then && then->state().balance == replayed.state().balance && then->version() == history[i].version;
    matched += same ? 1 : 0;
    if (i < shown / 2 || i + shown / 2 >= history.size())
      std::printf("      at %s  balance %8s  (after v%llu %s)\n", clock_time(t).c_str(),
                  then ? money(then->state().balance).c_str() : "?", static_cast<unsigned long long>(history[i].version),
                  history[i].type.c_str());
    else if (i == shown / 2)
      std::printf("      ...\n");
  }
  std::printf("    %d moments asked, %d answers equal to a replay of the events up to that moment\n", answered, matched);
  checks.check(answered > 0 && answered == matched, "every time-travel answer equals a replay up to that time");

  // ---------------------------------------------------------------------------------------------------
  step(6, "The audit trail of bob's account: every change, who made it, and why");
  for (const auto& e : must(store.read_stream("account-bob"), "read")) {
    std::printf("    v%-2llu %s  %-20s %-42s who=%-14s correlation=%s\n", static_cast<unsigned long long>(e.version),
                clock_time(e.recorded_at).c_str() + 11, e.type.c_str(), payload_json(e).c_str(),
                meta(e.metadata, "who").c_str(), e.metadata.correlation_id.c_str());
  }
  std::printf("    and transfer t-102 as the saga recorded it (stream transfer_saga-t-102):\n");
  for (const auto& e : must(store.read_stream(bank::TransferSaga::stream_id_for("t-102")), "read"))
    if (e.type != "evs.saga.event_handled" && e.type != "evs.saga.data_changed")
      std::printf("      %-26s %s\n", e.type.c_str(), payload_json(e).c_str());

  // ---------------------------------------------------------------------------------------------------
  step(7, "The read model (SQL, written by the account_balances projection) agrees with the aggregates");
  const auto head = must(store.last_position(), "position");
  checks.check(bool(engine.wait_for("account_balances", head, 10s)), "the account_balances read model reaches the head");
  checks.check(bool(engine.wait_for("transfer_saga", head, 10s)), "the transfer saga has handled every event");
  engine.stop();
  // Any SQL client can read the read model; here, plain SQLite.
  std::map<std::string, std::int64_t> read_model;
  std::vector<std::string> transfer_rows;
  sqlite3* rdb = nullptr;
  if (sqlite3_open_v2(read_db.c_str(), &rdb, SQLITE_OPEN_READONLY, nullptr) == SQLITE_OK) {
    sqlite3_exec(rdb, "SELECT id, balance_cents FROM bank_accounts", [](void* out, int, char** v, char**) {
      (*static_cast<std::map<std::string, std::int64_t>*>(out))[v[0]] = std::atoll(v[1]);
      return 0;
    }, &read_model, nullptr);
    sqlite3_exec(rdb, "SELECT id || ' ' || status || ' ' || reason FROM bank_transfers ORDER BY id", [](void* out, int, char** v, char**) {
      static_cast<std::vector<std::string>*>(out)->push_back(v[0]);
      return 0;
    }, &transfer_rows, nullptr);
  }
  sqlite3_close(rdb);
  std::int64_t read_total = 0;
  bool read_matches = read_model.size() == 4;
  for (const char* id : {"alice", "bob", "carol", "dave"}) {
    const auto a = must(bank.account(id), "load");
    read_total += read_model[id];
    read_matches = read_matches && read_model[id] == a.state().balance;
    std::printf("    %-6s %-13s read model %8s   aggregate %8s  %s\n", id, a.state().owner.c_str(), money(read_model[id]).c_str(),
                money(a.state().balance).c_str(), a.state().closed ? "closed" : "open");
  }
  for (const auto& row : transfer_rows) std::printf("    transfer %s\n", row.c_str());
  checks.check(read_matches, "every balance in the read model equals the aggregate's");
  checks.check(transfer_rows.size() == 4, "the read model lists the four transfers with their outcome");

  step(8, "Money is conserved: transfers only move it");
  std::printf("    cash in %s - cash out %s = %s; sum of balances %s\n", money(cash_in).c_str(), money(cash_out).c_str(),
              money(cash_in - cash_out).c_str(), money(read_total).c_str());
  checks.check(cash_in - cash_out == read_total, "sum of balances == cash deposited - cash withdrawn");
  return checks.summary();
}

}  // namespace

int main(int argc, char** argv) {
  if (argc >= 2 && std::strcmp(argv[1], "demo") == 0) {
    if (argc < 3) {
      std::fprintf(stderr, "usage: bank demo DB [--fresh] [--short]\n");
      return 2;
    }
    bool fresh = false, short_mode = false;
    for (int i = 3; i < argc; ++i) {
      if (std::strcmp(argv[i], "--fresh") == 0) fresh = true;
      else if (std::strcmp(argv[i], "--short") == 0) short_mode = true;
      else {
        std::fprintf(stderr, "bank: unknown option %s\n", argv[i]);
        return 2;
      }
    }
    return demo(argv[2], fresh, short_mode);
  }
  // Everything else is the evs tool with the bank's events and read model registered.
  std::filesystem::path db = "bank.db";
  for (int i = 1; i < argc; ++i) {
    if (std::strcmp(argv[i], "--db") == 0 && i + 1 < argc) db = argv[i + 1];
    else if (std::strncmp(argv[i], "--db=", 5) == 0) db = argv[i] + 5;
  }
  bank::AccountBalances balances;
  evs::cli::Application app{"bank", db};
  app.projections.push_back({&balances, {.database = read_db_for(db)}});
  return evs::cli::run(app, argc, argv);
}
