// Old on-disk layouts for the compatibility tests: a store as an earlier evs build left it.
#pragma once

#include <doctest/doctest.h>

#include <filesystem>
#include <sqlite3.h>
#include <string>

namespace evs::test {

// Turns a closed store of the current schema version into what a build of schema version 1 wrote: no
// event_schemas table, no snapshots.snapshot_version column, no events_by_correlation index, PRAGMA
// user_version 1. The file stays in WAL mode and is
// closed again (no -wal or -shm left) when this returns.
inline void downgrade_to_schema_v1(const std::filesystem::path& db) {
  sqlite3* c = nullptr;
  REQUIRE(sqlite3_open(db.c_str(), &c) == SQLITE_OK);
  char* error = nullptr;
  const int rc = sqlite3_exec(c,
                              "BEGIN; DROP TABLE event_schemas; ALTER TABLE snapshots DROP COLUMN snapshot_version; "
                              "DROP INDEX events_by_correlation; PRAGMA user_version = 1; COMMIT;",
                              nullptr, nullptr, &error);
  CAPTURE((error ? error : ""));
  sqlite3_free(error);
  REQUIRE(sqlite3_close(c) == SQLITE_OK);
  REQUIRE(rc == SQLITE_OK);
}

}  // namespace evs::test
