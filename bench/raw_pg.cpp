#include "raw_pg.hpp"

#include <endian.h>

#include <cstring>
#include <stdexcept>

namespace rawpg {

char* Params::slot() {
  if (values_.size() >= slots_.size()) throw std::logic_error("rawpg::Params: more parameters than reserved");
  return slots_[values_.size()].bytes;
}

Params& Params::add(const char* p, std::size_t n, int format, Oid type) {
  if (values_.size() >= slots_.size()) throw std::logic_error("rawpg::Params: more parameters than reserved");
  values_.push_back(p);
  lengths_.push_back(int(n));
  formats_.push_back(format);
  types_.push_back(type);
  return *this;
}

Params& Params::int64(std::int64_t v) {
  char* s = slot();
  const std::uint64_t be = htobe64(std::uint64_t(v));
  std::memcpy(s, &be, 8);
  return add(s, 8, 1, int8_oid);
}

Params& Params::int32(std::int32_t v) {
  char* s = slot();
  const std::uint32_t be = htobe32(std::uint32_t(v));
  std::memcpy(s, &be, 4);
  return add(s, 4, 1, int4_oid);
}

Params& Params::text(std::string_view t) {
  if (t.size() >= sizeof(Slot::bytes)) throw std::logic_error("rawpg::Params: text too long for a slot");
  char* s = slot();
  std::memcpy(s, t.data(), t.size());
  s[t.size()] = '\0';
  return add(s, t.size(), 0, text_oid);
}

std::int64_t Result::i64(int row, int col) const {
  const char* p = PQgetvalue(r_, row, col);
  switch (PQgetlength(r_, row, col)) {
    case 8: {
      std::uint64_t v;
      std::memcpy(&v, p, 8);
      return std::int64_t(be64toh(v));
    }
    case 4: {
      std::uint32_t v;
      std::memcpy(&v, p, 4);
      return std::int32_t(be32toh(v));
    }
    case 2: {
      std::uint16_t v;
      std::memcpy(&v, p, 2);
      return std::int16_t(be16toh(v));
    }
    default:
      throw std::runtime_error("rawpg: not an integer column");
  }
}

Conn::Conn(const std::string& url) : c_(PQconnectdb(url.c_str())) {
  if (PQstatus(c_) != CONNECTION_OK) {
    const std::string why = PQerrorMessage(c_);
    PQfinish(c_);
    c_ = nullptr;
    throw std::runtime_error("rawpg: cannot connect: " + why);
  }
}

Result Conn::check(PGresult* r, const char* what) {
  const ExecStatusType st = PQresultStatus(r);
  if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK) {
    const std::string why = r ? PQresultErrorMessage(r) : PQerrorMessage(c_);
    PQclear(r);
    throw std::runtime_error(std::string("rawpg: ") + what + ": " + why);
  }
  return Result(r);
}

void Conn::exec(const std::string& sql) { check(PQexec(c_, sql.c_str()), sql.c_str()); }

Result Conn::query(const char* sql, const Params& p) {
  return check(PQexecParams(c_, sql, p.size(), p.types(), p.values(), p.lengths(), p.formats(), 1), sql);
}

void Conn::prepare(const char* name, const std::string& sql) {
  check(PQprepare(c_, name, sql.c_str(), 0, nullptr), sql.c_str());
}

Result Conn::run(const char* name, const Params& p) {
  return check(PQexecPrepared(c_, name, p.size(), p.values(), p.lengths(), p.formats(), 1), name);
}

std::string ident(std::string_view schema) {
  std::string q = "\"";
  for (char c : schema) {
    if (c == '"') q += '"';
    q += c;
  }
  return q + "\"";
}

void drop_schema(const std::string& url, const std::string& schema) {
  Conn db(url);
  db.exec("SET client_min_messages = warning; DROP SCHEMA IF EXISTS " + ident(schema) + " CASCADE");
}

Types intern_types(Conn& db) {
  db.exec("INSERT INTO event_types (name) VALUES ('bench.deposited'), ('bench.withdrawn') ON CONFLICT DO NOTHING");
  return load_types(db);
}

