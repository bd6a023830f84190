// The evs demo: a small bank on an embedded SQLite file. Concurrent clients deposit and withdraw through the
// command handler (conflicts are retried), a producer retries an append (stored once), snapshots are taken,
// and a balance is read as it was in the past. It checks its own results and exits non-zero on a mismatch.
#include <evs/eventstore/command_handler.hpp>
#include <evs/eventstore/repository.hpp>
#include <evs/eventstore/sqlite_event_store.hpp>

#include <atomic>
#include <cstdio>
#include <filesystem>
#include <string_view>
#include <random>
#include <thread>

namespace bank {

struct Deposited { std::int64_t cents = 0; };
BOOST_DESCRIBE_STRUCT(Deposited, (), (cents))
EVS_EVENT(Deposited, "bank.deposited", 1)

struct Withdrawn { std::int64_t cents = 0; };
BOOST_DESCRIBE_STRUCT(Withdrawn, (), (cents))
EVS_EVENT(Withdrawn, "bank.withdrawn", 1)

struct Balance { std::int64_t cents = 0; std::int64_t operations = 0; };
BOOST_DESCRIBE_STRUCT(Balance, (), (cents, operations))

class Account : public evs::Aggregate<Account, Balance, Deposited, Withdrawn> {
 public:
  static constexpr std::string_view category = "account";
  using Aggregate::Aggregate;

  void deposit(std::int64_t cents) { raise(Deposited{cents}); }
  evs::Result<void> withdraw(std::int64_t cents) {
    if (state().cents < cents) return evs::Error{evs::errc::invalid_argument, "insufficient funds"};
    raise(Withdrawn{cents});
    return {};
  }
  void apply(const Deposited& e) { state_.cents += e.cents, ++state_.operations; }
  void apply(const Withdrawn& e) { state_.cents -= e.cents, ++state_.operations; }
};

}  // namespace bank

namespace {

int failures = 0;
void check(bool ok, const char* what) {
  std::printf("  [%s] %s\n", ok ? "ok" : "FAILED", what);
  if (!ok) ++failures;
}

}  // namespace

