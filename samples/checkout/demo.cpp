// `checkout demo LOCATION [--fresh] [--short] [--files DIR] [--port N] [--serve]`: the story of one shop, step
// by step, ending with checks that compare every read model and every fake with the log. Exits 1 if anything
// disagrees. The dashboard (evs::http) serves the shop's store and engine from step 1 on; --serve keeps it
// up after the story until Ctrl-C. Step 9 reads
// a copy of data/checkout-v1.db, a store written before OrderPlaced had a currency. LOCATION is a SQLite file
// or a PostgreSQL schema ("postgresql://...?evs_schema=checkout"; read models in "checkout_read"); on
// PostgreSQL, the steps that use stores of their own (6 and 9) keep them in SQLite files in DIR.
#include "app.hpp"
#include "audit.hpp"
#include "choreography.hpp"
#include "demo.hpp"

#include <evs/http/server.hpp>

#include <boost/describe/enum_to_string.hpp>

#include <csignal>
#include <cstdarg>
#include <optional>
#include <thread>

namespace checkout {
namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

[[gnu::format(printf, 1, 2)]] void say(const char* fmt, ...) {
  va_list args;
  va_start(args, fmt);
  std::vprintf(fmt, args);
  va_end(args);
  std::printf("\n");
  std::fflush(stdout);
}
void step(int n, const char* title) { say("\n[%d] %s", n, title); }
long long ms_since(Clock::time_point t) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - t).count();
}
std::string money(std::int64_t cents, const std::string& currency) {
  char buf[48];
  std::snprintf(buf, sizeof buf, "%lld.%02lld %s", (long long)(cents / 100), (long long)(cents % 100), currency.c_str());
  return buf;
}

template <class F>
bool poll_until(F&& done, std::chrono::milliseconds limit = 20s) {
  for (const auto until = Clock::now() + limit; !done();)
    if (Clock::now() > until) return false; else std::this_thread::sleep_for(5ms);
  return true;
}

// Waits until every projection of `engine` has processed the whole log, including what the saga appends
// in reaction (so: until the head stops moving).
bool settle(evs::EventStore& store, evs::ProjectionEngine& engine) {
  for (std::uint64_t head = 0;;) {
    const std::uint64_t now = store.last_position().value();
    if (now == head) return true;
    head = now;
    for (const auto& h : engine.health())
      if (!engine.wait_for(h.name, head, 20s)) return false;
  }
}

std::string live_line(Shop& shop) {
  std::string line = "head " + std::to_string(shop.store.last_position().value());
  for (const auto& h : shop.engine.health()) line += " | " + h.name + " " + std::to_string(h.position);
  return line;
}

// A stream's event types, without their "checkout." prefix.
std::string trail(evs::EventStore& store, const std::string& stream) {
  std::string out;
  for (const auto& e : store.read_stream(stream).value())
    out += (out.empty() ? "" : ", ") + e.type.substr(e.type.rfind('.') + 1);
  return out;
}

// A saga instance's audit trail, told as its steps and commands.
std::string saga_trail(evs::EventStore& store, const std::string& order_id) {
  std::string out;
  for (const auto& e : store.read_stream(Fulfilment::stream_id_for(order_id)).value()) {
    auto add = [&](std::string s) { out += (out.empty() ? "" : ", ") + s; };
    if (is<evs::SagaStepStarted>(e)) add("wait for " + payload<evs::SagaStepStarted>(e).step);
    if (is<evs::SagaCommandIssued>(e)) add(payload<evs::SagaCommandIssued>(e).command);
    if (is<evs::SagaDeadlineReached>(e)) add("DEADLINE");
    if (is<evs::SagaStepFailed>(e)) add(payload<evs::SagaStepFailed>(e).step + " FAILED");
    if (is<evs::SagaStepCompensated>(e)) add("undo " + payload<evs::SagaStepCompensated>(e).step);
    if (is<evs::SagaEnded>(e)) add(payload<evs::SagaEnded>(e).status == evs::SagaStatus::completed ? "completed" : "compensated");
  }
  return out;
}

OrderRequest order(std::string id, std::string customer, std::string sku, int quantity) {
  return {std::move(id), customer, customer + "@example.com", std::move(sku), quantity, "4242-4242-4242-4242"};
}

void remove_files(const std::filesystem::path& db) {
  for (const std::string& base : {db.string(), read_db_for(db)})
    for (const char* suffix : {"", "-wal", "-shm"}) std::filesystem::remove(base + suffix);
}

