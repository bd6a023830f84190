// One libpq connection, RAII (internal: the libpq layer of the PostgreSQL backend; see docs/postgresql.md).
//
// A PgConnection owns a PGconn and a cache of named prepared statements. It is used by one thread at a time;
// callers serialize access. Every call is blocking and returns a Result: failures are mapped by pg_error.hpp
// (server errors by SQLSTATE, with the server's message; a lost or impossible connection as
// errc::unavailable).
//
// Broken connections: a call that finds the connection lost (an error libpq made up itself, i.e. one without
// a SQLSTATE; PQstatus bad after the call; or a SQLSTATE that ends the session: class 08, 57P01/57P02/57P03)
// returns unavailable and marks the connection broken. Every
// later call returns unavailable at once, without touching the network, until reconnect() succeeds. The
// outcome of the statement that was running when the connection broke is unknown (a COMMIT may or may not
// have happened): callers that must know re-check, or retry idempotently.
#pragma once

#include <libpq-fe.h>

#include <chrono>
#include <cstddef>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>

#include "evs/core/error.hpp"
#include "pg_error.hpp"
#include "pg_params.hpp"
#include "pg_result.hpp"

namespace evs::pg {

// Session settings of every connection evs makes. Keywords in the connection string take precedence over
// connect_timeout, tcp_user_timeout and application_name here; the two server-side timeouts are SET after
// each (re)connect.
struct PgConnectOptions {
  // How long one connection attempt may take (libpq connect_timeout: whole seconds, rounded up, at least 2).
  // Zero waits indefinitely.
  std::chrono::milliseconds connect_timeout{std::chrono::seconds(10)};
  // statement_timeout: a statement running longer is canceled (errc::timed_out). Zero: no limit.
  std::chrono::milliseconds statement_timeout{0};
  // idle_in_transaction_session_timeout: an idle open transaction holds every reader back (the fence in
  // docs/postgresql.md), so the server ends such sessions. Zero: no limit.
  std::chrono::milliseconds idle_in_transaction_timeout{std::chrono::seconds(60)};
  // TCP only: keepalives plus tcp_user_timeout notice a vanished server instead of waiting forever.
  std::chrono::milliseconds tcp_user_timeout{std::chrono::seconds(30)};
  std::string application_name = "evs";
  // The schema unqualified table names resolve to (SET search_path after each (re)connect); empty: the
  // server's default.
  std::string search_path;
  // SET enable_seqscan = off and plan_cache_mode = force_generic_plan: for sessions whose statements all
  // have an index to use (the writers). Their prepared statements are planned once, with indexes: a plan
  // made while a table was nearly empty would otherwise keep scanning the whole table once it has grown, and
  // the server would re-plan a statement whose custom plans it judges cheaper at every run (a tenth of a
  // millisecond per append on the group's read).
  bool index_plans = false;
};

// `name` as a quoted SQL identifier ("my schema" -> "\"my schema\""), safe to splice into SQL text.
std::string quote_identifier(std::string_view name);

// How a statement's rows come back: binary (PgResult's typed accessors) or PostgreSQL's text form.
enum class ResultFormat : int { text = 0, binary = 1 };

class PgConnection {
 public:
  // Connects to `conninfo` (a postgresql:// URI or "key=value ..." string). A malformed string gives
  // invalid_argument with libpq's reason; a server that cannot be reached, refuses the session or fails it
  // gives unavailable (libpq does not expose a SQLSTATE for a failed connection, so a wrong database name or
  // password is reported the same way; its message says which). Messages never contain a password.
  static Result<PgConnection> connect(std::string_view conninfo, const PgConnectOptions& options = {});

  PgConnection();
  ~PgConnection();  // closes the connection (PQfinish)
  PgConnection(PgConnection&& other) noexcept;
  PgConnection& operator=(PgConnection&& other) noexcept;
  PgConnection(const PgConnection&) = delete;
  PgConnection& operator=(const PgConnection&) = delete;

