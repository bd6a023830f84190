// ReadModelDb on a SQLite file: copies are files next to it ("<database>.rebuild-<name>"), the swap runs
// under the live file's write lock (BEGIN IMMEDIATE), so the live engine's next batch waits for it while
// readers keep reading (WAL).
#include "read_model_db.hpp"

#include <sqlite3.h>

#include <filesystem>
#include <vector>

namespace evs::cli {
namespace {

// A raw connection for the swap and the comparison (the engine's own connections are internal).
class Db {
 public:
  explicit Db(const std::string& path) {
    if (sqlite3_open_v2(path.c_str(), &db_, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, nullptr) != SQLITE_OK) {
      const std::string msg = db_ ? sqlite3_errmsg(db_) : "out of memory";
      sqlite3_close(db_);
      throw Failure("cannot open " + path + ": " + msg);
    }
    sqlite3_busy_timeout(db_, 10000);
  }
  ~Db() { sqlite3_close(db_); }
  Db(const Db&) = delete;
  Db& operator=(const Db&) = delete;

  void exec(const std::string& sql) {
    char* msg = nullptr;
    if (sqlite3_exec(db_, sql.c_str(), nullptr, nullptr, &msg) != SQLITE_OK) {
      std::string text = msg ? msg : "unknown error";
      sqlite3_free(msg);
      throw Failure(text + " (in: " + sql.substr(0, 120) + ")");
    }
  }
  sqlite3* handle() const { return db_; }

  // Calls f(stmt) for each row of `sql` with text parameters bound in order.
  template <class F>
  void each(const std::string& sql, const std::vector<std::string>& params, F&& f) {
    sqlite3_stmt* st = nullptr;
    if (sqlite3_prepare_v2(db_, sql.c_str(), -1, &st, nullptr) != SQLITE_OK)
      throw Failure(std::string(sqlite3_errmsg(db_)) + " (in: " + sql + ")");
    for (std::size_t i = 0; i < params.size(); ++i)
      sqlite3_bind_text(st, static_cast<int>(i + 1), params[i].c_str(), -1, SQLITE_TRANSIENT);
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) f(st);
    sqlite3_finalize(st);
    if (rc != SQLITE_DONE) throw Failure(std::string(sqlite3_errmsg(db_)) + " (in: " + sql + ")");
  }

 private:
  sqlite3* db_ = nullptr;
};

std::string quote_identifier(const std::string& name) {
  std::string q = "\"";
  for (char c : name) q += c == '"' ? std::string("\"\"") : std::string(1, c);
  return q + "\"";
}

// The projection's own tables in a database: every table but evs_* and sqlite_*, with its SQL.
std::vector<std::pair<std::string, std::string>> projection_tables(Db& db, const std::string& schema) {
  std::vector<std::pair<std::string, std::string>> out;
  db.each("SELECT name, sql FROM " + schema +
              ".sqlite_master WHERE type = 'table' AND name NOT LIKE 'evs\\_%' ESCAPE '\\' "
              "AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\' ORDER BY name",
          {}, [&](sqlite3_stmt* st) {
            out.emplace_back(reinterpret_cast<const char*>(sqlite3_column_text(st, 0)),
                             reinterpret_cast<const char*>(sqlite3_column_text(st, 1)));
          });
  return out;
}

bool has_table(Db& db, const std::string& schema, const std::string& table) {
  bool found = false;
  db.each("SELECT 1 FROM " + schema + ".sqlite_master WHERE type = 'table' AND name = ?1", {table},
          [&](sqlite3_stmt*) { found = true; });
  return found;
}

// Row count and the sum of per-row FNV-1a hashes.
TableSummary summarize(Db& db, const std::string& schema, const std::string& table) {
  TableSummary s;
  if (!has_table(db, schema, table)) return s;
  s.exists = true;
  std::uint64_t sum = 0;
  db.each("SELECT * FROM " + schema + "." + quote_identifier(table), {}, [&](sqlite3_stmt* st) {
    std::uint64_t h = 14695981039346656037ULL;
    const auto mix = [&](const void* p, std::size_t n) {
      for (std::size_t i = 0; i < n; ++i) h = (h ^ static_cast<const unsigned char*>(p)[i]) * 1099511628211ULL;
    };
    for (int c = 0; c < sqlite3_column_count(st); ++c) {
      const int type = sqlite3_column_type(st, c);
      mix(&type, sizeof type);
      if (type == SQLITE_INTEGER) {
        const auto v = sqlite3_column_int64(st, c);
        mix(&v, sizeof v);
      } else if (type == SQLITE_FLOAT) {
        const auto v = sqlite3_column_double(st, c);
        mix(&v, sizeof v);
      } else if (type != SQLITE_NULL) {
        const void* p = type == SQLITE_BLOB ? sqlite3_column_blob(st, c) : sqlite3_column_text(st, c);
        mix(p, static_cast<std::size_t>(sqlite3_column_bytes(st, c)));
      }
    }
    ++s.rows;
    sum += h;
  });
  char hex[17];
  std::snprintf(hex, sizeof hex, "%llx", static_cast<unsigned long long>(sum));
  s.checksum = hex;
  return s;
}

std::uint64_t stored_checkpoint(Db& db, const std::string& schema, const std::string& projection, bool furthest) {
  if (!has_table(db, schema, "evs_checkpoints")) return 0;
  std::uint64_t position = 0;
  bool any = false;
  db.each(std::string("SELECT ") + (furthest ? "max" : "min") + "(position), count(*) FROM " + schema +
              ".evs_checkpoints WHERE projection = ?1",
          {projection}, [&](sqlite3_stmt* st) {
            any = sqlite3_column_int64(st, 1) > 0;
            position = static_cast<std::uint64_t>(sqlite3_column_int64(st, 0));
          });
  return any ? position : 0;
}

// Replaces the projection's tables in `live` by those of `copy`, and its checkpoints, inside the
// transaction open on `live`. Rows are copied through bound values, so the copy need not be attached.
void swap_tables(Db& live, Db& copy, const std::string& projection) {
  const auto copy_rows = [&](const std::string& table, const std::string& where, const std::vector<std::string>& params) {
    sqlite3_stmt* insert = nullptr;
    int columns = 0;
    copy.each("SELECT * FROM " + quote_identifier(table) + where, params, [&](sqlite3_stmt* row) {
      if (!insert) {
        columns = sqlite3_column_count(row);
        std::string sql = "INSERT INTO main." + quote_identifier(table) + " VALUES (";
        for (int c = 0; c < columns; ++c) sql += c ? ",?" : "?";
        if (sqlite3_prepare_v2(live.handle(), (sql + ")").c_str(), -1, &insert, nullptr) != SQLITE_OK)
          throw Failure(std::string(sqlite3_errmsg(live.handle())) + " (in: " + sql + ")");
      }
      for (int c = 0; c < columns; ++c) sqlite3_bind_value(insert, c + 1, sqlite3_column_value(row, c));
      const int rc = sqlite3_step(insert);
      sqlite3_reset(insert);
      if (rc != SQLITE_DONE) {
        sqlite3_finalize(insert);
        throw Failure(std::string(sqlite3_errmsg(live.handle())) + " (copying " + table + ")");
      }
    });
    sqlite3_finalize(insert);
  };
  for (const auto& [table, sql] : projection_tables(copy, "main")) {
    live.exec("DROP TABLE IF EXISTS main." + quote_identifier(table));
    live.exec(sql);
    copy_rows(table, "", {});
  }
  std::vector<std::string> indexes;
  copy.each("SELECT sql FROM sqlite_master WHERE type = 'index' AND sql IS NOT NULL AND tbl_name NOT LIKE "
            "'evs\\_%' ESCAPE '\\'",
            {}, [&](sqlite3_stmt* st) { indexes.emplace_back(reinterpret_cast<const char*>(sqlite3_column_text(st, 0))); });
  for (const auto& sql : indexes) live.exec(sql);
  live.exec(
      "CREATE TABLE IF NOT EXISTS main.evs_checkpoints (projection TEXT NOT NULL, partition INTEGER NOT NULL, "
      "partitions INTEGER NOT NULL, position INTEGER NOT NULL, updated_at INTEGER NOT NULL, "
      "PRIMARY KEY (projection, partition)) WITHOUT ROWID");
  live.each("DELETE FROM main.evs_checkpoints WHERE projection = ?1", {projection}, [](sqlite3_stmt*) {});
  copy_rows("evs_checkpoints", " WHERE projection = ?1", {projection});
}

// Runs `work` in the transaction `begin` opened on `db`; rolls back when it throws.
template <class F>
void in_transaction(Db& db, const char* begin, F&& work) {
  db.exec(begin);
  try {
    work();
  } catch (...) {
    try {
      db.exec("ROLLBACK");
    } catch (...) {
    }
    throw;
  }
}

class SqliteReadModelDb final : public ReadModelDb {
 public:
  explicit SqliteReadModelDb(std::string path) : path_(std::move(path)) {}