// Where a store or read model is, for the reader: the file, or the PostgreSQL schema.
std::string where(const std::string& location) {
  return on_postgresql(location) ? "PostgreSQL schema " + evs::parse_store_location(location).value().schema : location;
}

// --fresh on PostgreSQL: drops the demo's schemas (the store's, unless it is public, and its read models').
void drop_schemas(const std::string& location) {
  const std::string schema = evs::parse_store_location(location).value().schema;
  ReadModelDb db(read_db_for(location));
  for (const std::string& s : {schema, schema + "_read", schema + "_rebuild"})
    if (s != "public") db.session().exec("DROP SCHEMA IF EXISTS \"" + s + "\" CASCADE");
}

// The dashboard of the shop's engine: on the requested port, or on 7470 and else any free port.
std::unique_ptr<evs::http::Server> start_dashboard(Shop& shop, const std::string& db, std::optional<std::uint16_t> port) {
  evs::http::ServeOptions options;
  options.port = port.value_or(7470);
  try {
    return evs::http::serve(shop.engine, shop.store, shop.site(db), options);
  } catch (const evs::Exception&) {
    if (port) throw;
    options.port = 0;  // 7470 is taken (another demo, say): any free port will do
    return evs::http::serve(shop.engine, shop.store, shop.site(db), options);
  }
}

volatile std::sig_atomic_t interrupted = 0;

// --serve: until SIGINT or SIGTERM.
void serve_until_interrupted(const evs::http::Server& server) {
  std::signal(SIGINT, [](int) { interrupted = 1; });
  std::signal(SIGTERM, [](int) { interrupted = 1; });
  say("\nserving the dashboard at %s until Ctrl-C", server.dashboard_url().c_str());
  while (!interrupted) std::this_thread::sleep_for(100ms);
}

}  // namespace

