// Maps PostgreSQL failures to evs::Error (internal: the libpq layer of the PostgreSQL backend).
//
// Two kinds of failure reach callers:
//   - the server answered with an error (a SQLSTATE): server_error() maps its class to an errc and keeps the
//     server's own message;
//   - the connection could not be made or was lost (no answer, or an answer that ends the session):
//     connection_error() gives errc::unavailable. The caller's next step is PgConnection::reconnect().
// Messages name the target (database, host, port, user; never a password) and what was being done, and end
// with the server's or libpq's words: "<action> <target>: <explanation and advice> (postgresql: <message>,
// SQLSTATE <code>)".
#pragma once

#include <string>
#include <string_view>

#include "evs/core/error.hpp"

namespace evs::pg {

// The fields of a server-reported error (PQresultErrorField), as views into the PGresult that carried them.
struct ServerError {
  std::string_view sqlstate;    // five characters, e.g. "23505"; empty when libpq made up the error itself
  std::string_view primary;     // the server's primary message
  std::string_view detail;      // the DETAIL line, often empty
  std::string_view constraint;  // the violated constraint's name, for integrity errors; else empty
};

// The errc a SQLSTATE maps to:
//   class 08 (connection exception), 57P01 admin shutdown, 57P02 crash shutdown, 57P03 cannot connect now,
//   53300 too many connections                                    -> unavailable
//   23505 unique violation                                         -> duplicate_event (a key already stored)
//   53100 disk full                                                -> disk_full
//   25006 read-only transaction (a hot standby)                    -> read_only
//   57014 query canceled (statement_timeout)                       -> timed_out
//   anything else (syntax, other constraints, serialization, ...)  -> io_error
errc errc_for_sqlstate(std::string_view sqlstate) noexcept;

// Whether a SQLSTATE means the session is over or the server cannot serve it (the unavailable ones above).
bool sqlstate_means_unavailable(std::string_view sqlstate) noexcept;

// The error for a server-reported failure, mapped by errc_for_sqlstate. `target` is Target::describe()'s
// text, `action` what was being done ("append to", "read").
Error server_error(const ServerError& error, std::string_view target, std::string_view action);

// errc::unavailable for a connection that could not be made or was lost; `libpq_message` is
// PQerrorMessage's text (trailing newlines are dropped).
Error connection_error(std::string_view libpq_message, std::string_view target, std::string_view action);

// Where a connection points, for messages: "database evs_test on /run/pg:5432 as evs". Never holds a
// password.
struct Target {
  std::string database;
  std::string host;
  std::string port;
  std::string user;

  std::string describe() const;
};

}  // namespace evs::pg
