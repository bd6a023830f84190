// What the tests that run projection_child processes share: starting, waiting for and killing them, and
// where the store and the read model live (SQLite files, or two schemas of the PostgreSQL test server) with
// how the read model is checked against the log.
#pragma once

#include "projection_test_support.hpp"

#include "../support/child_process.hpp"
#include "../support/temp_dir.hpp"
#ifdef EVS_TEST_POSTGRESQL
#include "../support/pg_server.hpp"
#endif

#include <evs/eventstore/open_store.hpp>
#include <evs/eventstore/sqlite_event_store.hpp>

#include <doctest/doctest.h>

#include <chrono>
#include <csignal>
#include <functional>
#include <memory>
#include <string>
#include <sys/wait.h>
#include <thread>
#include <vector>

namespace evs::test {

// The store at `location`: a SQLite file (Durability::normal, as the children open it) or a PostgreSQL schema.
inline std::unique_ptr<EventStore> open_test_store(const std::string& location) {
  if (parse_store_location(location).value().backend != StoreBackend::sqlite) return open_store(location);
  SqliteOptions o;
  o.path = location;
  o.durability = Durability::normal;
  return std::make_unique<SqliteEventStore>(o);
}

inline ChildProcess spawn_projection_child(std::vector<std::string> args) {
  return spawn_child(EVS_PROJECTION_CHILD, std::move(args));
}

// Waits up to `limit` for the child to exit on its own. Returns true with its status, or false if still running.
inline bool wait_exit(pid_t pid, std::chrono::milliseconds limit, int& status) {
  const auto deadline = std::chrono::steady_clock::now() + limit;
  for (;;) {
    const pid_t r = waitpid(pid, &status, WNOHANG);
    REQUIRE(r >= 0);
    if (r == pid) return true;
    if (std::chrono::steady_clock::now() >= deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
}

inline void kill_and_reap(pid_t pid) {
  kill(pid, SIGKILL);
  int status = 0;
  waitpid(pid, &status, 0);
}

// Where the store and the read model live, and how the test reads the read model back.
struct KillRoundsSetup {
  std::string store;
  std::string model;
  std::function<ReadModelCheck(const std::vector<LogEvent>&)> check;
  // Runs one query on the read model's database (the claims table, say); every value as text.
  std::function<Table(const std::string&)> query;
};

// Both files in a fresh temporary directory.
struct SqliteSetup {
  TempDir dir;
  KillRoundsSetup where{(dir / "events.db").string(), (dir / "read-model.db").string(),
                        [this](const std::vector<LogEvent>& log) { return check_read_model(where.model, log); },
                        [this](const std::string& sql) {
                          RawDb db(where.model);
                          return db.query(sql);
                        }};
};

#ifdef EVS_TEST_POSTGRESQL
// The store and the read model (with the checkpoints) in two schemas of the test server.
struct PgSetup {
  PgSchema store_schema, model_schema;
  KillRoundsSetup where{store_schema.location(), model_schema.location(),
                        [this](const std::vector<LogEvent>& log) {
                          PgRawDb db(model_schema.url(), model_schema.name());
                          return check_read_model_in(db, log);
                        },
                        [this](const std::string& sql) {
                          PgRawDb db(model_schema.url(), model_schema.name());
                          return db.query(sql);
                        }};
};
#endif

}  // namespace evs::test
