#include "sqlite_sql_session.hpp"

namespace evs {
namespace detail {
namespace {

constexpr std::string_view action = "write the read model in";

// Prepares (cached) and binds; throws evs::Exception with the SQL in the message on any failure.
sqlite::StatementScope prepare(sqlite::Connection& c, std::string_view sql, std::initializer_list<SqlValue> params) {
  auto statement = c.cached(sql, action);
  if (!statement)
    throw Exception(Error{statement.error().code, statement.error().message + " in SQL: " + std::string(sql)});
  sqlite3_stmt* st = (*statement)->handle();
  const int expected = sqlite3_bind_parameter_count(st);
  if (expected != static_cast<int>(params.size()))
    throw Exception(errc::invalid_argument, "SQL expects " + std::to_string(expected) + " parameters, got " +
                                                std::to_string(params.size()) + ": " + std::string(sql));
  int index = 1;
  for (const SqlValue& v : params) {
    int rc = SQLITE_OK;
    if (std::holds_alternative<std::nullptr_t>(v)) rc = sqlite3_bind_null(st, index);
    else if (auto* i = std::get_if<std::int64_t>(&v)) rc = sqlite3_bind_int64(st, index, *i);
    else if (auto* d = std::get_if<double>(&v)) rc = sqlite3_bind_double(st, index, *d);
    else if (auto* t = std::get_if<std::string>(&v))
      rc = sqlite3_bind_text64(st, index, t->data(), t->size(), SQLITE_TRANSIENT, SQLITE_UTF8);
    else if (auto* b = std::get_if<SqlBlob>(&v))
      rc = sqlite3_bind_blob64(st, index, b->bytes.empty() ? "" : b->bytes.data(), b->bytes.size(), SQLITE_TRANSIENT);
    if (rc != SQLITE_OK) throw Exception(c.error(rc, action));
    ++index;
  }
  return std::move(*statement);
}

SqlValue column(sqlite3_stmt* st, int i) {
  switch (sqlite3_column_type(st, i)) {
    case SQLITE_INTEGER: return sqlite3_column_int64(st, i);
    case SQLITE_FLOAT: return sqlite3_column_double(st, i);
    case SQLITE_TEXT:
      return std::string(reinterpret_cast<const char*>(sqlite3_column_text(st, i)),
                         static_cast<std::size_t>(sqlite3_column_bytes(st, i)));
    case SQLITE_BLOB: {
      const void* p = sqlite3_column_blob(st, i);
      return SqlBlob{std::string(static_cast<const char*>(p), static_cast<std::size_t>(sqlite3_column_bytes(st, i)))};
    }
    default: return nullptr;
  }
}

template <class F>
void each_row(sqlite::Connection& c, std::string_view sql, std::initializer_list<SqlValue> params, F&& f) {
  auto statement = prepare(c, sql, params);
  for (;;) {
    auto row = statement->step(action);
    if (!row) throw Exception(Error{row.error().code, row.error().message + " in SQL: " + std::string(sql)});
    if (!*row) return;
    if (!f((*statement).handle())) return;
  }
}

}  // namespace

void SqliteSqlSession::exec(std::string_view sql, std::initializer_list<SqlValue> params) {
  each_row(connection_, sql, params, [](sqlite3_stmt*) { return true; });
  changes_ = sqlite3_changes64(connection_.handle());
}

std::vector<SqlRow> SqliteSqlSession::query(std::string_view sql, std::initializer_list<SqlValue> params) {
  std::vector<SqlRow> rows;
  each_row(connection_, sql, params, [&](sqlite3_stmt* st) {
    SqlRow row;
    const int n = sqlite3_column_count(st);
    row.reserve(static_cast<std::size_t>(n));
    for (int i = 0; i < n; ++i) row.push_back(column(st, i));
    rows.push_back(std::move(row));
    return true;
  });
  return rows;
}

std::optional<SqlValue> SqliteSqlSession::scalar(std::string_view sql, std::initializer_list<SqlValue> params) {
  std::optional<SqlValue> out;
  each_row(connection_, sql, params, [&](sqlite3_stmt* st) {
    out = column(st, 0);
    return false;
  });
  return out;
}

}  // namespace detail

std::int64_t sql_int(const SqlValue& v) {
  if (auto* i = std::get_if<std::int64_t>(&v)) return *i;
  throw Exception(errc::invalid_argument, "SQL value is not an integer");
}
double sql_real(const SqlValue& v) {
  if (auto* d = std::get_if<double>(&v)) return *d;
  if (auto* i = std::get_if<std::int64_t>(&v)) return static_cast<double>(*i);
  throw Exception(errc::invalid_argument, "SQL value is not a number");
}
const std::string& sql_text(const SqlValue& v) {
  if (auto* t = std::get_if<std::string>(&v)) return *t;
  throw Exception(errc::invalid_argument, "SQL value is not text");
}
bool sql_is_null(const SqlValue& v) { return std::holds_alternative<std::nullptr_t>(v); }

}  // namespace evs