  std::string copy_location(const std::string& kind, const std::string& name) const override {
    return path_ + "." + kind + "-" + name;
  }

  bool is_live(const std::string& location) const override {
    return std::filesystem::absolute(location) == std::filesystem::absolute(path_);
  }

  std::uint64_t checkpoint(const std::string& projection, bool furthest) override {
    if (!std::filesystem::exists(path_)) return 0;
    Db db(path_);
    return stored_checkpoint(db, "main", projection, furthest);
  }

  std::uint64_t compare(const std::string& copy, const std::string& projection, std::uint64_t built,
                        const std::function<void(std::uint64_t)>& catch_up, TableComparison& out) override {
    if (!std::filesystem::exists(path_)) {
      Db db(copy);
      for (const auto& [table, sql] : projection_tables(db, "main")) out[table] = {{}, summarize(db, "main", table)};
      return built;
    }
    Db db(path_);
    db.exec("ATTACH DATABASE " + quote_identifier(copy) + " AS shadow");
    std::uint64_t at = built;
    // One read snapshot of the live read model for the position and every table.
    in_transaction(db, "BEGIN", [&] {
      at = stored_checkpoint(db, "main", projection, true);
      if (at < built)
        throw Failure("the live read model went back from position " + std::to_string(built) + " to " +
                      std::to_string(at) + " during the dry run (a rebuild swapped it in?); run the dry run again");
      if (at > built) catch_up(at);
      for (const auto& [table, sql] : projection_tables(db, "shadow"))
        out[table] = {summarize(db, "main", table), summarize(db, "shadow", table)};
      db.exec("ROLLBACK");
    });
    db.exec("DETACH DATABASE shadow");
    return at;
  }

  void swap_in(const std::string& copy, const std::string& projection,
               const std::function<void(std::uint64_t)>& catch_up) override {
    // The write lock first, so the live projection cannot commit; then the copy catches up with what the
    // live one had committed; then the tables are replaced.
    Db db(path_);
    in_transaction(db, "BEGIN IMMEDIATE", [&] {
      catch_up(stored_checkpoint(db, "main", projection, false));
      Db from(copy);
      swap_tables(db, from, projection);
      db.exec("COMMIT");
    });
  }

 private:
  std::string path_;
};

}  // namespace

std::unique_ptr<ReadModelDb> open_sqlite_read_model_db(const std::string& path) {
  return std::make_unique<SqliteReadModelDb>(path);
}

}  // namespace evs::cli
