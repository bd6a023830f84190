#include "store_sql.hpp"

#include "sql.hpp"

#ifdef EVS_HAS_POSTGRESQL
#include "pg/pg_connection.hpp"
#endif

#include <optional>
#include <string>

namespace evs::cli {

std::int64_t StoreSql::scalar(std::string_view sql, const Params& params) {
  std::int64_t value = 0;
  bool first = true;
  each(sql, params, [&](const SqlRow& row) {
    if (first) value = row.is_null(0) ? 0 : row.integer(0);
    first = false;
  });
  return value;
}

bool StoreSql::has_table(std::string_view name) {
  const std::string_view sql = postgres() ? "SELECT count(*) FROM information_schema.tables WHERE table_schema = "
                                            "current_schema() AND table_name = $1"
                                          : "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = $1";
  return scalar(sql, {SqlParam::text(name)}) > 0;
}

namespace {

constexpr std::string_view action = "read";

class SqliteSql final : public StoreSql {
 public:
  explicit SqliteSql(sqlite::Connection c) : c_(std::move(c)) {}

  bool postgres() const override { return false; }

  void each(std::string_view sql, const Params& params, const std::function<void(const SqlRow&)>& row) override {
    auto st = must(c_.cached(sql, action));
    bind(*st, params);
    const Row r{*st};
    while (must(st->step(action))) row(r);
  }

  std::uint64_t change(std::string_view sql, const Params& params) override {
    auto st = must(c_.cached(sql, "change"));
    bind(*st, params);
    must(st->run("change"));
    return static_cast<std::uint64_t>(sqlite3_changes(c_.handle()));
  }

  void begin_read() override { tx_.emplace(must(sqlite::Transaction::begin(c_, sqlite::Transaction::Mode::deferred, action))); }
  void end_read() override { tx_.reset(); }

 private:
  struct Row final : SqlRow {
    explicit Row(const sqlite::Statement& s) : st(s) {}
    std::int64_t integer(int column) const override { return st.column_int64(column); }
    std::string_view text(int column) const override {
      return sqlite3_column_type(st.handle(), column) == SQLITE_BLOB ? st.column_blob(column) : st.column_text(column);
    }
    bool is_null(int column) const override { return st.column_is_null(column); }
    const sqlite::Statement& st;
  };

  // $N is a named parameter to SQLite: bind each by its name (a statement may leave some out).
  static void bind(sqlite::Statement& st, const Params& params) {
    int n = 0;
    for (const SqlParam& p : params) {
      const std::string name = "$" + std::to_string(++n);
      const int index = sqlite3_bind_parameter_index(st.handle(), name.c_str());
      if (index == 0) continue;
      switch (p.kind) {
        case SqlParam::Kind::text: st.bind_text(index, p.bytes); break;
        case SqlParam::Kind::integer: st.bind(index, p.integer); break;
        case SqlParam::Kind::uuid: st.bind_blob(index, p.bytes); break;
      }
    }
  }

  sqlite::Connection c_;
  std::optional<sqlite::Transaction> tx_;
};

#ifdef EVS_HAS_POSTGRESQL
class PgSql final : public StoreSql {
 public:
  explicit PgSql(pg::PgConnection c) : c_(std::move(c)) {}

  bool postgres() const override { return true; }

  void each(std::string_view sql, const Params& params, const std::function<void(const SqlRow&)>& row) override {
    const pg::PgResult result = must(c_.prepared(sql, bind(params), action));
    for (int i = 0; i < result.rows(); ++i) row(Row{result, i});
  }

  std::uint64_t change(std::string_view sql, const Params& params) override {
    const pg::PgResult result = must(c_.prepared(sql, bind(params), "change"));
    return static_cast<std::uint64_t>(result.affected_rows());
  }

  void begin_read() override { must(c_.exec("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY", action)); }
  void end_read() override { must(c_.exec("ROLLBACK", action)); }

 private:
  struct Row final : SqlRow {
    Row(const pg::PgResult& r, int i) : result(r), row(i) {}
    std::int64_t integer(int column) const override { return result.int64(row, column); }
    std::string_view text(int column) const override { return result.text(row, column); }
    bool is_null(int column) const override { return result.is_null(row, column); }
    const pg::PgResult& result;
    int row;
  };

  static pg::PgParams bind(const Params& params) {
    pg::PgParams p;
    for (const SqlParam& param : params) {
      switch (param.kind) {
        case SqlParam::Kind::text: p.text(param.bytes); break;
        case SqlParam::Kind::integer: p.int64(param.integer); break;
        case SqlParam::Kind::uuid: p.binary(param.bytes, pg::uuid_oid); break;
      }
    }
    return p;
  }

  pg::PgConnection c_;
};
#endif

}  // namespace

std::unique_ptr<StoreSql> open_store_sql(const Context& ctx, bool writable) {
  ctx.location();  // --db is required
  return open_sql_at(ctx, ctx.db, writable);
}

std::unique_ptr<StoreSql> open_sql_at(const Context& ctx, const std::string& where, bool writable) {
  const StoreLocation location = parse_location("the database", where);
  if (location.backend == StoreBackend::sqlite)
    return std::make_unique<SqliteSql>(open_sql(location.target, writable ? sqlite::Access::write : sqlite::Access::read));
#ifdef EVS_HAS_POSTGRESQL
  pg::PgConnectOptions options;
  options.search_path = location.schema;
  options.application_name = ctx.app.name;
  return std::make_unique<PgSql>(must(pg::PgConnection::connect(location.target, options)));
#else
  throw Failure("this " + ctx.app.name + " was built without the PostgreSQL backend (configure evs with EVS_POSTGRESQL=ON)");
#endif
}

}  // namespace evs::cli
