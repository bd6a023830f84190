// Internal: direct SQL on evs files (the tables the EventStore interface does not expose: streams listing,
// statistics, integrity checks, checkpoints and dead letters), with the event store's SQLite wrappers.
#pragma once

#include "sqlite_connection.hpp"

#include "commands.hpp"

#include <filesystem>
#include <string>
#include <string_view>

namespace evs::cli {

template <class T>
T must(Result<T>&& r) {
  if (!r) throw Exception(r.error());
  return std::move(*r);
}
inline void must(Result<void>&& r) {
  if (!r) throw Exception(r.error());
}

// Opens an existing SQLite file (a Failure if it does not exist: never creates one). A read of a closed
// database (see closed_database) opens it as immutable, so it creates no -wal or -shm file.
inline sqlite::Connection open_sql(const std::filesystem::path& path, sqlite::Access access) {
  std::error_code ec;
  if (!std::filesystem::exists(path, ec)) throw Failure("open " + path.string() + ": no such file");
  if (std::filesystem::is_directory(path, ec))
    throw Failure("open " + path.string() + ": is a directory, not a database file");
  const bool immutable = access == sqlite::Access::read && closed_database(path);
  return must(sqlite::Connection::open(path, access, std::chrono::milliseconds(5000), immutable));
}

inline bool has_table(sqlite::Connection& c, std::string_view table) {
  constexpr std::string_view action = "read the schema of";
  auto st = must(c.cached("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?1", action));
  st->bind_text(1, table);
  return must(st->step(action));
}

inline std::string text_column(const sqlite::Statement& st, int column) { return std::string(st.column_text(column)); }

}  // namespace evs::cli
