#include "workers.hpp"

#include "telemetry.hpp"

#include <evs/eventstore/sqlite_event_store.hpp>
#include <evs/projections/engine.hpp>

#include <sqlite3.h>

#include <csignal>
#include <cstdio>
#include <stdexcept>
#include <sys/wait.h>
#include <unistd.h>

namespace telemetry {

evs::ProjectionOptions projection_options(const std::filesystem::path& db, std::string_view name) {
  evs::ProjectionOptions o;
  o.database = std::filesystem::path(db).replace_extension("." + std::string(name) + ".db");
  o.partitions = projection_partitions;
  return o;
}

int run_worker(const std::filesystem::path& db, const std::string& node) {
  sigset_t term;
  sigemptyset(&term);
  sigaddset(&term, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &term, nullptr);  // before any thread starts: they all inherit it
  evs::SqliteEventStore store({.path = db, .durability = evs::Durability::normal});
  RoverLatest latest;
  MinuteRollups rollups(std::chrono::microseconds(400));  // as slow as in the demo
  evs::ProjectionEngine engine(store);
  for (evs::Projection* p : std::initializer_list<evs::Projection*>{&latest, &rollups}) {
    evs::ProjectionOptions o = projection_options(db, p->name());
    o.node = node;
    o.lease = worker_lease;
    engine.add(*p, o);
  }
  engine.start();
  std::printf("ready\n");
  std::fflush(stdout);
  int signal = 0;
  sigwait(&term, &signal);
  engine.stop();
  return 0;
}

WorkerProcess start_worker(const std::filesystem::path& db, const std::string& node) {
  int fds[2];
  if (pipe(fds) != 0) throw std::runtime_error("pipe failed");
  const pid_t pid = fork();
  if (pid < 0) throw std::runtime_error("fork failed");
  if (pid == 0) {
    dup2(fds[1], STDOUT_FILENO);
    close(fds[0]);
    close(fds[1]);
    const std::string self = std::filesystem::read_symlink("/proc/self/exe").string();
    execl(self.c_str(), self.c_str(), "worker", db.c_str(), node.c_str(), static_cast<char*>(nullptr));
    _exit(127);
  }
  close(fds[1]);
  char line[16] = {};
  const ssize_t n = read(fds[0], line, sizeof line - 1);
  close(fds[0]);
  if (n <= 0 || std::string(line).rfind("ready", 0) != 0) throw std::runtime_error("worker " + node + " did not start");
  return {pid, node};
}

void kill_worker(WorkerProcess& w, bool graceful) {
  if (w.pid <= 0) return;
  kill(w.pid, graceful ? SIGTERM : SIGKILL);
  int status = 0;
  waitpid(w.pid, &status, 0);
  w.pid = -1;
}

std::vector<std::string> claims_of(const std::filesystem::path& projection_db, std::string_view projection) {
  std::vector<std::string> rows;
  sqlite3* h = nullptr;
  if (sqlite3_open_v2(projection_db.c_str(), &h, SQLITE_OPEN_READONLY, nullptr) == SQLITE_OK) {
    sqlite3_stmt* st = nullptr;
    if (sqlite3_prepare_v2(h,
                           "SELECT coalesce(owner, '-') || '|' || epoch FROM evs_claims WHERE projection = ?1 AND "
                           "lease_until >= CAST((julianday('now') - 2440587.5) * 86400000000 AS INTEGER) "
                           "ORDER BY partition",
                           -1, &st, nullptr) == SQLITE_OK) {
      sqlite3_bind_text(st, 1, projection.data(), static_cast<int>(projection.size()), SQLITE_TRANSIENT);
      while (sqlite3_step(st) == SQLITE_ROW) rows.emplace_back(reinterpret_cast<const char*>(sqlite3_column_text(st, 0)));
    }
    sqlite3_finalize(st);
  }
  sqlite3_close(h);
  return rows;
}

}  // namespace telemetry
