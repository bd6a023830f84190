// One group transaction of the PostgreSQL store's writer (internal; the steps are described in
// pg_writer.hpp).
#pragma once

#include <span>
#include <string>
#include <vector>

#include "pg_writer.hpp"

namespace evs::pg {

struct GroupOutcome {
  enum class Kind {
    committed,  // `results` holds one outcome per append (a failed append failed alone)
    retry,      // nothing was stored; run the same group again (a race another writer won: the next run sees it)
    failed,     // nothing was stored; `error` is the group's (unavailable: the connection is lost)
  };
  Kind kind = Kind::failed;
  std::vector<Result<AppendResult>> results;
  Error error;
  std::vector<std::string> warnings;  // schema-drift warnings to report after the commit (SchemaCheck::warn)
  bool stored = false;                // committed, and at least one event was stored
  bool notified = false;              // the other processes were told (notify_sql ran after the COMMIT)
};

// The outcome of a group that stored nothing because of `error`: retry for a race another writer won (a
// deadlock, a serialization failure, an event id stored meanwhile), failed otherwise.
GroupOutcome group_failure(Error error);

// Commits `group` in one transaction: the one-round-trip way when it can (pg_fast_group.hpp), the general
// way otherwise.
GroupOutcome commit_group(StoreShared& shared, PgConnection& connection, std::span<const PendingAppend> group);

}  // namespace evs::pg
