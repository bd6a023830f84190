// The scenarios, one function each (bench/README.md describes them). Each runs its repetitions, evs and its
// baseline interleaved, and prints its result line(s) through emit().
#pragma once

#include "data.hpp"
#include "report.hpp"

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <string>

namespace bench {

// append.cpp
void scenario_append_1(const Config& cfg, DataSets& data);
void scenario_append_concurrent(const Config& cfg, DataSets& data);
void scenario_append_batch(const Config& cfg, DataSets& data);

// read.cpp
void scenario_load_aggregate(const Config& cfg, DataSets& data);
void scenario_read_all(const Config& cfg, DataSets& data);
void scenario_catchup_memory(const Config& cfg, DataSets& data);
void scenario_load_aggregate_upcast(const Config& cfg, DataSets& data);
void scenario_catchup_memory_upcast(const Config& cfg, DataSets& data);

// codec.cpp
void scenario_codec_cereal(const Config& cfg, DataSets& data);

// projections.cpp
void scenario_rebuild_sql(const Config& cfg, DataSets& data);
void scenario_live_latency(const Config& cfg, DataSets& data);
void scenario_rebuild_memory(const Config& cfg, DataSets& data);
// The measured side of rebuild_memory, run in a child process (--child-rebuild-memory evs|raw LOG READMODEL):
// prints {"idle_kib","peak_kib","seconds","events"}.
int child_rebuild_memory(const std::string& mode, const fs::path& log, const fs::path& rm);

// http_load.cpp (built with EVS_HTTP)
void scenario_http_load(const Config& cfg, DataSets& data);

// multi_process.cpp
void scenario_append_multi_process(const Config& cfg, DataSets& data);
// One appending process of append_multi_process (--child-append-multi evs|raw FILE APPENDS START_NS).
int child_append_multi(const std::string& mode, const fs::path& p, std::size_t appends, std::int64_t start_ns);

// The PostgreSQL scenarios (tag pg; built with EVS_POSTGRESQL, run on the server named by EVS_PG_URL).
// pg_append.cpp
void scenario_pg_append_concurrent(const Config& cfg, DataSets& data);
void scenario_pg_append_batch(const Config& cfg, DataSets& data);
// pg_multi_process.cpp
void scenario_pg_append_multi_process(const Config& cfg, DataSets& data);
// One process of pg_append_multi_process
// (--child-pg-append-multi evs|raw URL SCHEMA PROCESS APPENDS WRITERS START_NS).
int child_pg_append_multi(const std::string& mode, const std::string& url, const std::string& schema,
                          std::size_t process, std::size_t appends, std::size_t writers, std::int64_t start_ns);
// pg_read.cpp
void scenario_pg_read_all(const Config& cfg, DataSets& data);
void scenario_pg_rebuild_sql(const Config& cfg, DataSets& data);
void scenario_pg_catchup_memory(const Config& cfg, DataSets& data);
// pg_live.cpp
void scenario_pg_live_latency(const Config& cfg, DataSets& data);
// The follower of pg_live_latency (--child-pg-live evs|raw URL SCHEMA N): prints "ready" once it follows, then
// {"applied_ns":[...]} once it has applied N events.
int child_pg_live(const std::string& mode, const std::string& url, const std::string& schema, std::size_t n);
// pg_workers.cpp
void scenario_pg_workers_catchup(const Config& cfg, DataSets& data);
void scenario_pg_workers_failover(const Config& cfg, DataSets& data);
// A worker process of those (--child-pg-worker URL LOG MODEL NODE LEASE_MS): prints "ready <pid>", works the
// SQL projection until SIGTERM, then prints {"fenced":N}.
int child_pg_worker(const std::string& url, const std::string& log, const std::string& model, const std::string& node,
                    std::int64_t lease_ms);

}  // namespace bench
