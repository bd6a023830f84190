// The SQLite store's on-disk schema and its versioned migrations.
//
// The schema version lives in `PRAGMA user_version`; the table `evs_meta` holds ('format', 'evs') so that a
// foreign SQLite file is never mistaken for a store (or modified). See sqlite_schema.cpp for the tables.
#pragma once

#include "sqlite_connection.hpp"

namespace evs::sqlite {

// The schema version this build creates and migrates to.
inline constexpr int current_schema_version = 3;

// The oldest schema version a read-only open reads as it is (no migration: nothing may be written). What
// later versions added reads as empty or default there: version 2's event_schemas (no recorded schemas)
// and snapshots.snapshot_version (1); version 3's index only makes correlation lookups faster.
inline constexpr int oldest_readable_schema_version = 1;
// The first schema version with the table event_schemas and the column snapshots.snapshot_version.
inline constexpr int schema_records_since = 2;

// Reads the file's schema version without writing anything: 0 for an empty database (nothing created yet),
// otherwise 1..current_schema_version.
// Errors: not_an_evs_database (a SQLite file with tables but no evs_meta format marker, a file that is not
// SQLite at all, or a schema newer than this build), and whatever reading the file maps to.
Result<int> inspect_schema(Connection& connection);

// Brings the schema to current_schema_version: applies the missing migrations in order, in one
// BEGIN IMMEDIATE transaction (all or nothing), re-inspecting under the write lock so concurrent openers in
// other processes do not migrate twice. Takes no write lock when the schema is already current.
// Errors: as inspect_schema, plus read_only / database_locked / disk_full / io_error from writing.
Result<void> migrate_schema(Connection& connection);

}  // namespace evs::sqlite