int main(int argc, char** argv) {
  const std::string path = argc > 1 ? argv[1] : "demo.db";
  const bool start_over = argc > 2 && std::string_view(argv[2]) == "--fresh";
  if (argc > 3 || (argc == 3 && !start_over)) {
    std::fprintf(stderr, "usage: evs_demo [DB_PATH] [--fresh]\n");
    return 2;
  }
  if (start_over)
    for (const char* suffix : {"", "-wal", "-shm"}) std::filesystem::remove(path + suffix);
  std::printf("evs demo: a bank on %s\n\n", path.c_str());
  evs::SqliteEventStore store({path, evs::Durability::full});
  if (store.last_position().value() != 0) {
    std::fprintf(stderr, "evs_demo: %s already holds events; the demo tells its story on a new file "
                         "(pass --fresh to delete it first)\n", path.c_str());
    return 1;
  }
  evs::Repository<bank::Account> accounts(store, {evs::Encoding::binary, 50});

  std::printf("1. Eight clients run 400 commands concurrently on 4 accounts (group commit, optimistic concurrency)\n");
  std::atomic<int> done{0}, rejected{0}, retried{0};
  std::atomic<std::int64_t> deposited{0}, withdrawn{0};
  std::vector<std::thread> clients;
  for (int c = 0; c < 8; ++c) {
    clients.emplace_back([&, c] {
      std::mt19937 rng(static_cast<unsigned>(c));
      for (int i = 0; i < 50; ++i) {
        const std::string id = "acc" + std::to_string(rng() % 4);
        const std::int64_t amount = 1 + rng() % 100;
        const bool deposit = rng() % 3 != 0;
        auto r = evs::handle_command(
            accounts, id,
            [&](bank::Account& a) -> evs::Result<void> {
              if (deposit) {
                a.deposit(amount);
                return {};
              }
              return a.withdraw(amount);
            },
            evs::CommandOptions{.max_attempts = 20});
        if (!r) {
          ++rejected;
          continue;
        }
        ++done;
        if (r->attempts > 1) retried += r->attempts - 1;
        (deposit ? deposited : withdrawn) += amount;
      }
    });
  }
  for (auto& t : clients) t.join();
  std::printf("   %d commands applied, %d rejected (insufficient funds), %d conflict retries\n", done.load(),
              rejected.load(), retried.load());

  std::int64_t total = 0;
  for (int a = 0; a < 4; ++a) {
    auto acc = accounts.load("acc" + std::to_string(a)).value();
    std::printf("   account-acc%d: balance %lld cents after %llu events\n", a, static_cast<long long>(acc.state().cents),
                static_cast<unsigned long long>(acc.version()));
    total += acc.state().cents;
  }
  check(total == deposited - withdrawn, "sum of balances equals deposits minus withdrawals");
  check(store.last_position().value() == static_cast<std::uint64_t>(done.load()), "one event per applied command, no gaps");

  std::printf("\n2. A producer retries an append after a timeout: the event ids make it idempotent\n");
  evs::EventData e;
  e.type = "bank.deposited";
  e.payload = evs::encode(bank::Deposited{1000}, evs::Encoding::binary);
  e.metadata.correlation_id = "payroll-2026-11";
  const std::vector<evs::EventData> batch{e};
  auto first = store.append("account-payroll", evs::ExpectedVersion::any(), batch).value();
  auto retry = store.append("account-payroll", evs::ExpectedVersion::any(), batch).value();
  std::printf("   first append at position %llu, retry reports position %llu (idempotent replay: %s)\n",
              static_cast<unsigned long long>(first.last_position), static_cast<unsigned long long>(retry.last_position),
              retry.idempotent_replay ? "yes" : "no");
  check(retry.idempotent_replay && retry.last_position == first.last_position, "the retry stored nothing new");

  std::printf("\n3. A stale writer gets a clear conflict instead of overwriting\n");
  auto stale = accounts.load("acc0").value();
  auto fresh = accounts.load("acc0").value();
  fresh.deposit(1);
  accounts.save(fresh).value();
  stale.deposit(1);
  auto conflict = accounts.save(stale);
  std::printf("   %s\n", conflict ? "saved?!" : conflict.error().what().c_str());
  check(!conflict && conflict.error().is(evs::errc::wrong_expected_version), "the stale save was rejected");

  std::printf("\n4. Time travel: account-acc1 as of global position %llu\n",
              static_cast<unsigned long long>(store.last_position().value() / 2));
  const auto half = store.last_position().value() / 2;
  auto past = accounts.load_as_of("acc1", half);
  std::int64_t replayed = 0;
  for (const auto& ev : store.read_stream("account-acc1").value()) {
    if (ev.position > half) break;
    auto d = ev.type == "bank.deposited" ? evs::decode<bank::Deposited>(ev.payload, ev.encoding).value().cents
                                         : -evs::decode<bank::Withdrawn>(ev.payload, ev.encoding).value().cents;
    replayed += d;
  }
  if (past) std::printf("   balance then: %lld cents (version %llu)\n", static_cast<long long>(past->state().cents),
                        static_cast<unsigned long long>(past->version()));
  check(past && past->state().cents == replayed, "the past balance matches a manual replay of the log");

  auto snap = store.load_snapshot("account-acc1").value();
  std::printf("\n5. Snapshots every 50 events: account-acc1 has one at version %llu\n",
              static_cast<unsigned long long>(snap ? snap->version : 0));

  std::printf("\nSummary: %llu events in %s; %d check(s) failed\n",
              static_cast<unsigned long long>(store.last_position().value()), path.c_str(), failures);
  return failures == 0 ? 0 : 1;
}
