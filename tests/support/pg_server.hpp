// The PostgreSQL server the tests use: EVS_PG_URL (`./dev test` starts a throwaway cluster and sets it).
// Without it, a test that needs the server prints the skip marker and stops; ctest reports it as Skipped
// (SKIP_REGULAR_EXPRESSION in tests/CMakeLists.txt), never as passed. With EVS_REQUIRE_PG=1 (CI) a missing
// server fails the test instead.
#pragma once

#include "temp_dir.hpp"

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <random>
#include <stdexcept>
#include <string>

#include <libpq-fe.h>
#include <sys/stat.h>
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
  // `length`: the name is padded to that many bytes (63: as long as PostgreSQL allows).
  explicit PgSchema(std::size_t length = 0) : url_(pg_url()) {
    static std::atomic<int> counter{0};
    name_ = "t" + std::to_string(::getpid()) + "_" + std::to_string(counter++) + "_" +
            std::to_string(std::random_device{}() % 100000);
    if (name_.size() < length) name_.append(length - name_.size(), 'x');
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
  // As evs locations name it (open_store, ProjectionOptions::database): the URL with evs_schema=NAME.
  std::string location() const {
    return url_ + (url_.find('?') == std::string::npos ? "?" : "&") + "evs_schema=" + name_;
  }

 private:
  std::string url_;
  std::string name_;
};

// "s" quoted for sh.
inline std::string shell_quoted(const std::string& s) {
  std::string q = "'";
  for (const char c : s) q += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return q + "'";
}

// Runs a shell command and returns its standard output without trailing newlines; a failing command fails
// the test.
inline std::string run_command(const std::string& command) {
  std::string out;
  FILE* p = popen(command.c_str(), "r");
  REQUIRE(p != nullptr);
  char buffer[512];
  while (std::fgets(buffer, sizeof buffer, p) != nullptr) out += buffer;
  const int status = pclose(p);
  REQUIRE_MESSAGE(status == 0, command << " failed");
  while (!out.empty() && out.back() == '\n') out.pop_back();
  return out;
}

// A cluster of its own, started with dev-pg.sh (EVS_PG_CTL, or the script in the source tree) and stopped
// (and removed) at the end of the scope: for tests that restart or stop the server, so they never disturb
// tests sharing EVS_PG_URL. Needs a PostgreSQL installation (skipped like the others without EVS_PG_URL).
class PrivateCluster {
 public:
  PrivateCluster() {
    (void)pg_url();  // skip or fail like every PostgreSQL test when none is configured
    const char* script = std::getenv("EVS_PG_CTL");
    script_ = script != nullptr && *script != '\0' ? script : EVS_DEV_PG_SCRIPT;
    // The server may run as another user (postgres, under root): the directory must be traversable by it.
    ::chmod(dir_.path().c_str(), 0755);
    cluster_ = (dir_ / "c").string();
    url_ = run_command(shell_quoted(script_) + " start " + shell_quoted(cluster_));
    started_ = true;
  }
  ~PrivateCluster() {
    if (started_) std::system((shell_quoted(script_) + " stop " + shell_quoted(cluster_) + " >/dev/null").c_str());
  }
  PrivateCluster(const PrivateCluster&) = delete;
  PrivateCluster& operator=(const PrivateCluster&) = delete;

  const std::string& url() const { return url_; }
  // pg_ctl stop -m immediate (a crash: no shutdown checkpoint), then start again.
  void restart_immediate() { run_command(shell_quoted(script_) + " restart-immediate " + shell_quoted(cluster_)); }

 private:
  TempDir dir_;
  std::string script_;
  std::string cluster_;
  std::string url_;
  bool started_ = false;
};

}  // namespace evs::test
