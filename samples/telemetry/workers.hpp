// The telemetry projections run by worker processes: each worker is this program started as
// `telemetry worker DB NODE`, working rover_latest and minute_rollups as the node NODE under claims
// (ProjectionOptions::node), so that two of them share the partitions and one takes over when the other dies.
#pragma once

#include <evs/projections/projection.hpp>

#include <chrono>
#include <filesystem>
#include <string>
#include <string_view>
#include <sys/types.h>
#include <vector>

namespace telemetry {

// rover_latest and minute_rollups are split into this many partitions (by rover), in the demo's engine and
// in the workers alike: a projection keeps its partition count.
inline constexpr std::size_t projection_partitions = 2;
// The workers' lease: a killed worker's partitions move after about this long.
inline constexpr std::chrono::milliseconds worker_lease{1000};

// The options of projection `name` over the event store `db` (its own file next to the store).
evs::ProjectionOptions projection_options(const std::filesystem::path& db, std::string_view name);

// `telemetry worker DB NODE`: works rover_latest and minute_rollups until SIGTERM; prints "ready" once running.
int run_worker(const std::filesystem::path& db, const std::string& node);

// A worker process started from this program's own binary; waits for its "ready".
struct WorkerProcess {
  pid_t pid = -1;
  std::string node;
};
WorkerProcess start_worker(const std::filesystem::path& db, const std::string& node);
// SIGKILL (a crash) or SIGTERM (a graceful stop, giving the claims up); waits for it to end.
void kill_worker(WorkerProcess& w, bool graceful);

// One partition's claim as stored in a projection database: "owner|epoch" per partition, partition order.
std::vector<std::string> claims_of(const std::filesystem::path& projection_db, std::string_view projection);

}  // namespace telemetry
