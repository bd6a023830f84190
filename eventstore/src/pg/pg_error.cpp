#include "pg_error.hpp"

namespace evs::pg {
namespace {

std::string_view trim_trailing_space(std::string_view s) {
  while (!s.empty() && (s.back() == '\n' || s.back() == ' ' || s.back() == '\r')) s.remove_suffix(1);
  return s;
}

std::string_view advice_for(errc code, std::string_view sqlstate) {
  switch (code) {
    case errc::unavailable:
      return "the database server is down, restarting or refusing connections; reconnect and retry";
    case errc::duplicate_event:
      return "a row with the same unique key is already stored; nothing of the failed statement was stored";
    case errc::disk_full:
      return "the server's disk is full; nothing of the failed statement was stored; free space and retry";
    case errc::read_only:
      return "the server accepts no writes (a hot standby or a read-only transaction); connect to the primary";
    case errc::timed_out:
      return "the statement was canceled (statement_timeout or a cancel request); nothing of it was stored";
    default:
      break;
  }
  if (sqlstate.starts_with("42")) return "the server refused the SQL (syntax or a missing object)";
  if (sqlstate.starts_with("23")) return "the statement violates a constraint; nothing of it was stored";
  if (sqlstate.starts_with("40")) return "the transaction was rolled back by the server (serialization failure or deadlock); retry it";
  return "the server reported an error";
}

}  // namespace

bool sqlstate_means_unavailable(std::string_view sqlstate) noexcept {
  return sqlstate.starts_with("08") || sqlstate == "57P01" || sqlstate == "57P02" || sqlstate == "57P03" ||
         sqlstate == "53300";
}

errc errc_for_sqlstate(std::string_view sqlstate) noexcept {
  if (sqlstate_means_unavailable(sqlstate)) return errc::unavailable;
  if (sqlstate == "23505") return errc::duplicate_event;
  if (sqlstate == "53100") return errc::disk_full;
  if (sqlstate == "25006") return errc::read_only;
  if (sqlstate == "57014") return errc::timed_out;
  return errc::io_error;
}

Error server_error(const ServerError& error, std::string_view target, std::string_view action) {
  const errc code = errc_for_sqlstate(error.sqlstate);
  std::string message;
  message.append(action).append(" ").append(target).append(": ").append(advice_for(code, error.sqlstate));
  message.append(" (postgresql: ").append(trim_trailing_space(error.primary));
  if (!error.detail.empty()) message.append("; ").append(trim_trailing_space(error.detail));
  if (!error.constraint.empty()) message.append("; constraint ").append(error.constraint);
  if (!error.sqlstate.empty()) message.append(", SQLSTATE ").append(error.sqlstate);
  message.append(")");
  return {code, std::move(message)};
}

Error connection_error(std::string_view libpq_message, std::string_view target, std::string_view action) {
  std::string message;
  message.append(action).append(" ").append(target).append(": ").append(advice_for(errc::unavailable, {}));
  const std::string_view said = trim_trailing_space(libpq_message);
  message.append(" (libpq: ").append(said.empty() ? std::string_view("no connection to the server") : said);
  message.append(")");
  return {errc::unavailable, std::move(message)};
}

std::string Target::describe() const {
  std::string s = "database " + (database.empty() ? std::string("(default)") : database) + " on ";
  s += host.empty() ? std::string("(default host)") : host;
  if (!port.empty()) s += ":" + port;
  if (!user.empty()) s += " as " + user;
  return s;
}

}  // namespace evs::pg
