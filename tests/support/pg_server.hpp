// The PostgreSQL server the tests use: EVS_PG_URL (`./dev test` starts a throwaway cluster and sets it).
// Without it, a test that needs the server prints the skip marker and stops; ctest reports it as Skipped
// (SKIP_REGULAR_EXPRESSION in tests/CMakeLists.txt), never as passed. With EVS_REQUIRE_PG=1 (CI) a missing
// server fails the test instead.
#pragma once

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <random>
#include <stdexcept>
#include <string>

#include <libpq-fe.h>
#include <unistd.h>

#include <doctest/doctest.h>

namespace evs::test {

// The marker ctest looks for.
inline constexpr const char* pg_skip_marker = "evs-test-skipped: needs a PostgreSQL server (EVS_PG_URL)";

// The server's URL; skips (or, with EVS_REQUIRE_PG=1, fails) the running test without one.
inline std::string pg_url() {
  const char* url = std::getenv("EVS_PG_URL");
  if (url != nullptr && *url != '\0') return url;
  const char* require = std::getenv("EVS_REQUIRE_PG");
  if (require != nullptr && std::string(require) == "1") FAIL("EVS_REQUIRE_PG=1 but EVS_PG_URL is not set");
  std::fprintf(stdout, "%s\n", pg_skip_marker);
  std::fflush(stdout);
  throw std::runtime_error(pg_skip_marker);
}

// Runs `sql` (no parameters) on its own connection; throws std::runtime_error with the server's message.
inline void pg_exec(const std::string& url, const std::string& sql) {
  PGconn* c = PQconnectdb(url.c_str());
  std::string error;
  if (PQstatus(c) != CONNECTION_OK) {
    error = PQerrorMessage(c);
  } else {
    PQsetNoticeProcessor(c, [](void*, const char*) {}, nullptr);
    PGresult* r = PQexec(c, sql.c_str());
    if (PQresultStatus(r) != PGRES_COMMAND_OK && PQresultStatus(r) != PGRES_TUPLES_OK) error = PQerrorMessage(c);
    PQclear(r);
  }
  PQfinish(c);
  if (!error.empty()) throw std::runtime_error(sql + ": " + error);
}

// A fresh schema on the test server, dropped (with everything in it) on destruction.
class PgSchema {
 public:
  PgSchema() : url_(pg_url()) {
    static std::atomic<int> counter{0};
    name_ = "t" + std::to_string(::getpid()) + "_" + std::to_string(counter++) + "_" +
            std::to_string(std::random_device{}() % 100000);
  }
  ~PgSchema() {
    try {
      pg_exec(url_, "DROP SCHEMA IF EXISTS \"" + name_ + "\" CASCADE");
    } catch (...) {
    }
  }
  PgSchema(const PgSchema&) = delete;
  PgSchema& operator=(const PgSchema&) = delete;

  const std::string& url() const { return url_; }
  const std::string& name() const { return name_; }

 private:
  std::string url_;
  std::string name_;
};

}  // namespace evs::test
