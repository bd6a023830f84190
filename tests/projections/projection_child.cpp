// Child process for the projection tests.
//
//   projection_child project STORE READMODEL PARTITIONS
//     Runs the ShopStats SQL projection over the store STORE into READMODEL until it has caught up
//     with the store's last position, prints "caught-up <position>", stops the engine and exits 0. The
//     parent SIGKILLs it at random moments.
//   projection_child work STORE READMODEL PARTITIONS NODE LEASE_MS [EFFECTS_FILE]
//     Runs ShopStats (and, with EFFECTS_FILE, OrderMailer writing to it and OrderWatch: shop_workers.hpp)
//     as the worker node NODE (claims with a lease of LEASE_MS): prints "working" once
//     started, works until SIGTERM, then stops the engine (giving its claims up), prints
//     "fenced <batches rolled back>" and exits 0.
//   projection_child append STORE STREAM
//     Appends one OrderPlaced to STREAM and prints "<position>".
// STORE and READMODEL are SQLite paths or postgresql:// URLs (evs::open_store locations).
#include "shop_read_model.hpp"
#include "shop_workers.hpp"

#include <evs/eventstore/open_store.hpp>
#include <evs/eventstore/sqlite_event_store.hpp>

#include <memory>
#include <evs/projections/engine.hpp>

#include <csignal>
#include <cstdio>
#include <string>

namespace {

std::unique_ptr<evs::EventStore> open(const std::string& location) {
  if (evs::parse_store_location(location).value().backend != evs::StoreBackend::sqlite) return evs::open_store(location);
  evs::SqliteOptions o;
  o.path = location;
  o.durability = evs::Durability::normal;
  return std::make_unique<evs::SqliteEventStore>(o);
}

}  // namespace

int main(int argc, char** argv) {
  const std::string mode = argc > 1 ? argv[1] : "";
  try {
    if (mode == "project" && argc == 5) {
      const auto opened = open(argv[2]);
      evs::EventStore& store = *opened;
      shop::ShopStats stats;
      evs::ProjectionEngine engine(store);
      evs::ProjectionOptions po;
      po.database = argv[3];
      po.partitions = std::stoul(argv[4]);
      po.batch_size = 250;
      engine.add(stats, po);
      engine.start();
      const std::uint64_t last = store.last_position().value();
      auto r = engine.wait_for(shop::ShopStats::name, last, std::chrono::seconds(120));
      if (!r) {
        std::fprintf(stderr, "projection_child: wait_for(%llu) failed: %s\n", static_cast<unsigned long long>(last),
                     r.error().what().c_str());
        return 3;
      }
      engine.stop();
      std::printf("caught-up %llu\n", static_cast<unsigned long long>(last));
      return 0;
    }
    if (mode == "work" && (argc == 7 || argc == 8)) {
      sigset_t term;
      sigemptyset(&term);
      sigaddset(&term, SIGTERM);
      pthread_sigmask(SIG_BLOCK, &term, nullptr);  // before the engine's threads start: they inherit it
      const auto opened = open(argv[2]);
      shop::ShopStats stats;
      std::unique_ptr<shop::OrderMailer> mailer;  // outlive the engine
      std::unique_ptr<shop::OrderWatch> watch;
      evs::ProjectionEngine engine(*opened);
      evs::ProjectionOptions po;
      po.database = argv[3];
      po.partitions = std::stoul(argv[4]);
      po.batch_size = 100;
      po.node = argv[5];
      po.lease = std::chrono::milliseconds(std::stol(argv[6]));
      engine.add(stats, po);
      // With EFFECTS_FILE: an effect handler and a process manager run under the same claims.
      if (argc == 8) {
        mailer = std::make_unique<shop::OrderMailer>(argv[7]);
        engine.add(*mailer, po);
        watch = std::make_unique<shop::OrderWatch>(*opened);
        watch->attach(engine, po);
      }
      engine.start();
      std::printf("working\n");  // set up: the claims table exists
      std::fflush(stdout);
      int signal = 0;
      sigwait(&term, &signal);
      std::uint64_t fenced = 0;
      for (const auto& h : engine.health()) {
        fenced += h.fenced;
        if (!h.last_error.empty())
          std::fprintf(stderr, "projection_child %s: %s: %s\n", argv[5], h.name.c_str(), h.last_error.c_str());
      }
      if (watch && !watch->last_timer_error().empty())
        std::fprintf(stderr, "projection_child %s: deadline timers: %s\n", argv[5], watch->last_timer_error().c_str());
      engine.stop();
      std::printf("fenced %llu\n", static_cast<unsigned long long>(fenced));
      return 0;
    }
    if (mode == "append" && argc == 4) {
      const auto opened = open(argv[2]);
      evs::EventStore& store = *opened;
      const evs::EventData e = shop::make(shop::OrderPlaced{argv[3], "cross-process", 4242});
      auto r = store.append(argv[3], evs::ExpectedVersion::any(), {&e, 1});
      if (!r) {
        std::fprintf(stderr, "projection_child: append failed: %s\n", r.error().what().c_str());
        return 3;
      }
      std::printf("%llu\n", static_cast<unsigned long long>(r->last_position));
      return 0;
    }
  } catch (const std::exception& x) {
    std::fprintf(stderr, "projection_child: %s\n", x.what());
    return 4;
  }
  std::fprintf(stderr, "usage: projection_child project STORE READMODEL PARTITIONS | append STORE STREAM\n");
  return 2;
}
