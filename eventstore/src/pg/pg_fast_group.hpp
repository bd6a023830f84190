// The one-round-trip way to commit a group (internal; see pg_writer.hpp for the general one).
//
// Most groups need no decision the server cannot make itself: every append goes to a stream no other append
// of the group touches, brings events of types and schemas this process has seen recorded, and expects a
// version the stream has. For such a group the writer sends BEGIN, the stream locks, one statement and
// COMMIT in a single pipeline. The statement reads the streams' versions after the locks are held, checks
// every expectation and that none of the event ids is stored, and writes the streams and events only when
// all of that holds; otherwise it writes nothing, COMMIT ends an empty transaction (no transaction id, no
// WAL), and the group is committed the general way, which decides each append on its own (conflicts,
// idempotent replays, partial duplicates, schema drift).
#pragma once

#include <optional>
#include <span>

#include "pg_group_commit.hpp"

namespace evs::pg {

// The outcome when the group was eligible and the statement either committed it or failed; nullopt when
// the group must be committed the general way (not eligible, or a check failed: nothing was written).
std::optional<GroupOutcome> commit_group_fast(StoreShared& shared, PgConnection& connection,
                                              std::span<const PendingAppend> group);

}  // namespace evs::pg