Types load_types(Conn& db) {
  Types t;
  PGresult* r = PQexecParams(db.handle(), "SELECT id, name FROM event_types", 0, nullptr, nullptr, nullptr, nullptr, 1);
  Result rows(r);
  if (PQresultStatus(r) != PGRES_TUPLES_OK) throw std::runtime_error("rawpg: cannot read event_types");
  for (int i = 0; i < rows.rows(); ++i) {
    const bool deposit = rows.bytes(i, 1) == bench::deposited_type;
    const std::int64_t id = rows.i64(i, 0);
    t.kinds[id] = deposit;
    if (deposit) t.deposited = id;
    else if (rows.bytes(i, 1) == bench::withdrawn_type) t.withdrawn = id;
  }
  return t;
}

std::vector<std::string> stream_names(Conn& db) {
  PGresult* r = PQexecParams(db.handle(), "SELECT id, name FROM streams", 0, nullptr, nullptr, nullptr, nullptr, 1);
  Result rows(r);
  if (PQresultStatus(r) != PGRES_TUPLES_OK) throw std::runtime_error("rawpg: cannot read streams");
  std::vector<std::string> names;
  for (int i = 0; i < rows.rows(); ++i) {
    const auto id = std::size_t(rows.i64(i, 0));
    if (names.size() <= id) names.resize(id + 1);
    names[id] = std::string(rows.bytes(i, 1));
  }
  return names;
}

// ---- Appender -------------------------------------------------------------------------------------------

namespace {

// Parameters: $1 stream name, $2 category, $3 the stream's new version, $4 recorded_at (also the stream's
// updated_at), $5 the first event's version; then per event (id uuid, type int4, payload bytea).
std::string append_sql(std::size_t count, bool notify) {
  std::string values;
  for (std::size_t i = 0; i < count; ++i) {
    const std::size_t p = 6 + 3 * i;
    values += (i ? ", (" : "(") + std::to_string(i) + ", $" + std::to_string(p) + "::uuid, $" +
              std::to_string(p + 1) + "::int, $" + std::to_string(p + 2) + "::bytea)";
  }
  const std::string insert =
      "INSERT INTO events (position, stream, version, event_id, type, schema_version, encoding, recorded_at, "
      "correlation_id, causation_id, metadata, payload) "
      "SELECT x.base + v.i, s.id, $5::bigint + v.i, v.id, v.type, 1, 0, $4::bigint, '', '', NULL, v.payload "
      "FROM s, x, (VALUES " + values + ") AS v(i, id, type, payload)";
  std::string sql =
      "WITH s AS (INSERT INTO streams (name, category, version, updated_at) VALUES ($1::text, $2::text, $3::bigint, $4::bigint) "
      "ON CONFLICT (name) DO UPDATE SET version = excluded.version, updated_at = excluded.updated_at RETURNING id), "
      "x AS (SELECT pg_current_xact_id()::text::bigint * 1048576 AS base)";
  if (notify) sql += ", e AS (" + insert + ") SELECT pg_notify('evs_bench', '')";
  else sql += " " + insert;
  return sql;
}

// Parameters: $1 recorded_at (also the streams' updated_at); then per append (stream name, category, the
// stream's new version, event id, type, payload).
std::string group_sql(std::size_t count) {
  std::string values;
  for (std::size_t i = 0; i < count; ++i) {
    const std::size_t p = 2 + 6 * i;
    const auto arg = [&](std::size_t k, const char* type) { return "$" + std::to_string(p + k) + "::" + type; };
    values += (i ? ", (" : "(") + std::to_string(i) + ", " + arg(0, "text") + ", " + arg(1, "text") + ", " +
              arg(2, "bigint") + ", " + arg(3, "uuid") + ", " + arg(4, "int") + ", " + arg(5, "bytea") + ")";
  }
  return "WITH v(i, n, c, ver, id, type, payload) AS (VALUES " + values +
         "), s AS (INSERT INTO streams (name, category, version, updated_at) SELECT v.n, v.c, v.ver, $1::bigint FROM v "
         "ON CONFLICT (name) DO UPDATE SET version = excluded.version, updated_at = excluded.updated_at "
         "RETURNING id, name), "
         "x AS (SELECT pg_current_xact_id()::text::bigint * 1048576 AS base) "
         "INSERT INTO events (position, stream, version, event_id, type, schema_version, encoding, recorded_at, "
         "correlation_id, causation_id, metadata, payload) "
         "SELECT x.base + v.i, s.id, v.ver, v.id, v.type, 1, 0, $1::bigint, '', '', NULL, v.payload "
         "FROM v JOIN s ON s.name = v.n CROSS JOIN x";
}

}  // namespace

