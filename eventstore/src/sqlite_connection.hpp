// Internal RAII wrappers around the SQLite C API (not a public header: it includes sqlite3.h).
//
// Connection, Statement and Transaction are move-only handles. A Connection is used by one thread at a
// time (opened with SQLITE_OPEN_NOMUTEX); callers serialize access. Every failure is mapped to an
// evs::Error through sqlite_error(), whose messages name the database file and say what to do about it.
#pragma once

#include <sqlite3.h>

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>

#include "evs/core/error.hpp"

namespace evs::sqlite {

// Whether a failed operation was meant to write. Decides how SQLITE_CANTOPEN is reported: on a write it
// means "this file or directory cannot be written" (read_only), on a read "cannot open" (io_error).
enum class Access : std::uint8_t { read, write };

// Maps a SQLite result code (primary or extended) and SQLite's own message to an evs::Error:
//   SQLITE_BUSY, SQLITE_LOCKED            -> database_locked
//   SQLITE_READONLY, SQLITE_CANTOPEN/write -> read_only
//   SQLITE_FULL                           -> disk_full
//   SQLITE_NOTADB                         -> not_an_evs_database
//   SQLITE_TOOBIG                         -> invalid_argument (a value or row over SQLite's length limit)
//   SQLITE_CORRUPT and everything else    -> io_error
// An I/O error whose `system_errno` is ENOSPC, EDQUOT or EFBIG is disk_full too (SQLite reports some
// out-of-space writes as SQLITE_IOERR_*). `action` says what was being done ("append to", "read"); the
// message reads "<action> <path>: <explanation and advice> (sqlite: <sqlite_message>, code <rc>)".
Error sqlite_error(int rc, std::string_view sqlite_message, std::string_view path, std::string_view action,
                   Access access, int system_errno = 0);

// One prepared statement. Bind indexes are 1-based, column indexes 0-based (SQLite's conventions).
// Text and blob binds are copied by SQLite (SQLITE_TRANSIENT), so arguments need not outlive the call.
// A failed bind (a value over the connection's SQLITE_LIMIT_LENGTH, an index out of range) is remembered:
// the next step() or run() returns it instead of running the statement (invalid_argument for a value that
// is too big), so a statement never runs with a parameter that silently stayed NULL. reset() forgets it.
class Statement {
 public:
  Statement() = default;
  Statement(sqlite3_stmt* stmt, Access access) : stmt_(stmt), access_(access) {}
  ~Statement();
  Statement(Statement&& other) noexcept;
  Statement& operator=(Statement&& other) noexcept;
  Statement(const Statement&) = delete;
  Statement& operator=(const Statement&) = delete;

  // Resets the statement (ending any read it holds open) and clears all bindings.
  void reset() noexcept;

  void bind(int index, std::int64_t value);
  void bind_text(int index, std::string_view text);
  void bind_blob(int index, std::string_view bytes);
  void bind_null(int index);
  // Binds text, or NULL when `text` is empty.
  void bind_text_or_null(int index, std::string_view text);

  // Advances: true with a row available, false when done; an error maps the failure (sqlite_error), or
  // reports the first failed bind since the last reset().
  Result<bool> step(std::string_view action);
  // Runs a statement that returns no rows (or whose rows are ignored) to completion.
  Result<void> run(std::string_view action);

  // Column accessors are inline: readers call them for every column of every row.
  std::int64_t column_int64(int column) const { return sqlite3_column_int64(stmt_, column); }
  bool column_is_null(int column) const { return sqlite3_column_type(stmt_, column) == SQLITE_NULL; }
  // Views into SQLite's memory: valid until the next step(), reset() or a column access of another type.
  std::string_view column_text(int column) const {
    const auto* text = sqlite3_column_text(stmt_, column);
    if (text == nullptr) return {};
    return {reinterpret_cast<const char*>(text), static_cast<std::size_t>(sqlite3_column_bytes(stmt_, column))};
  }
  std::string_view column_blob(int column) const {
    const void* blob = sqlite3_column_blob(stmt_, column);
    if (blob == nullptr) return {};  // NULL or a zero-length blob
    return {static_cast<const char*>(blob), static_cast<std::size_t>(sqlite3_column_bytes(stmt_, column))};
  }

  sqlite3_stmt* handle() const { return stmt_; }

 private:
  void check_bind(int rc, int index) noexcept;

