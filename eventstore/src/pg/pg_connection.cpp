#include "pg_connection.hpp"

#include <algorithm>
#include <cassert>
#include <optional>
#include <utility>
#include <vector>

namespace evs::pg {
namespace {

struct SqlHash {
  using is_transparent = void;
  std::size_t operator()(std::string_view s) const noexcept { return std::hash<std::string_view>{}(s); }
};

// One prepared statement: the parameter types it was prepared with, and its server-side name.
struct Prepared {
  std::vector<Oid> types;
  std::string name;
};

std::string_view field(const PGresult* result, int code) {
  const char* value = result != nullptr ? PQresultErrorField(result, code) : nullptr;
  return value != nullptr ? std::string_view(value) : std::string_view();
}

// libpq's connect_timeout: whole seconds, where 1 behaves as 2; "0" waits indefinitely.
std::string connect_timeout_seconds(std::chrono::milliseconds timeout) {
  if (timeout <= std::chrono::milliseconds::zero()) return "0";
  const auto seconds = std::chrono::ceil<std::chrono::seconds>(timeout).count();
  return std::to_string(std::max<std::int64_t>(seconds, 2));
}

Target target_of(const PGconn* conn) {
  auto text = [](const char* s) { return s != nullptr ? std::string(s) : std::string(); };
  return {text(PQdb(conn)), text(PQhost(conn)), text(PQport(conn)), text(PQuser(conn))};
}

}  // namespace

struct PgConnection::State {
  PGconn* conn = nullptr;
  PgConnectOptions options;
  std::string target;
  bool broken = false;
  std::unordered_map<std::string, std::vector<Prepared>, SqlHash, std::equal_to<>> statements;
  std::uint64_t next_statement = 0;