Appender::Appender(const std::string& url, const std::string& schema) : db_(url), params_(5 + 3 * 1024) {
  db_.exec("SET search_path = " + ident(schema));
  types_ = intern_types(db_);
}

const char* Appender::prepared(std::size_t count, bool notify) {
  const std::uint64_t key = count * 2 + (notify ? 1 : 0);
  auto it = statements_.find(key);
  if (it == statements_.end()) {
    const std::string name = "append_" + std::to_string(key);
    db_.prepare(name.c_str(), append_sql(count, notify));
    it = statements_.emplace(key, name).first;
  }
  return it->second.c_str();
}

const char* Appender::prepared_group(std::size_t count) {
  const std::uint64_t key = (std::uint64_t(1) << 40) | count;  // apart from append()'s (count, notify) keys
  auto it = statements_.find(key);
  if (it == statements_.end()) {
    const std::string name = "group_" + std::to_string(count);
    db_.prepare(name.c_str(), group_sql(count));
    it = statements_.emplace(key, name).first;
  }
  return it->second.c_str();
}

void Appender::append_group(const std::vector<std::string>& streams, std::int64_t seq) {
  const std::size_t count = streams.size();
  if (count == 0 || 1 + 6 * count > 5 + 3 * 1024) throw std::invalid_argument("rawpg::Appender: 1..512 streams");
  const char* statement = prepared_group(count);
  payloads_.resize(std::max(payloads_.size(), count));
  ids_.resize(std::max(ids_.size(), count));
  const bench::Movement m = bench::movement(seq);
  params_.clear();
  params_.int64(raw::now_us());
  for (std::size_t i = 0; i < count; ++i) {
    const std::string& stream = streams[i];
    raw::encode_movement(payloads_[i], stream, m.cents, m.seq);
    gen_.fill(ids_[i].data());
    params_.text(stream).text(std::string_view(stream).substr(0, stream.find('-')));
    params_.int64(versions_[stream] + 1).uuid(ids_[i].data());
    params_.int32(std::int32_t(m.deposit ? types_.deposited : types_.withdrawn)).bytes(payloads_[i]);
  }
  db_.run(statement, params_);
  for (const std::string& stream : streams) ++versions_[stream];
}

void Appender::append(const std::string& stream, std::int64_t first_seq, std::size_t count, bool notify) {
  if (count == 0 || 5 + 3 * count > 5 + 3 * 1024) throw std::invalid_argument("rawpg::Appender: 1..1024 events");
  const char* statement = prepared(count, notify);
  std::int64_t& version = versions_[stream];
  payloads_.resize(std::max(payloads_.size(), count));
  ids_.resize(std::max(ids_.size(), count));
  const std::int64_t at = raw::now_us();
  params_.clear();
  params_.text(stream).text(std::string_view(stream).substr(0, stream.find('-')));
  params_.int64(version + std::int64_t(count)).int64(at).int64(version + 1);
  for (std::size_t i = 0; i < count; ++i) {
    const bench::Movement m = bench::movement(first_seq + std::int64_t(i));
    raw::encode_movement(payloads_[i], stream, m.cents, m.seq);
    gen_.fill(ids_[i].data());
    params_.uuid(ids_[i].data());
    params_.int32(std::int32_t(m.deposit ? types_.deposited : types_.withdrawn)).bytes(payloads_[i]);
  }
  db_.run(statement, params_);
  version += std::int64_t(count);
}

}  // namespace rawpg