  sqlite3_stmt* stmt_ = nullptr;
  Access access_ = Access::read;
  int bind_rc_ = SQLITE_OK;  // the first failed bind since the last reset()
  int bind_index_ = 0;       // its parameter index
};

// A cached statement in use: reset (and its bindings cleared) when the scope ends, so a half-read SELECT
// never keeps a read transaction open.
class StatementScope {
 public:
  explicit StatementScope(Statement& statement) : statement_(&statement) {}
  ~StatementScope() {
    if (statement_ != nullptr) statement_->reset();
  }
  StatementScope(StatementScope&& other) noexcept : statement_(std::exchange(other.statement_, nullptr)) {}
  StatementScope& operator=(StatementScope&&) = delete;
  StatementScope(const StatementScope&) = delete;
  StatementScope& operator=(const StatementScope&) = delete;

  Statement* operator->() const { return statement_; }
  Statement& operator*() const { return *statement_; }

 private:
  Statement* statement_;
};

// An open database handle plus its cache of prepared statements.
class Connection {
 public:
  // Opens `path`. Access::write opens read-write and creates the file if missing; Access::read opens with
  // SQLITE_OPEN_READONLY. Sets extended result codes and `busy_timeout`. Errors as sqlite_error maps them;
  // a write open of an existing file that SQLite could only open read-only gives read_only.
  // `immutable` (reads only) opens with the URI parameter immutable=1: no locks, no -shm. Correct only when
  // nothing can change the file, e.g. a WAL store in a read-only directory without -wal/-shm files.
  static Result<Connection> open(const std::filesystem::path& path, Access access,
                                 std::chrono::milliseconds busy_timeout, bool immutable = false);

  Connection() = default;
  ~Connection() = default;  // finalizes the cached statements, then closes
  Connection(Connection&& other) noexcept = default;
  Connection& operator=(Connection&& other) noexcept = default;
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;

  // Runs one or more SQL statements that return nothing (DDL, pragmas), all of them. Not cached: for setup
  // only.
  Result<void> exec(std::string_view sql, std::string_view action);

  // The prepared statement for `sql`, prepared on first use and cached for the connection's lifetime.
  // Use for SQL with a bounded set of texts; each text is prepared once per connection.
  // `sql` must hold exactly one statement (trailing whitespace and comments are fine): SQL with a second
  // statement after the first is refused with invalid_argument instead of running only the first.
  Result<StatementScope> cached(std::string_view sql, std::string_view action);

  // Maps `rc` with this connection's current error message and path.
  Error error(int rc, std::string_view action) const;

  sqlite3* handle() const { return state_ ? state_->db : nullptr; }
  const std::string& path() const { return state_->path; }
  Access access() const { return state_->access; }

 private:
  // Ok when only whitespace or comments follow the first statement of `sql` (`tail`: where it ended).
  Result<void> only_whitespace_after(const char* tail, std::string_view sql, std::string_view action);

  struct SqlHash {
    using is_transparent = void;
    std::size_t operator()(std::string_view s) const noexcept { return std::hash<std::string_view>{}(s); }
  };
  struct State {
    sqlite3* db = nullptr;
    std::string path;
    Access access = Access::read;
    std::unordered_map<std::string, Statement, SqlHash, std::equal_to<>> statements;
    ~State();
  };
  std::unique_ptr<State> state_;
};

// A transaction on one connection: rolled back by the destructor unless commit() succeeded.
class Transaction {
 public:
  enum class Mode : std::uint8_t {
    deferred,   // BEGIN: a read transaction until the first write; used for consistent multi-statement reads
    immediate,  // BEGIN IMMEDIATE: takes the write lock now (waiting up to busy_timeout)
  };

  static Result<Transaction> begin(Connection& connection, Mode mode, std::string_view action);

  Transaction() = default;
  ~Transaction();
  Transaction(Transaction&& other) noexcept : connection_(std::exchange(other.connection_, nullptr)) {}
  Transaction& operator=(Transaction&&) = delete;
  Transaction(const Transaction&) = delete;
  Transaction& operator=(const Transaction&) = delete;

  // Commits. On failure the transaction is rolled back (by the destructor) and the mapped error returned.
  Result<void> commit(std::string_view action);
  // Rolls back now; a no-op once committed or rolled back.
  void rollback() noexcept;

 private:
  explicit Transaction(Connection& connection) : connection_(&connection) {}
  Connection* connection_ = nullptr;
};

}  // namespace evs::sqlite