  // Runs `sql`, which may hold several statements and takes no parameters (BEGIN, DDL, SET). The rows of a
  // query are discarded. Stops at the first failing statement; when several statements run outside a
  // transaction block, they run as one implicit transaction (PostgreSQL's simple query protocol).
  Result<void> exec(std::string_view sql, std::string_view action);

  // Runs one statement with $1.. parameters (PQexecParams, unnamed: parsed and planned on every call).
  // Results are in binary format (PgResult) unless `format` asks for text. Use for SQL whose text varies; prefer prepared() otherwise.
  Result<PgResult> query(std::string_view sql, const PgParams& params, std::string_view action,
                         ResultFormat format = ResultFormat::binary);

  // As query(), through a named prepared statement ("evs_<n>") cached by SQL text and parameter types:
  // prepared on first use, then executed by name. The cache is emptied by reconnect() (a new session has no
  // prepared statements). `sql` must hold one statement.
  Result<PgResult> prepared(std::string_view sql, const PgParams& params, std::string_view action,
                            ResultFormat format = ResultFormat::binary);

  // One statement of a pipeline(): `sql` with `params` (none when null), through the prepared-statement cache
  // unless `prepare` is false. `may_fail`: a statement whose failure does not fail the pipeline, e.g. a
  // notification after a COMMIT. Such statements come last, and an explicit COMMIT must end the ones
  // before them: until the sync, statements outside BEGIN/COMMIT share one implicit transaction.
  struct Statement {
    std::string_view sql;
    const PgParams* params = nullptr;
    bool prepare = true;
    ResultFormat format = ResultFormat::binary;
    bool may_fail = false;
  };
  // Runs `statements` in order in one round trip (libpq pipeline mode, one sync at the end) and returns
  // their results in order. When one fails, PostgreSQL skips the rest: the first failure is returned (a
  // transaction open on the connection is then aborted on the server, as after a failed query()). When only
  // `may_fail` statements failed, or their transaction's commit at the sync, or the connection was lost
  // while they ran, the results are returned with theirs all empty (and the connection broken, in the last
  // case: the next call finds it so). A lost connection anywhere else is the pipeline's failure, also after
  // the last result: the commit of an implicit transaction happens at the sync.
  // Statements new to the prepared-statement cache are prepared first, one round trip each.
  Result<std::vector<PgResult>> pipeline(std::span<const Statement> statements, std::string_view action);

  // Whether the connection is known to be lost (a call found it so, or PQstatus says so). A broken
  // connection answers every call with unavailable until reconnect().
  bool broken() const;

  // Closes the session and connects again with the same parameters (PQreset), re-applies the session
  // settings and forgets the prepared statements. Works on a healthy connection too (a fresh session).
  // unavailable while the server cannot be reached; the connection stays broken then, and reconnect() may be
  // called again later.
  Result<void> reconnect(std::string_view action);

  // The socket, for waiting on notifications; -1 when there is no connection.
  int socket() const;
  // What the connection points at, for messages ("database evs_test on /run/pg:5432 as evs").
  const std::string& target() const;
  // The number of statements in the prepared-statement cache.
  std::size_t prepared_count() const;
  // The server's backend process id (pg_backend_pid()), 0 without a connection.
  int backend_pid() const;

  PGconn* handle() const;

 private:
  struct State;
  explicit PgConnection(std::unique_ptr<State> state);

  // Turns a finished call's PGresult into a PgResult or the mapped error, marking the connection broken
  // when the failure means it is lost.
  Result<PgResult> check(PGresult* result, std::string_view action);
  // The server-side name of `sql` prepared for `params`' types, preparing it on first use.
  Result<std::string> statement_name(std::string_view sql, const PgParams& params, std::string_view action);
  Result<void> apply_session_settings(std::string_view action);
  Error broken_error(std::string_view action) const;

  std::unique_ptr<State> state_;
};

}  // namespace evs::pg
