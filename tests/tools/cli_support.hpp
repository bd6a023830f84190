// What the CLI tests share: running the real `evs` binary and cli_app (as `shop`) as processes and capturing
// stdout, stderr and the exit code; a small store fixture; raw SQL on the files.
#pragma once

#include "../support/result_printing.hpp"
#include "../support/temp_dir.hpp"
#include "cli_events.hpp"

#include <evs/eventstore/sqlite_event_store.hpp>

#include <doctest/doctest.h>
#include <rapidjson/document.h>
#include <sqlite3.h>

#include <chrono>
#include <csignal>
#include <filesystem>
#include <fstream>
#include <poll.h>
#include <sstream>
#include <string>
#include <sys/wait.h>
#include <thread>
#include <unistd.h>
#include <utility>
#include <vector>

namespace clitest {

inline const std::string evs_bin = EVS_CLI_BINARY;
inline const std::string shop_bin = EVS_CLI_APP;

struct Output {
  int code = -1;
  std::string out;
  std::string err;
};

// A running child process with its stdout and stderr piped back.
class Child {
 public:
  // `env`: variables set in the child only.
  Child(const std::string& binary, const std::vector<std::string>& args, const std::string& input = {},
        const std::vector<std::pair<std::string, std::string>>& env = {}) {
    int in[2], out[2], err[2];
    REQUIRE(pipe(in) == 0);
    REQUIRE(pipe(out) == 0);
    REQUIRE(pipe(err) == 0);
    pid_ = fork();
    REQUIRE(pid_ >= 0);
    if (pid_ == 0) {
      dup2(in[0], STDIN_FILENO);
      dup2(out[1], STDOUT_FILENO);
      dup2(err[1], STDERR_FILENO);
      for (int fd : {in[0], in[1], out[0], out[1], err[0], err[1]}) close(fd);
      for (const auto& [name, value] : env) setenv(name.c_str(), value.c_str(), 1);
      std::vector<char*> argv;
      argv.push_back(const_cast<char*>(binary.c_str()));
      for (const auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
      argv.push_back(nullptr);
      execv(binary.c_str(), argv.data());
      _exit(127);
    }
    close(in[0]);
    close(out[1]);
    close(err[1]);
    out_fd_ = out[0];
    err_fd_ = err[0];
    // Inputs in these tests are small (well below the pipe buffer), so writing them up front cannot block.
    if (!input.empty()) REQUIRE(write(in[1], input.data(), input.size()) == static_cast<ssize_t>(input.size()));
    close(in[1]);
  }
  ~Child() {
    if (pid_ > 0) {
      kill(pid_, SIGKILL);
      waitpid(pid_, nullptr, 0);
    }
    if (out_fd_ >= 0) close(out_fd_);
    if (err_fd_ >= 0) close(err_fd_);
  }
  Child(const Child&) = delete;
  Child& operator=(const Child&) = delete;

  void signal(int sig) { kill(pid_, sig); }

  // Reads whatever is available within `ms` milliseconds into the buffers; true while the pipes are open.
  bool pump(int ms) {
    pollfd fds[2] = {{out_fd_, POLLIN, 0}, {err_fd_, POLLIN, 0}};
    const int nfds = (out_fd_ >= 0) + (err_fd_ >= 0);
    if (nfds == 0) return false;
    pollfd* p = out_fd_ >= 0 ? fds : fds + 1;
    if (poll(p, static_cast<nfds_t>(nfds), ms) <= 0) return true;
    for (int i = 0; i < nfds; ++i) {
      if (!(p[i].revents & (POLLIN | POLLHUP | POLLERR))) continue;
      char buf[4096];
      const ssize_t n = read(p[i].fd, buf, sizeof buf);
      std::string& sink = p[i].fd == out_fd_ ? result_.out : result_.err;
      if (n > 0) {
        sink.append(buf, static_cast<std::size_t>(n));
      } else {
        close(p[i].fd);
        (p[i].fd == out_fd_ ? out_fd_ : err_fd_) = -1;
      }
    }
    return out_fd_ >= 0 || err_fd_ >= 0;
  }

  const std::string& out_so_far() const { return result_.out; }

  // Waits for the exit (killing the child after `timeout`) and returns what it printed.
  Output finish(std::chrono::milliseconds timeout = std::chrono::seconds(20)) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    while (pump(50)) {
      if (std::chrono::steady_clock::now() > deadline) {
        kill(pid_, SIGKILL);
        FAIL("the process did not exit in time; stdout so far: " << result_.out);
      }
    }
    int status = 0;
    waitpid(pid_, &status, 0);
    pid_ = -1;
    result_.code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    return result_;
  }