  ~State() { PQfinish(conn); }
};

PgConnection::PgConnection() = default;
PgConnection::PgConnection(std::unique_ptr<State> state) : state_(std::move(state)) {}
PgConnection::~PgConnection() = default;
PgConnection::PgConnection(PgConnection&& other) noexcept = default;
PgConnection& PgConnection::operator=(PgConnection&& other) noexcept = default;

Result<PgConnection> PgConnection::connect(std::string_view conninfo, const PgConnectOptions& options) {
  const std::string info(conninfo);
  char* parse_error = nullptr;
  PQconninfoOption* parsed = PQconninfoParse(info.c_str(), &parse_error);
  if (parsed == nullptr) {
    std::string reason = parse_error != nullptr ? parse_error : "out of memory";
    PQfreemem(parse_error);
    while (!reason.empty() && reason.back() == '\n') reason.pop_back();
    return Error{errc::invalid_argument, "connect to PostgreSQL: the connection string is malformed (libpq: " +
                                             reason + ")"};
  }
  PQconninfoFree(parsed);

  // Keywords are applied in order and the last occurrence wins: evs's defaults first, then the expanded
  // connection string (dbname with expand_dbname), so the string's own settings take precedence.
  const std::string timeout = connect_timeout_seconds(options.connect_timeout);
  const std::string user_timeout = std::to_string(options.tcp_user_timeout.count());
  const char* keywords[] = {"connect_timeout", "application_name", "keepalives",       "keepalives_idle",
                            "keepalives_interval", "keepalives_count", "tcp_user_timeout", "dbname",
                            nullptr};
  const char* values[] = {timeout.c_str(), options.application_name.c_str(), "1", "30", "10", "3",
                          user_timeout.c_str(), info.c_str(), nullptr};
  auto state = std::make_unique<State>();
  state->conn = PQconnectdbParams(keywords, values, 1);
  if (state->conn == nullptr) throw std::bad_alloc();
  state->options = options;
  state->target = target_of(state->conn).describe();
  if (PQstatus(state->conn) != CONNECTION_OK)
    return connection_error(PQerrorMessage(state->conn), state->target, "connect to");
  // Server notices (WARNING, NOTICE) are not failures, and a library does not write to stderr: drop them.
  // The processor survives PQreset.
  PQsetNoticeProcessor(state->conn, [](void*, const char*) {}, nullptr);

  PgConnection connection(std::move(state));
  if (auto r = connection.apply_session_settings("connect to"); !r) return r.error();
  return connection;
}

std::string quote_identifier(std::string_view name) {
  std::string out = "\"";
  for (const char c : name) {
    if (c == '"') out.push_back('"');
    out.push_back(c);
  }
  out.push_back('"');
  return out;
}

Result<void> PgConnection::apply_session_settings(std::string_view action) {
  std::string sql = "SET statement_timeout = " + std::to_string(state_->options.statement_timeout.count()) +
                          "; SET idle_in_transaction_session_timeout = " +
                          std::to_string(state_->options.idle_in_transaction_timeout.count());
  if (!state_->options.search_path.empty()) sql += "; SET search_path TO " + quote_identifier(state_->options.search_path);
  if (state_->options.index_plans) sql += "; SET enable_seqscan = off; SET plan_cache_mode = force_generic_plan";
  return exec(sql, action);
}

bool PgConnection::broken() const {
  return state_ == nullptr || state_->broken || PQstatus(state_->conn) != CONNECTION_OK;
}

Error PgConnection::broken_error(std::string_view action) const {
  if (state_ == nullptr) return {errc::unavailable, std::string(action) + " PostgreSQL: no connection"};
  return connection_error(PQerrorMessage(state_->conn), state_->target, action);
}

Result<PgResult> PgConnection::check(PGresult* raw, std::string_view action) {
  PgResult result(raw);
  const ExecStatusType status = raw != nullptr ? PQresultStatus(raw) : PGRES_FATAL_ERROR;
  if (status == PGRES_COMMAND_OK || status == PGRES_TUPLES_OK || status == PGRES_EMPTY_QUERY) return result;

  const std::string_view sqlstate = field(raw, PG_DIAG_SQLSTATE);
  if (sqlstate.empty() && status != PGRES_FATAL_ERROR && PQstatus(state_->conn) == CONNECTION_OK) {
    // A result status evs never asks for (COPY, a pipeline state): a programming error, not a lost session.
    return Error{errc::io_error, std::string(action) + " " + state_->target + ": unexpected result status " +
                                     PQresStatus(status)};
  }
  // Every error the server sends carries a SQLSTATE; an error without one was made up by libpq: the
  // connection failed (or memory ran out). PQstatus does not always say so yet: after a failed write
  // ("server closed the connection unexpectedly") it stays CONNECTION_OK until the next call.
  const bool lost =
      sqlstate.empty() || PQstatus(state_->conn) != CONNECTION_OK || sqlstate_means_unavailable(sqlstate);
  if (lost) state_->broken = true;
  if (sqlstate.empty()) {
    const std::string_view message = raw != nullptr && *PQresultErrorMessage(raw) != '\0'
                                         ? PQresultErrorMessage(raw)
                                         : PQerrorMessage(state_->conn);
    return connection_error(message, state_->target, action);
  }
  Error error = server_error({sqlstate, field(raw, PG_DIAG_MESSAGE_PRIMARY), field(raw, PG_DIAG_MESSAGE_DETAIL),
                              field(raw, PG_DIAG_CONSTRAINT_NAME)},
                             state_->target, action);
  if (lost) error.code = make_error_code(errc::unavailable);  // e.g. a FATAL the session did not survive
  return error;
}

Result<void> PgConnection::exec(std::string_view sql, std::string_view action) {
  if (broken()) return broken_error(action);
  const std::string text(sql);
  auto r = check(PQexec(state_->conn, text.c_str()), action);
  if (!r) return r.error();
  return {};
}

Result<PgResult> PgConnection::query(std::string_view sql, const PgParams& params, std::string_view action,
                                     ResultFormat format) {
  if (broken()) return broken_error(action);
  if (params.oversized() != 0)
    return Error{errc::invalid_argument, std::string(action) + " " + state_->target + ": parameter $" +
                                             std::to_string(params.oversized()) +
                                             " is larger than PostgreSQL's 1 GB field limit; nothing was sent"};
  const std::string text(sql);
  return check(PQexecParams(state_->conn, text.c_str(), params.size(), params.types(), params.values(),
                            params.lengths(), params.formats(), static_cast<int>(format)),
               action);
}

Result<std::string> PgConnection::statement_name(std::string_view sql, const PgParams& params,
                                                 std::string_view action) {
  const Oid* types = params.types();
  const std::size_t n = static_cast<std::size_t>(params.size());
  auto same_types = [&](const Prepared& p) { return p.types.size() == n && std::equal(p.types.begin(), p.types.end(), types); };
  auto it = state_->statements.find(sql);
  if (it != state_->statements.end()) {
    const auto found = std::find_if(it->second.begin(), it->second.end(), same_types);
    if (found != it->second.end()) return found->name;
  }
  std::string name = "evs_" + std::to_string(state_->next_statement++);
  const std::string text(sql);
  auto r = check(PQprepare(state_->conn, name.c_str(), text.c_str(), params.size(), types), action);
  if (!r) return r.error();
  if (it == state_->statements.end()) it = state_->statements.emplace(text, std::vector<Prepared>{}).first;
  it->second.push_back({std::vector<Oid>(types, types + n), name});
  return name;
}

Result<PgResult> PgConnection::prepared(std::string_view sql, const PgParams& params, std::string_view action,
                                        ResultFormat format) {
  if (broken()) return broken_error(action);
  if (params.oversized() != 0) return query(sql, params, action, format);  // the same refusal, nothing prepared
  auto name = statement_name(sql, params, action);
  if (!name) return name.error();
  return check(PQexecPrepared(state_->conn, name->c_str(), params.size(), params.values(), params.lengths(),
                              params.formats(), static_cast<int>(format)),
               action);
}

Result<std::vector<PgResult>> PgConnection::pipeline(std::span<const Statement> statements, std::string_view action) {
  if (broken()) return broken_error(action);
  static const PgParams none;
  std::vector<std::string> names(statements.size());
  for (std::size_t i = 0; i < statements.size(); ++i) {
    const PgParams& params = statements[i].params ? *statements[i].params : none;
    if (params.oversized() != 0) {  // the same refusal as query()
      auto refused = query(statements[i].sql, params, action);
      return refused.error();
    }
    if (!statements[i].prepare) continue;
    auto name = statement_name(statements[i].sql, params, action);
    if (!name) return name.error();
    names[i] = std::move(*name);
  }
  // The statements that may fail form the pipeline's tail, from `tail` on.
  std::size_t tail = statements.size();
  while (tail > 0 && statements[tail - 1].may_fail) --tail;
  for (std::size_t i = 0; i < tail; ++i)
    if (statements[i].may_fail)
      return Error{errc::invalid_argument, std::string(action) + " " + state_->target +
                                               ": a pipeline statement that may fail must follow every one that "
                                               "may not"};
  PGconn* conn = state_->conn;
  // A send that fails means the connection did; the session is dropped (a reconnect starts a fresh one).
  const auto lost = [&]() -> Error {
    state_->broken = true;
    return connection_error(PQerrorMessage(conn), state_->target, action);
  };
  if (PQenterPipelineMode(conn) != 1) return lost();
  for (std::size_t i = 0; i < statements.size(); ++i) {
    const Statement& st = statements[i];
    const PgParams& params = st.params ? *st.params : none;
    const int sent =
        st.prepare ? PQsendQueryPrepared(conn, names[i].c_str(), params.size(), params.values(), params.lengths(),
                                         params.formats(), static_cast<int>(st.format))
                   : PQsendQueryParams(conn, std::string(st.sql).c_str(), params.size(), params.types(),
                                       params.values(), params.lengths(), params.formats(), static_cast<int>(st.format));
    if (sent != 1) return lost();
  }
  if (PQpipelineSync(conn) != 1) return lost();

  std::vector<PgResult> results;
  results.reserve(statements.size());
  std::optional<Error> failure;
  // The tail failed (or its transaction's commit at the sync did): its results are dropped. What came before
  // it stands, since an explicit COMMIT ended it (see the header).
  const auto drop_tail = [&]() -> Result<std::vector<PgResult>> {
    results.resize(tail);
    results.resize(statements.size());
    return std::move(results);
  };
  // The connection was lost while reading statement `at`'s result (statements.size(): the sync's).
  const auto lost_at = [&](std::size_t at) -> Result<std::vector<PgResult>> {
    Error error = lost();
    if (failure) return *failure;
    if (tail == statements.size() || at < tail) return error;
    return drop_tail();
  };
  for (std::size_t i = 0; i < statements.size(); ++i) {
    PGresult* raw = PQgetResult(conn);
    if (raw == nullptr) return lost_at(i);
    if (PQresultStatus(raw) == PGRES_PIPELINE_ABORTED) {  // skipped after an earlier failure
      PQclear(raw);
      results.emplace_back();
    } else {
      auto r = check(raw, action);
      const bool ok = r.has_value();
      if (!ok && !failure && i < tail) failure = r.error();
      results.push_back(ok ? std::move(*r) : PgResult());
      if (broken()) return lost_at(ok ? i + 1 : i);
    }
    if (PGresult* extra = PQgetResult(conn); extra != nullptr) {  // each statement's results end with a null
      PQclear(extra);
      return lost_at(i + 1);
    }
  }
  // Then the sync. An error before it is the commit of the last implicit transaction failing (a server
  // error: the session goes on), or the connection.
  std::optional<Error> at_sync;
  for (int nulls = 0;;) {
    PGresult* raw = PQgetResult(conn);
    if (raw == nullptr) {
      if (++nulls > 1) return lost_at(statements.size());
      continue;
    }
    nulls = 0;
    if (PQresultStatus(raw) == PGRES_PIPELINE_SYNC) {
      PQclear(raw);
      break;
    }
    auto r = check(raw, action);
    if (broken()) return lost_at(statements.size());
    if (!r && !at_sync) at_sync = r.error();
  }
  if (PQexitPipelineMode(conn) != 1) return lost_at(statements.size());
  if (failure) return *failure;
  if (at_sync) {
    if (tail == statements.size()) return *at_sync;
    return drop_tail();
  }
  return results;
}

Result<void> PgConnection::reconnect(std::string_view action) {
  if (state_ == nullptr) return broken_error(action);
  state_->statements.clear();  // the new session has none of the old one's prepared statements
  PQreset(state_->conn);
  if (PQstatus(state_->conn) != CONNECTION_OK) {
    state_->broken = true;
    return connection_error(PQerrorMessage(state_->conn), state_->target, action);
  }
  state_->broken = false;
  state_->target = target_of(state_->conn).describe();
  return apply_session_settings(action);
}

int PgConnection::socket() const { return state_ != nullptr ? PQsocket(state_->conn) : -1; }

const std::string& PgConnection::target() const {
  static const std::string none = "(no connection)";
  return state_ != nullptr ? state_->target : none;
}

std::size_t PgConnection::prepared_count() const {
  if (state_ == nullptr) return 0;
  std::size_t n = 0;
  for (const auto& [sql, versions] : state_->statements) n += versions.size();
  return n;
}

int PgConnection::backend_pid() const { return state_ != nullptr ? PQbackendPID(state_->conn) : 0; }

PGconn* PgConnection::handle() const { return state_ != nullptr ? state_->conn : nullptr; }

}  // namespace evs::pg