int run_demo(const std::string& db, const DemoOptions& options) {
  const bool fresh = options.fresh, short_mode = options.short_mode;
  const std::filesystem::path& files = options.files;
  const bool pg = on_postgresql(db);
  // The stores of steps 6 and 9 are SQLite files: next to the store, or in `files` when it is on PostgreSQL.
  const std::filesystem::path side = pg ? files / "checkout-pg.db" : std::filesystem::path(db);
  const std::filesystem::path choreo_db = side.parent_path() / (side.stem().string() + "-choreography.db");
  if (fresh && pg) drop_schemas(db);
  if (fresh) remove_files(side), remove_files(choreo_db);
  const int clients = 4, orders_per_client = short_mode ? 10 : 60;
  const char* customers[] = {"alice", "bob", "carol", "dave", "erin", "frank", "grace", "heidi"};
  const auto started = Clock::now();

  step(1, "The shop opens");
  Shop shop(db, {.reservation_timeout = short_mode ? 300ms : 1500ms});
  shop.commands.unreachable_sku = "LAMP";  // the lamp supplier's system is down: its requests get lost
  for (auto [sku, n] : {std::pair{"BOOK", 2000}, {"MUG", 2000}, {"POSTER", 3}, {"LAMP", 10}}) shop.commands.restock(sku, n);
  shop.engine.start();
  const auto dashboard = start_dashboard(shop, db, options.port);
  say("  event log %s, read models %s", where(db).c_str(), where(read_db_for(db)).c_str());
  say("  dashboard: %s (metrics at %smetrics)", dashboard->dashboard_url().c_str(), dashboard->url().c_str());
  say("  restocked BOOK, MUG, POSTER (3 left), LAMP; %zu projections follow the log", shop.engine.health().size());

  step(2, "Concurrent clients place orders; the checkout answers at once");
  std::atomic<int> retried = 0, answered_us = 0;
  std::vector<std::thread> threads;
  for (int c = 0; c < clients; ++c)
    threads.emplace_back([&, c] {
      for (int i = 0; i < orders_per_client; ++i) {
        const bool big = i % 7 == 6;  // a $250 order: fraud detection will want to see it
        auto r = order("c" + std::to_string(c) + "-" + std::to_string(i), customers[(c * 3 + i) % 8],
                       big ? "BOOK" : (i % 2 ? "BOOK" : "MUG"), big ? 10 : 1 + i % 3);
        const auto t = Clock::now();
        shop.commands.place_order(r).value();
        answered_us += int(std::chrono::duration_cast<std::chrono::microseconds>(Clock::now() - t).count());
        if (i % 5 == 4) {  // the client timed out waiting for the answer, and sends the request again
          shop.commands.place_order(r).value();
          ++retried;
        }
      }
    });
  for (int n = 0; n < 4 && ms_since(started) < 60000; ++n) {
    std::this_thread::sleep_for(short_mode ? 40ms : 150ms);
    say("  live: %s", live_line(shop).c_str());
  }
  for (auto& t : threads) t.join();
  const int placed = clients * orders_per_client;
  say("  %d orders from %d clients, answered in %.1f ms on average", placed, clients, answered_us / 1000.0 / placed);
  say("  %d requests were sent twice: the gateway saw %d calls and made %d charges (idempotency key = order id)",
      retried.load(), shop.gateway.calls(), shop.gateway.charges());
  auto bad = order("bad-1", "zoe", "BOOK", 1);
  bad.card = CardGateway::declined_card;
  say("  rejected: %s", shop.commands.place_order(bad).error().what().c_str());
  say("  rejected: %s", shop.commands.place_order(order("bad-2", "zoe", "BOOK", 0)).error().what().c_str());
  auto t = Clock::now();
  settle(shop.store, shop.engine);
  say("  every projection caught up (%lld ms after the last answer): %s", ms_since(t), live_line(shop).c_str());

  step(3, "The mail server goes down for 5 connection attempts");
  shop.mail.go_down_for(5);
  const int sent_before = shop.mail.sent(), attempts_before = shop.mail.attempts();
  for (int i = 0; i < 3; ++i) shop.commands.place_order(order("m-" + std::to_string(i), "ivan", "MUG", 1)).value();
  poll_until([&] { return !shop.engine.health("email_confirmation")->last_error.empty(); });
  auto email = *shop.engine.health("email_confirmation");
  say("  3 orders placed meanwhile, the checkout did not wait; email_confirmation: %s, lag %llu, last error: %s",
      std::string(to_string(email.state)).c_str(), (unsigned long long)email.lag_events, email.last_error.c_str());
  poll_until([&] { return shop.mail.sent() == sent_before + 3; });
  say("  the server came back: %d confirmations sent, each once; %d connection attempts in all (5 refused, retried with backoff)",
      shop.mail.sent() - sent_before, shop.mail.attempts() - attempts_before);

  step(4, "A poison message: a confirmation that can never be sent");
  shop.commands.place_order({"p-1", "mallory", "mallory-at-example", "MUG", 1, "4242-4242-4242-4242"}).value();
  shop.commands.place_order(order("p-2", "judy", "BOOK", 1)).value();
  poll_until([&] { return shop.engine.health("email_confirmation")->dead_letters == 1; });
  email = *shop.engine.health("email_confirmation");
  say("  after 7 attempts the event is parked: dead letters %llu (%s)", (unsigned long long)email.dead_letters,
      email.last_error.c_str());
  poll_until([&] { return settle(shop.store, shop.engine); });
  say("  the next order's confirmation went out anyway: %d sent in all; see %s", shop.mail.sent(),
      (pg ? "the table evs_dead_letters in " + where(read_db_for(db))
          : "`checkout --db " + db + " dead-letters list`").c_str());

  step(5, "The saga: payment -> stock reservation -> shipping, compensated when a step fails");
  shop.commands.place_order(order("s-1", "kim", "POSTER", 5)).value();  // only 3 posters left
  shop.commands.place_order(order("s-2", "lee", "LAMP", 1)).value();    // the supplier never answers
  poll_until([&] { return trail(shop.store, "order-s-1").ends_with("order_cancelled"); });
  say("  s-1 wants 5 posters, 3 are left. saga: %s", saga_trail(shop.store, "s-1").c_str());
  say("  s-1 order stream: %s", trail(shop.store, "order-s-1").c_str());
  poll_until([&] { return trail(shop.store, "order-s-2").ends_with("order_cancelled"); });
  say("  s-2 wants a lamp; the request is lost. saga: %s", saga_trail(shop.store, "s-2").c_str());
  say("  s-2 ended as: %s", shop.fulfilment.instance("s-2").value().reason.c_str());
  settle(shop.store, shop.engine);
  say("  meanwhile every other order shipped: the warehouse got %d pick lists, each once", shop.warehouse.orders());

  step(6, "The same flow, choreographed: services react to each other's events, no coordinator");
  if (pg) say("  (a store of its own, on SQLite: %s)", choreo_db.c_str());
  {
    evs::SqliteEventStore store({.path = choreo_db, .durability = evs::Durability::normal});
    CardGateway gateway;
    Commands commands(store, gateway);
    choreography::StockService stock(commands);
    choreography::ShippingService shipping(commands);
    choreography::PaymentService payments(commands);
    evs::ProjectionEngine engine(store);
    for (evs::Projection* p : std::initializer_list<evs::Projection*>{&stock, &shipping, &payments})
      engine.add(*p, {.database = read_db_for(choreo_db.string())});
    commands.restock("POSTER", 1);
    engine.start();
    commands.place_order(order("ch-1", "mia", "POSTER", 1)).value();
    commands.place_order(order("ch-2", "ned", "POSTER", 1)).value();
    poll_until([&] { return trail(store, "order-ch-2").ends_with("order_cancelled"); });
    settle(store, engine);
    for (const char* id : {"ch-1", "ch-2"}) {
      std::string chain;
      for (const auto& e : store.read_all(1, 100).value().events)
        if (e.metadata.correlation_id == id) chain += (chain.empty() ? "" : " -> ") + e.type.substr(e.type.rfind('.') + 1);
      say("  conversation %s: %s", id, chain.c_str());
    }
  }

  step(7, "Fraud detection: a new projection, zero changes to the code that places orders");
  FraudDetection fraud;
  evs::ProjectionEngine fraud_engine(shop.store);
  fraud_engine.add(fraud, {.database = read_db_for(db)});
  t = Clock::now();
  fraud_engine.start();
  settle(shop.store, fraud_engine);
  ReadModelDb read(read_db_for(db));
  say("  started at position 0, caught up with the history (%llu events) in %lld ms; flagged %lld big orders",
      (unsigned long long)shop.store.count_events(0, shop.store.last_position().value()).value(), ms_since(t),
      (long long)read.integer("SELECT count(*) FROM fraud_flags"));

  step(8, "Rebuild revenue_per_day with zero downtime, while orders keep coming");
  std::atomic<bool> open = true;
  std::atomic<int> during = 0;
  std::thread shopper([&] {
    for (int i = 0; open; ++i, ++during, std::this_thread::sleep_for(10ms))
      shop.commands.place_order(order("r-" + std::to_string(i), customers[i % 8], "BOOK", 1)).value();
  });
  ReadModels models;
  const std::string& db_arg = db;
  const char* argv[] = {"checkout", "--db", db_arg.c_str(), "rebuild", "revenue_per_day"};
  int rebuilt = 0;
  std::optional<evs::ProjectionEngine> rebuild;  // PostgreSQL: a second revenue_per_day, built from position 0
  if (!pg) {
    rebuilt = evs::cli::run(models.tool(db), 5, argv);
  } else {
    say("  (the evs tool rebuilds SQLite read models only so far: here revenue_per_day is built again from 0 in "
        "%s, next to the live one, and compared with it)", where(read_db_for(db, "rebuild")).c_str());
    rebuild.emplace(shop.store);
    rebuild->add(models.revenue, {.database = read_db_for(db, "rebuild")});
    rebuild->start();
    std::this_thread::sleep_for(short_mode ? 200ms : 1s);
  }
  open = false;
  shopper.join();
  if (rebuild) {
    settle(shop.store, *rebuild);
    settle(shop.store, shop.engine);
    rebuild->stop();
    const char* rows = "SELECT day, orders, gross_cents, refunded_cents FROM revenue_per_day ORDER BY day";
    rebuilt = ReadModelDb(read_db_for(db, "rebuild")).session().query(rows) == read.session().query(rows) ? 0 : 1;
  }
  say("  the live engine kept running: %d orders were placed during the rebuild (%s %d)", during.load(),
      pg ? "1 if the copy differs from the live one:" : "tool exit code", rebuilt);

  step(9, "An old store: orders placed before OrderPlaced had a currency (version 1)");
  const std::filesystem::path v1_db = side.parent_path() / (side.stem().string() + "-v1.db");
  remove_files(v1_db);
  std::filesystem::copy_file(CHECKOUT_V1_STORE, v1_db);  // a copy: the committed store is never written
  std::int64_t v1_placed = 0, v1_in_usd = 0;
  {
    evs::SqliteEventStore old_store({.path = v1_db});
    for (const auto& e : old_store.read_all(1, 1000).value().events)
      v1_placed += e.type == evs::event_info_v<OrderPlaced>.name && e.schema_version == 1;
    OrdersByCustomer old_orders;
    evs::ProjectionEngine old_engine(old_store);
    old_engine.add(old_orders, {.database = read_db_for(v1_db.string())});
    old_engine.start();
    settle(old_store, old_engine);
    old_engine.stop();
    evs::Repository<Order> repository(old_store);
    for (const char* id : {"o-1", "o-2", "o-3", "o-4"}) {
      const OrderState o = repository.load(id).value().state();
      say("  %s: %s, %s (the repository replays the v1 event as v2)", id,
          std::string(boost::describe::enum_to_string(o.status, "?")).c_str(), money(o.total_cents, o.currency).c_str());
    }
    v1_in_usd = ReadModelDb(read_db_for(v1_db.string())).integer("SELECT count(*) FROM orders WHERE currency = 'USD'");
  }
  say("  %s: %lld orders stored as checkout.order_placed v1; orders_by_customer lists %lld of them in USD",
      v1_db.c_str(), (long long)v1_placed, (long long)v1_in_usd);

  step(10, "Summary: the read models and the outside world, checked against the log");
  settle(shop.store, shop.engine);
  settle(shop.store, fraud_engine);
  const LogFacts log = facts_from_log(shop.store);
  const auto email_dead = shop.engine.health("email_confirmation")->dead_letters;
  int failures = 0;
  auto check = [&](const char* what, std::int64_t got, std::int64_t want) {
    const bool ok = got == want;
    failures += !ok;
    say("  %s %-58s %8lld%s", ok ? "ok  " : "FAIL", what, (long long)got,
        ok ? "" : ("  expected " + std::to_string(want)).c_str());
  };
  check("orders (orders_by_customer rows = OrderPlaced)", read.integer("SELECT count(*) FROM orders"), log.placed);
  check("shipped orders", read.integer("SELECT count(*) FROM orders WHERE status = 'shipped'"), log.shipped);
  check("cancelled orders (compensated sagas)", read.integer("SELECT count(*) FROM orders WHERE status = 'cancelled'"),
        log.cancelled);
  check("sagas finished (shipped + cancelled = placed)", log.shipped + log.cancelled, log.placed);
  check("revenue in cents (revenue_per_day = placed - refunded)",
        read.integer("SELECT sum(gross_cents - refunded_cents) FROM revenue_per_day"),
        log.placed_cents - log.refunded_cents);
  check("card charges (each order charged exactly once)", shop.gateway.charges(), log.placed);
  check("money kept by the gateway in cents", shop.gateway.charged_cents() - shop.gateway.refunded_cents(),
        log.placed_cents - log.refunded_cents);
  check("refunds", shop.gateway.refunds(), log.refunds);
  std::int64_t stock_ok = 0;
  for (const auto& [sku, left] : log.stock)
    stock_ok += read.integer("SELECT available FROM stock_levels WHERE sku = ?1", sku) == left;
  check("skus whose stock_levels match the log", stock_ok, std::int64_t(log.stock.size()));
  check("emails sent (orders minus the parked one)", shop.mail.sent(), log.placed - std::int64_t(email_dead));
  check("emails sent twice", shop.mail.sent_twice(), 0);
  check("email dead letters", std::int64_t(email_dead), 1);
  check("warehouse pick lists (one per shipped order)", shop.warehouse.orders(), log.shipped);
  check("pick lists sent twice", shop.warehouse.picked_twice(), 0);
  check("fraud flags (orders of $200 or more)", read.integer("SELECT count(*) FROM fraud_flags"), log.big_orders);
  check("old store: orders stored as checkout.order_placed v1", v1_placed, 4);
  check("old store: of them, orders listed in USD (upcast v1 -> v2)", v1_in_usd, v1_placed);
  fraud_engine.stop();
  if (options.serve) serve_until_interrupted(*dashboard);
  dashboard->stop();
  shop.engine.stop();
  say("\n%s in %.1f s: %lld orders, %s revenue, %lld shipped, %lld compensated.",
      failures ? "MISMATCHES FOUND" : "All checks passed", ms_since(started) / 1000.0, (long long)log.placed,
      money(log.placed_cents - log.refunded_cents, catalog_currency).c_str(), (long long)log.shipped, (long long)log.cancelled);
  return failures || rebuilt != 0 ? 1 : 0;
}

}  // namespace checkout