 private:
  pid_t pid_ = -1;
  int out_fd_ = -1;
  int err_fd_ = -1;
  Output result_;
};

inline Output run(const std::string& binary, const std::vector<std::string>& args, const std::string& input = {},
                  const std::vector<std::pair<std::string, std::string>>& env = {}) {
  Child child(binary, args, input, env);
  return child.finish();
}

inline std::vector<std::string> lines(const std::string& text) {
  std::vector<std::string> out;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) out.push_back(line);
  return out;
}

// The failure contract: nothing on stdout, exactly one line on stderr starting "<name>: error: ".
inline void check_one_line_error(const Output& r, int code, const std::string& name = "evs") {
  CAPTURE(r.out);
  CAPTURE(r.err);
  CHECK(r.code == code);
  CHECK(r.out.empty());
  REQUIRE(lines(r.err).size() == 1);
  CHECK(r.err.rfind(name + ": error: ", 0) == 0);
  CHECK(r.err.back() == '\n');
}

inline rapidjson::Document parse_json(const std::string& line) {
  rapidjson::Document doc;
  doc.Parse(line.c_str());
  CAPTURE(line);
  REQUIRE_FALSE(doc.HasParseError());
  REQUIRE(doc.IsObject());
  return doc;
}

inline std::vector<rapidjson::Document> parse_json_lines(const std::string& text) {
  std::vector<rapidjson::Document> out;
  for (const auto& l : lines(text)) out.push_back(parse_json(l));
  return out;
}

inline bool contains(const std::string& haystack, const std::string& needle) { return haystack.find(needle) != std::string::npos; }

template <class E>
inline evs::EventData binary_event(const E& e) {
  return evs::make_event_data(e);
}

inline evs::EventData raw_event(std::string type, std::string payload, evs::Encoding encoding, std::uint32_t schema = 1) {
  evs::EventData d;
  d.type = std::move(type);
  d.payload = std::move(payload);
  d.encoding = encoding;
  d.schema_version = schema;
  return d;
}

inline void append(evs::EventStore& store, const std::string& stream, std::vector<evs::EventData> events) {
  REQUIRE(store.append(stream, evs::ExpectedVersion::any(), events));
}

// A store with three streams in two categories, binary and JSON payloads, and metadata:
//   1 order-1 v1 clitest.order_placed (binary, correlation/causation/user metadata)
//   2 order-1 v2 clitest.item_added   (binary, schema 2)
//   3 order-2 v1 clitest.order_placed (JSON)
//   4 cart-9  v1 clitest.item_added   (JSON, schema 2)
//   5 order-1 v3 clitest.item_added   (binary, schema 2)
struct Fixture {
  evs::test::TempDir dir;
  std::string db = (dir / "shop.db").string();

  Fixture() {
    evs::SqliteEventStore store({db});
    auto placed = binary_event(clitest::OrderPlaced{"o-1", "alice", 1250});
    placed.metadata.correlation_id = "corr-1";
    placed.metadata.causation_id = "cmd-1";
    placed.metadata.user = {{"user", "alice"}, {"tenant", "acme"}};
    append(store, "order-1", {placed, binary_event(clitest::ItemAdded{"o-1", "SKU-1", 2})});
    append(store, "order-2",
           {raw_event("clitest.order_placed", R"({"order_id":"o-2","customer":"bob","total_cents":990})",
                      evs::Encoding::json)});
    append(store, "cart-9",
           {raw_event("clitest.item_added", R"({"order_id":"c-9","sku":"SKU-7","qty":1})", evs::Encoding::json, 2)});
    append(store, "order-1", {binary_event(clitest::ItemAdded{"o-1", "SKU-2", 5})});
  }

