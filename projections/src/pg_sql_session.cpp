#include "pg_sql_session.hpp"

#include <charconv>
#include <cmath>
#include <cstdlib>

namespace evs::detail {
namespace {

constexpr std::string_view action = "write the read model in";

bool digit(char c) { return c >= '0' && c <= '9'; }

std::string hex_decode(std::string_view text) {  // bytea's text form: \x0a0b...
  std::string out;
  if (text.size() < 2 || text[0] != '\\' || text[1] != 'x') return std::string(text);
  auto nibble = [](char c) { return c <= '9' ? c - '0' : (c | 0x20) - 'a' + 10; };
  for (std::size_t i = 2; i + 1 < text.size(); i += 2)
    out.push_back(static_cast<char>((nibble(text[i]) << 4) | nibble(text[i + 1])));
  return out;
}

SqlValue convert(const pg::PgResult& r, int row, int col) {
  if (r.is_null(row, col)) return nullptr;
  const std::string_view text = r.text(row, col);
  switch (r.column_type(col)) {
    case 16: return std::int64_t{text == "t" ? 1 : 0};  // bool
    case 20:
    case 21:
    case 23: {  // int8, int2, int4
      std::int64_t v = 0;
      std::from_chars(text.data(), text.data() + text.size(), v);
      return v;
    }
    case 700:
    case 701: return std::strtod(std::string(text).c_str(), nullptr);  // float4, float8
    case 1700: {  // numeric: sum() of integers is numeric on PostgreSQL, an integer on SQLite
      std::int64_t v = 0;
      const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
      if (ec == std::errc() && end == text.data() + text.size()) return v;
      return std::strtod(std::string(text).c_str(), nullptr);
    }
    case 17: return SqlBlob{hex_decode(text)};  // bytea
    default: return std::string(text);
  }
}

}  // namespace

PgSql to_pg_parameters(std::string_view sql) {
  PgSql out;
  out.text.reserve(sql.size() + 8);
  int next = 0;  // a bare ? takes the index after the largest so far, as in SQLite
  for (std::size_t i = 0; i < sql.size();) {
    const char c = sql[i];
    if (c == '\'' || c == '"') {  // a quoted string or identifier; a doubled quote stays inside
      std::size_t j = i + 1;
      for (; j < sql.size(); ++j)
        if (sql[j] == c) {
          if (j + 1 < sql.size() && sql[j + 1] == c) {
            ++j;
            continue;
          }
          break;
        }
      const std::size_t end = std::min(j + 1, sql.size());
      out.text.append(sql.substr(i, end - i));
      i = end;
    } else if (c == '-' && i + 1 < sql.size() && sql[i + 1] == '-') {
      const std::size_t end = std::min(sql.find('\n', i), sql.size());
      out.text.append(sql.substr(i, end - i));
      i = end;
    } else if (c == '/' && i + 1 < sql.size() && sql[i + 1] == '*') {
      const std::size_t close = sql.find("*/", i + 2);
      const std::size_t end = close == std::string_view::npos ? sql.size() : close + 2;
      out.text.append(sql.substr(i, end - i));
      i = end;
    } else if (c == '?') {
      std::size_t j = i + 1;
      while (j < sql.size() && digit(sql[j])) ++j;
      int index = 0;
      if (j > i + 1) {
        std::from_chars(sql.data() + i + 1, sql.data() + j, index);
      } else {
        index = next + 1;
      }
      next = std::max(next, index);
      out.parameters = std::max(out.parameters, index);
      out.text.append("$").append(std::to_string(index));
      i = j;
    } else {
      out.text.push_back(c);
      ++i;
    }
  }
  return out;
}

pg::PgResult PgSqlSession::run(std::string_view sql, std::initializer_list<SqlValue> params) {
  auto it = rewritten_.find(std::string(sql));
  if (it == rewritten_.end()) it = rewritten_.emplace(std::string(sql), to_pg_parameters(sql)).first;
  const PgSql& statement = it->second;
  if (statement.parameters != static_cast<int>(params.size()))
    throw Exception(errc::invalid_argument, "SQL expects " + std::to_string(statement.parameters) +
                                                " parameters, got " + std::to_string(params.size()) + ": " +
                                                std::string(sql));
  pg::PgParams p;
  for (const SqlValue& v : params) {
    if (std::holds_alternative<std::nullptr_t>(v)) p.null();
    else if (auto* i = std::get_if<std::int64_t>(&v)) p.int64(*i);
    else if (auto* d = std::get_if<double>(&v)) p.float64(*d);
    else if (auto* t = std::get_if<std::string>(&v)) p.text(*t);
    else if (auto* b = std::get_if<SqlBlob>(&v)) p.bytes(b->bytes);
  }
  auto r = connection_.prepared(statement.text, p, action, pg::ResultFormat::text);
  if (!r) {
    Error e = r.error();
    // Class 42 (syntax error, unknown table or column, a second statement) is bad SQL, as on SQLite.
    if (e.message.find("SQLSTATE 42") != std::string::npos) e.code = make_error_code(errc::invalid_argument);
    e.message += " in SQL: " + std::string(sql);
    throw Exception(std::move(e));
  }
  return std::move(*r);
}

void PgSqlSession::exec(std::string_view sql, std::initializer_list<SqlValue> params) {
  const pg::PgResult r = run(sql, params);
  changes_ = r.affected_rows();
}

std::vector<SqlRow> PgSqlSession::query(std::string_view sql, std::initializer_list<SqlValue> params) {
  const pg::PgResult r = run(sql, params);
  std::vector<SqlRow> rows;
  rows.reserve(static_cast<std::size_t>(r.rows()));
  for (int row = 0; row < r.rows(); ++row) {
    SqlRow out;
    out.reserve(static_cast<std::size_t>(r.columns()));
    for (int col = 0; col < r.columns(); ++col) out.push_back(convert(r, row, col));
    rows.push_back(std::move(out));
  }
  return rows;
}

std::optional<SqlValue> PgSqlSession::scalar(std::string_view sql, std::initializer_list<SqlValue> params) {
  const pg::PgResult r = run(sql, params);
  if (r.rows() == 0 || r.columns() == 0) return std::nullopt;
  return convert(r, 0, 0);
}

}  // namespace evs::detail
