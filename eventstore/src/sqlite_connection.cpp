#include "sqlite_connection.hpp"

#include <algorithm>
#include <cassert>
#include <cerrno>
#include <limits>

namespace evs::sqlite {
namespace {

struct Mapping {
  errc code;
  std::string_view advice;
};

bool out_of_space(int system_errno) {
  return system_errno == ENOSPC || system_errno == EFBIG
#ifdef EDQUOT
         || system_errno == EDQUOT
#endif
      ;
}

Mapping map_code(int rc, Access access, int system_errno) {
  if ((rc & 0xff) == SQLITE_IOERR && out_of_space(system_errno)) rc = SQLITE_FULL;
  switch (rc & 0xff) {
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
      return {errc::database_locked,
              "the database is locked by another connection or process for longer than the busy timeout; "
              "retry later, or stop the process that holds the lock"};
    case SQLITE_READONLY:
      return {errc::read_only,
              "the file or its directory cannot be written; check their permissions (WAL mode also creates "
              "the -wal and -shm files next to it), or open the store read-only"};
    case SQLITE_CANTOPEN:
      if (access == Access::write)
        return {errc::read_only,
                "the file (or its -wal/-shm companions) cannot be created or opened for writing; check that "
                "the directory exists and is writable, or open the store read-only"};
      return {errc::io_error, "the file cannot be opened; check that it exists and is readable"};
    case SQLITE_FULL:
      return {errc::disk_full,
              "the disk or quota is full; nothing of the failed write was stored; free space and retry"};
    case SQLITE_TOOBIG:
      return {errc::invalid_argument,
              "a value is larger than the store accepts (SQLite's length limit); nothing of it was stored"};
    case SQLITE_NOTADB:
      return {errc::not_an_evs_database,
              "the file is not a SQLite database, so not an evs store; check the path"};
    case SQLITE_CORRUPT:
      return {errc::io_error,
              "the database file is corrupt; restore it from a backup (the sqlite3 shell's .recover command "
              "may salvage its contents)"};
    case SQLITE_IOERR:
      return {errc::io_error, "an I/O error occurred; check the disk and the file system"};
    default:
      return {errc::io_error, "unexpected SQLite failure"};
  }
}

std::string_view db_path(sqlite3* db) {
  const char* name = db != nullptr ? sqlite3_db_filename(db, "main") : nullptr;
  return name != nullptr ? std::string_view(name) : std::string_view("(unknown database)");
}

// "file:<path>?immutable=1" with the characters that are special in a URI path percent-encoded.
std::string immutable_uri(const std::string& path) {
  std::string uri = "file:";
  for (const char c : path) {
    if (c == '%' || c == '?' || c == '#' || static_cast<unsigned char>(c) < 0x20) {
      constexpr char hex[] = "0123456789ABCDEF";
      const auto u = static_cast<unsigned char>(c);
      uri += '%';
      uri += hex[u >> 4];
      uri += hex[u & 0xf];
    } else {
      uri += c;
    }
  }
  return uri + "?immutable=1";
}

}  // namespace

Error sqlite_error(int rc, std::string_view sqlite_message, std::string_view path, std::string_view action,
                   Access access, int system_errno) {
  const Mapping m = map_code(rc, access, system_errno);
  std::string message;
  message.reserve(action.size() + path.size() + m.advice.size() + sqlite_message.size() + 40);
  message.append(action).append(" ").append(path).append(": ").append(m.advice);
  message.append(" (sqlite: ")
      .append(sqlite_message)
      .append(", code ")
      .append(std::to_string(rc))
      .append(")");
  return {m.code, std::move(message)};
}

// ---- Statement
// ----------------------------------------------------------------------------------------------

Statement::~Statement() { sqlite3_finalize(stmt_); }

Statement::Statement(Statement&& other) noexcept
    : stmt_(std::exchange(other.stmt_, nullptr)), access_(other.access_) {}

Statement& Statement::operator=(Statement&& other) noexcept {
  if (this != &other) {
    sqlite3_finalize(stmt_);
    stmt_ = std::exchange(other.stmt_, nullptr);
    access_ = other.access_;
  }
  return *this;
}

void Statement::reset() noexcept {
  sqlite3_reset(stmt_);
  sqlite3_clear_bindings(stmt_);
  bind_rc_ = SQLITE_OK;
  bind_index_ = 0;
}

void Statement::check_bind(int rc, int index) noexcept {
  if (rc != SQLITE_OK && bind_rc_ == SQLITE_OK) {
    bind_rc_ = rc;
    bind_index_ = index;
  }
}

void Statement::bind(int index, std::int64_t value) { check_bind(sqlite3_bind_int64(stmt_, index, value), index); }

void Statement::bind_text(int index, std::string_view text) {
  // A null data pointer would bind NULL: bind an empty string instead. The 64-bit call takes the size
  // unnarrowed; SQLite answers SQLITE_TOOBIG above its length limit.
  check_bind(sqlite3_bind_text64(stmt_, index, text.empty() ? "" : text.data(), text.size(), SQLITE_TRANSIENT,
                                 SQLITE_UTF8),
             index);
}

void Statement::bind_blob(int index, std::string_view bytes) {
  // sqlite3_bind_blob with no data binds NULL; an empty payload must stay an (empty) blob.
  check_bind(bytes.empty() ? sqlite3_bind_zeroblob(stmt_, index, 0)
                           : sqlite3_bind_blob64(stmt_, index, bytes.data(), bytes.size(), SQLITE_TRANSIENT),
             index);
}

void Statement::bind_null(int index) { check_bind(sqlite3_bind_null(stmt_, index), index); }

void Statement::bind_text_or_null(int index, std::string_view text) {
  if (text.empty())
    bind_null(index);
  else
    bind_text(index, text);
}

Result<bool> Statement::step(std::string_view action) {
  sqlite3* db = sqlite3_db_handle(stmt_);
  if (bind_rc_ != SQLITE_OK) {
    const std::string why = "binding parameter " + std::to_string(bind_index_) + " failed: " +
                            sqlite3_errstr(bind_rc_);
    return sqlite_error(bind_rc_, why, db_path(db), action, access_);
  }
  const int rc = sqlite3_step(stmt_);
  if (rc == SQLITE_ROW) return true;
  if (rc == SQLITE_DONE) return false;
  return sqlite_error(rc, sqlite3_errmsg(db), db_path(db), action, access_, sqlite3_system_errno(db));
}

Result<void> Statement::run(std::string_view action) {
  for (;;) {
    auto row = step(action);
    if (!row) return row.error();
    if (!*row) return {};
  }
}

// ---- Connection
// ---------------------------------------------------------------------------------------------

Connection::State::~State() {
  statements.clear();  // finalize before closing
  sqlite3_close_v2(db);
}

Result<Connection> Connection::open(const std::filesystem::path& path, Access access,
                                    std::chrono::milliseconds busy_timeout, bool immutable) {
  Connection connection;
  connection.state_ = std::make_unique<State>();
  State& state = *connection.state_;
  state.path = path.string();
  state.access = access;

  immutable = immutable && access == Access::read;
  const int flags =
      SQLITE_OPEN_NOMUTEX | (immutable ? SQLITE_OPEN_URI : 0) |
      (access == Access::write ? SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE : SQLITE_OPEN_READONLY);
  const std::string name = immutable ? immutable_uri(state.path) : state.path;
  const int rc = sqlite3_open_v2(name.c_str(), &state.db, flags, nullptr);
  if (rc != SQLITE_OK) {
    const char* message = state.db != nullptr ? sqlite3_errmsg(state.db) : sqlite3_errstr(rc);
    return sqlite_error(rc, message, state.path, "open", access);
  }
  sqlite3_extended_result_codes(state.db, 1);
  const auto timeout_ms =
      std::clamp<std::chrono::milliseconds::rep>(busy_timeout.count(), 0, std::numeric_limits<int>::max());
  sqlite3_busy_timeout(state.db, static_cast<int>(timeout_ms));
  // SQLite silently falls back to read-only when a read-write open hits a file it cannot write.
  if (access == Access::write && sqlite3_db_readonly(state.db, "main") == 1)
    return sqlite_error(SQLITE_READONLY, "file opened read-only", state.path, "open", access);
  return connection;
}

Result<void> Connection::exec(std::string_view sql, std::string_view action) {
  const std::string text(sql);
  char* message = nullptr;
  const int rc = sqlite3_exec(state_->db, text.c_str(), nullptr, nullptr, &message);
  if (rc == SQLITE_OK) return {};
  Error error = sqlite_error(rc, message != nullptr ? message : sqlite3_errstr(rc), state_->path, action,
                             state_->access, sqlite3_system_errno(state_->db));
  sqlite3_free(message);
  return error;
}

Result<StatementScope> Connection::cached(std::string_view sql, std::string_view action) {
  auto it = state_->statements.find(sql);
  if (it == state_->statements.end()) {
    if (sql.size() > static_cast<std::size_t>(std::numeric_limits<int>::max()))
      return sqlite_error(SQLITE_TOOBIG, "the SQL text is too long", state_->path, action, state_->access);
    sqlite3_stmt* stmt = nullptr;
    const char* tail = nullptr;
    const int rc = sqlite3_prepare_v3(state_->db, sql.data(), static_cast<int>(sql.size()),
                                      SQLITE_PREPARE_PERSISTENT, &stmt, &tail);
    if (rc != SQLITE_OK) return error(rc, action);
    Statement statement(stmt, state_->access);
    if (auto single = only_whitespace_after(tail, sql, action); !single) return single.error();
    it = state_->statements.emplace(std::string(sql), std::move(statement)).first;
  }
  it->second.reset();
  return StatementScope(it->second);
}

Result<void> Connection::only_whitespace_after(const char* tail, std::string_view sql,
                                               std::string_view action) {
  const std::size_t used = tail != nullptr ? static_cast<std::size_t>(tail - sql.data()) : sql.size();
  if (used >= sql.size()) return {};
  // Preparing the rest tells a comment or whitespace (no statement) from a second statement.
  sqlite3_stmt* next = nullptr;
  const std::string_view rest = sql.substr(used);
  const int rc = sqlite3_prepare_v2(state_->db, rest.data(), static_cast<int>(rest.size()), &next, nullptr);
  sqlite3_finalize(next);
  if (rc == SQLITE_OK && next == nullptr) return {};
  std::string second(rest.substr(std::min(rest.find_first_not_of(" \t\r\n"), rest.size())));
  if (second.size() > 80) second = second.substr(0, 77) + "...";
  return Error{errc::invalid_argument, std::string(action) + " " + state_->path +
                                           ": the SQL holds more than one statement, but only one runs per call; "
                                           "run each statement on its own (the second one: " + second + ")"};
}

Error Connection::error(int rc, std::string_view action) const {
  return sqlite_error(rc, sqlite3_errmsg(state_->db), state_->path, action, state_->access,
                      sqlite3_system_errno(state_->db));
}

// ---- Transaction
// --------------------------------------------------------------------------------------------

Result<Transaction> Transaction::begin(Connection& connection, Mode mode, std::string_view action) {
  auto statement = connection.cached(mode == Mode::immediate ? "BEGIN IMMEDIATE" : "BEGIN", action);
  if (!statement) return statement.error();
  if (auto ran = (*statement)->run(action); !ran) return ran.error();
  return Transaction(connection);
}

Transaction::~Transaction() { rollback(); }

Result<void> Transaction::commit(std::string_view action) {
  auto statement = connection_->cached("COMMIT", action);
  if (!statement) return statement.error();
  if (auto ran = (*statement)->run(action); !ran) return ran.error();
  connection_ = nullptr;
  return {};
}

void Transaction::rollback() noexcept {
  Connection* connection = std::exchange(connection_, nullptr);
  // Some errors (SQLITE_FULL, IOERR, ...) make SQLite roll back by itself: then no transaction is active.
  if (connection == nullptr || sqlite3_get_autocommit(connection->handle()) != 0) return;
  sqlite3_exec(connection->handle(), "ROLLBACK", nullptr, nullptr, nullptr);
}

}  // namespace evs::sqlite