  std::vector<std::string> with_db(std::vector<std::string> args) const {
    args.push_back("--db");
    args.push_back(db);
    return args;
  }
};

inline void sql(const std::string& db, const std::string& statements) {
  sqlite3* c = nullptr;
  REQUIRE(sqlite3_open(db.c_str(), &c) == SQLITE_OK);
  char* error = nullptr;
  const int rc = sqlite3_exec(c, statements.c_str(), nullptr, nullptr, &error);
  CAPTURE((error ? error : ""));
  sqlite3_free(error);
  sqlite3_close(c);
  REQUIRE(rc == SQLITE_OK);
}

inline std::string sql_text(const std::string& db, const std::string& query) {
  sqlite3* c = nullptr;
  REQUIRE(sqlite3_open(db.c_str(), &c) == SQLITE_OK);
  sqlite3_stmt* st = nullptr;
  REQUIRE(sqlite3_prepare_v2(c, query.c_str(), -1, &st, nullptr) == SQLITE_OK);
  std::string out;
  if (sqlite3_step(st) == SQLITE_ROW && sqlite3_column_text(st, 0) != nullptr)
    out = reinterpret_cast<const char*>(sqlite3_column_text(st, 0));
  sqlite3_finalize(st);
  sqlite3_close(c);
  return out;
}

// The projection tables as the engine creates them (projections/src/projection_store.cpp), with two
// checkpointed projections and three dead letters of orders_by_customer.
inline void add_projection_rows(const std::string& db, const std::vector<std::string>& event_ids) {
  sql(db, R"sql(
CREATE TABLE IF NOT EXISTS evs_checkpoints (
  projection TEXT NOT NULL, partition INTEGER NOT NULL, partitions INTEGER NOT NULL, position INTEGER NOT NULL,
  updated_at INTEGER NOT NULL, PRIMARY KEY (projection, partition)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS evs_dead_letters (
  id INTEGER PRIMARY KEY, projection TEXT NOT NULL, position INTEGER NOT NULL, event_id BLOB NOT NULL,
  stream TEXT NOT NULL, type TEXT NOT NULL, error TEXT NOT NULL, attempts INTEGER NOT NULL,
  parked_at INTEGER NOT NULL, status TEXT NOT NULL DEFAULT 'parked', UNIQUE (projection, event_id));
CREATE TABLE IF NOT EXISTS evs_inbox (
  projection TEXT NOT NULL, event_id BLOB NOT NULL, processed_at INTEGER NOT NULL,
  PRIMARY KEY (projection, event_id)) WITHOUT ROWID;
INSERT INTO evs_checkpoints VALUES ('orders_by_customer', 0, 1, 3, 1767225600000000);
INSERT INTO evs_checkpoints VALUES ('mailer', 0, 2, 5, 1767225600000000);
INSERT INTO evs_checkpoints VALUES ('mailer', 1, 2, 5, 1767225601000000);
)sql");
  sql(db, "INSERT INTO evs_dead_letters (projection, position, event_id, stream, type, error, attempts, parked_at) "
          "VALUES ('orders_by_customer', 1, X'" + event_ids[0] + "', 'order-1', 'clitest.order_placed', "
          "'customer alice is blocked', 5, 1767225600000000), "
          "('orders_by_customer', 2, X'" + event_ids[1] + "', 'order-1', 'clitest.item_added', "
          "'sku SKU-1 unknown', 5, 1767225600000000), "
          "('orders_by_customer', 3, X'" + event_ids[2] + "', 'order-2', 'clitest.order_placed', "
          "'timeout', 3, 1767225600000000)");
}

inline std::vector<std::string> event_id_hex(const std::string& db) {
  evs::SqliteOptions o;
  o.path = db;
  o.read_only = true;
  evs::SqliteEventStore store(o);
  std::vector<std::string> out;
  for (const auto& e : store.read_all(1, 100).value().events) {
    std::string s = e.event_id.to_string();
    std::erase(s, '-');
    out.push_back(s);
  }
  return out;
}

}  // namespace clitest
