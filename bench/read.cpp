// The read scenarios: load_aggregate, read_all, catchup_memory, and load_aggregate_upcast /
// catchup_memory_upcast (the same with half of the events stored as an older version); and the shared read
// workload (workloads.hpp).
#include "data.hpp"
#include "domain.hpp"
#include "raw.hpp"
#include "report.hpp"
#include "scenarios.hpp"
#include "workloads.hpp"

#include <evs/eventstore/repository.hpp>
#include <evs/eventstore/sqlite_event_store.hpp>
#include <evs/projections/engine.hpp>

#include <algorithm>
#include <cstring>
#include <functional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace bench {

// ---- load_aggregate ---------------------------------------------------------------------------------------

namespace {

// Loads `id` repeatedly for at least `min_seconds` (and at least 3 times); the median load time.
template <class F>
double median_time(F&& load, double min_seconds) {
  std::vector<double> t;
  const auto start = SteadyClock::now();
  while (t.size() < 3 || seconds_since(start) < min_seconds) {
    const auto t0 = SteadyClock::now();
    load();
    t.push_back(seconds_since(t0));
  }
  return median(t);
}

// The hand-written load: optional snapshot row + the stream's events after it, decoded and applied.
bench::AccountState raw_load(raw::Db& db, raw::Stmt& find_stream, raw::Stmt& find_snapshot, raw::Stmt& events,
                             const std::unordered_map<std::int64_t, bool>& kinds, const std::string& stream,
                             bool use_snapshot) {
  bench::AccountState state;
  std::int64_t from = 1;
  if (use_snapshot) {
    find_snapshot.bind_text(1, stream);
    if (find_snapshot.step()) {
      const std::string_view bytes = find_snapshot.blob(1);
      const char* p = bytes.data();
      const char* end = p + bytes.size();
      if (raw::get_zigzag(p, end, state.balance) && raw::get_zigzag(p, end, state.operations) &&
          raw::get_zigzag(p, end, state.last_seq) && p == end)
        from = find_snapshot.i64(0) + 1;
      else
        state = {};
    }
    find_snapshot.reset();
  }
  find_stream.bind_text(1, stream);
  if (!find_stream.step()) throw std::runtime_error("raw load: no stream " + stream);
  const std::int64_t id = find_stream.i64(0);
  find_stream.reset();
  db.exec("BEGIN");
  events.bind(1, id);
  events.bind(2, from);
  raw::MovementView m;
  while (events.step()) {
    if (!raw::decode_movement(events.blob(1), m)) throw std::runtime_error("raw load: bad payload");
    bench::apply_to(state, kinds.at(events.i64(0)), m.cents, m.seq);
  }
  events.reset();
  db.exec("COMMIT");
  return state;
}

}  // namespace

void scenario_load_aggregate(const Config& cfg, DataSets& data) {
  const fs::path p = data.load_db();
  evs::SqliteEventStore store(store_options(p, evs::Durability::normal));
  evs::Repository<bench::Account> repo(store);
  raw::Db db(p, true);
  auto find_stream = db.prepare("SELECT id FROM streams WHERE name = ?1");
  auto find_snapshot = db.prepare("SELECT version, payload FROM snapshots WHERE stream = ?1");
  auto events = db.prepare("SELECT type, payload FROM events WHERE stream = ?1 AND version >= ?2 ORDER BY version");
  const auto kinds = raw::type_kinds(db);
  const double min_seconds = cfg.quick ? 0.01 : 0.3;

  const auto evs_load = [&](const char* id, std::size_t expect_ops) {
    auto a = repo.load(id).value();
    if (std::size_t(a.state().operations) != expect_ops) throw std::runtime_error("load_aggregate: wrong state");
  };
  const auto raw_load_of = [&](const char* id, bool snap, std::size_t expect_ops) {
    auto s = raw_load(db, find_stream, find_snapshot, events, kinds, bench::Account::stream_id_for(id), snap);
    if (std::size_t(s.operations) != expect_ops) throw std::runtime_error("load_aggregate: raw wrong state");
  };

  // 1. No snapshot: 10k events.
  {
    const std::size_t n = data.load_small();
    std::vector<Sample> evs_s, raw_s;
    for (int r = 0; r < cfg.reps; ++r) {
      evs_s.push_back({n, median_time([&] { evs_load("l10k", n); }, min_seconds)});
      raw_s.push_back({n, median_time([&] { raw_load_of("l10k", false, n); }, min_seconds)});
    }
    const Summary e = summarize(evs_s), b = summarize(raw_s);
    emit(cfg, "load_aggregate", Json().num("stream_events", std::uint64_t(n)).boolean("snapshot", false), e, b,
         false, e.rate / b.rate, ">= 1,000,000 events/s", e.rate >= 1e6);
  }
  // 2. Snapshots: a 1M-event stream vs a 1k-event one, each 50 events past its snapshot.
  {
    const std::size_t small = data.snap_small(), large = data.snap_large();
    // "events" here: the events replayed after the snapshot (what a load decodes and applies).
    constexpr std::uint64_t replayed = DataSets::snapshot_lag;
    std::vector<Sample> evs_large, evs_small, raw_large;
    for (int r = 0; r < cfg.reps; ++r) {
      evs_small.push_back({replayed, median_time([&] { evs_load("s1k", small); }, min_seconds)});
      evs_large.push_back({replayed, median_time([&] { evs_load("s1m", large); }, min_seconds)});
      raw_large.push_back({replayed, median_time([&] { raw_load_of("s1m", true, large); }, min_seconds)});
    }
    const Summary e = summarize(evs_large), s = summarize(evs_small), b = summarize(raw_large);
    const double cost_ratio = e.seconds / s.seconds;
    emit(cfg, "load_aggregate",
         Json().num("stream_events", std::uint64_t(large)).boolean("snapshot", true)
             .num("events_after_snapshot", std::uint64_t(DataSets::snapshot_lag))
             .num("small_stream_events", std::uint64_t(small)),
         e, b, false, e.rate / b.rate, "load(1M-event stream) < 2x load(1k-event stream), with snapshots",
         cost_ratio < 2,
         Json().num("small_stream_seconds", s.seconds).num("large_over_small", cost_ratio));
  }
}

// ---- read_all ---------------------------------------------------------------------------------------------

namespace {

// The raw scan: every column of every row, copied out (stream and type names from in-memory tables).
Sample raw_read_all(const fs::path& p) {
  raw::Db db(p, true);
  const auto names = raw::stream_names(db);
  const auto kinds = raw::type_kinds(db);
  auto st = db.prepare(
      "SELECT position, stream, version, event_id, type, schema_version, encoding, recorded_at, correlation_id, "
      "causation_id, metadata, payload FROM events ORDER BY position");
  struct Row {
    std::int64_t position, version, schema_version, encoding, recorded_at;
    const std::string* stream;
    bool deposit;
    char id[16];
    std::string correlation, causation, metadata, payload;
  } row{};
  std::uint64_t n = 0;
  std::size_t bytes = 0;
  const auto t0 = SteadyClock::now();
  db.exec("BEGIN");
  while (st.step()) {
    row.position = st.i64(0);
    row.stream = &names[std::size_t(st.i64(1))];
    row.version = st.i64(2);
    const std::string_view id = st.blob(3);
    std::memcpy(row.id, id.data(), std::min<std::size_t>(16, id.size()));
    row.deposit = kinds.at(st.i64(4));
    row.schema_version = st.i64(5);
    row.encoding = st.i64(6);
    row.recorded_at = st.i64(7);
    row.correlation.assign(st.text(8));
    row.causation.assign(st.text(9));
    row.metadata.assign(st.blob(10));
    row.payload.assign(row.encoding == 1 ? st.text(11) : st.blob(11));
    bytes += row.payload.size() + row.stream->size();
    ++n;
  }
  st.reset();
  db.exec("COMMIT");
  const double s = seconds_since(t0);
  if (bytes == 42) std::fprintf(stderr, "!");
  return {n, s};
}

}  // namespace

void scenario_read_all(const Config& cfg, DataSets& data) {
  const std::size_t batch_size = 1000;
  for (const evs::Encoding enc : {evs::Encoding::binary, evs::Encoding::json}) {
    const bool json = enc == evs::Encoding::json;
    const fs::path p = data.log(enc);
    evs::SqliteEventStore store(store_options(p, evs::Durability::normal));
    raw_read_all(p);  // warm the page cache for both
    std::vector<Sample> evs_s, raw_s;
    for (int r = 0; r < cfg.reps; ++r) {
      evs_s.push_back(read_all_decoded(store, batch_size));
      raw_s.push_back(raw_read_all(p));
    }
    const Summary e = summarize(evs_s), b = summarize(raw_s);
    const double ratio = e.rate / b.rate;
    emit(cfg, "read_all",
         Json().num("log_events", std::uint64_t(e.events)).num("batch", int(batch_size)).str("encoding",
                                                                                          json ? "json" : "binary"),
         e, b, false, ratio,
         json ? "informational (JSON encoding; the target applies to binary)" : ">= 0.25x the raw SQLite scan",
         json ? std::nullopt : std::optional<bool>(ratio >= 0.25));
  }
}

// ---- catchup_memory ---------------------------------------------------------------------------------------

namespace {

Sample raw_catchup(const fs::path& p) {
  raw::Db db(p, true);
  const auto kinds = raw::type_kinds(db);
  auto st = db.prepare("SELECT type, payload FROM events ORDER BY position");
  struct Hash {
    using is_transparent = void;
    std::size_t operator()(std::string_view s) const noexcept { return std::hash<std::string_view>{}(s); }
  };
  std::unordered_map<std::string, std::int64_t, Hash, std::equal_to<>> balance;
  std::uint64_t n = 0;
  raw::MovementView m;
  const auto t0 = SteadyClock::now();
  db.exec("BEGIN");
  while (st.step()) {
    const bool deposit = kinds.at(st.i64(0));
    if (!raw::decode_movement(st.blob(1), m)) throw std::runtime_error("raw catchup: bad payload");
    auto it = balance.find(m.account);
    if (it == balance.end()) it = balance.emplace(std::string(m.account), 0).first;
    it->second += deposit ? m.cents : -m.cents;
    ++n;
  }
  st.reset();
  db.exec("COMMIT");
  return {n, seconds_since(t0)};
}

}  // namespace

void scenario_catchup_memory(const Config& cfg, DataSets& data) {
  const fs::path p = data.log(evs::Encoding::binary);
  evs::SqliteEventStore store(store_options(p, evs::Durability::normal));
  const std::uint64_t head = store.last_position().value();
  raw_catchup(p);  // warm
  std::vector<Sample> evs_s, raw_s;
  for (int r = 0; r < cfg.reps; ++r) {
    evs_s.push_back(catch_up<bench::Balances>(store, head, head));
    raw_s.push_back(raw_catchup(p));
  }
  const Summary e = summarize(evs_s), b = summarize(raw_s);
  emit(cfg, "catchup_memory",
       Json().num("log_events", head).num("batch", 500).str("baseline", "raw scan + hand decode + apply"), e, b,
       false, e.rate / b.rate, ">= 1,500,000 events/s", e.rate >= 1.5e6);
}

// ---- load_aggregate_upcast, catchup_memory_upcast ----------------------------------------------------------

namespace {

// The events stored with schema version 1 in `p` (in stream `stream`, if given): what the upcast scenarios
// report as the old events their evs side read.
std::uint64_t count_version_1(const fs::path& p, const std::string& stream = {}) {
  raw::Db db(p, true);
  auto st = db.prepare(
      "SELECT count(*) FROM events WHERE schema_version = 1 AND (?1 IS NULL OR stream = (SELECT id FROM streams "
      "WHERE name = ?1))");
  if (stream.empty()) st.bind_null(1);
  else st.bind_text(1, stream);
  st.step();
  const auto n = std::uint64_t(st.i64(0));
  st.reset();
  return n;
}

// What the upcast scenarios emit: the side with old events against the all-current one, as a rate ratio, and
// the extra time per old event.
void emit_upcast(const Config& cfg, std::string_view scenario, Json params, const Summary& with_old,
                 const Summary& current, std::uint64_t old_events) {
  params.num("old_events", old_events)
      .str("old_events_stored_as", "version 1 of the same name (the v1 struct), upcast to version 2 on read")
      .str("baseline", "the same scenario on an all-current log of the same size, in the same run");
  emit(cfg, scenario, params, with_old, current, false, with_old.rate / current.rate,
       "informational (ratio: events/s with the old events / events/s all current; below 1 is the upcasting cost)",
       std::nullopt,
       Json().num("extra_ns_per_old_event", (with_old.seconds - current.seconds) / double(old_events) * 1e9));
}

}  // namespace

void scenario_load_aggregate_upcast(const Config& cfg, DataSets& data) {
  const fs::path p = data.versioned_load_db();
  evs::SqliteEventStore store(store_options(p, evs::Durability::normal));
  evs::Repository<versioned::Account> repo(store);
  const std::size_t n = data.load_small();
  const std::uint64_t old_events = count_version_1(p, versioned::Account::stream_id_for("half-v1"));
  if (old_events != n / 2) throw std::runtime_error("load_aggregate_upcast: the stream has no half of old events");
  const double min_seconds = cfg.quick ? 0.01 : 0.3;
  // Both streams hold the same movements: the loads must agree.
  const auto load = [&](const char* id) {
    auto a = repo.load(id).value();
    if (std::size_t(a.state().operations) != n) throw std::runtime_error("load_aggregate_upcast: wrong state");
    return a.state().balance;
  };
  if (load("half-v1") != load("current")) throw std::runtime_error("load_aggregate_upcast: the balances differ");

  std::vector<Sample> old_s, current_s;
  for (int r = 0; r < cfg.reps; ++r) {
    old_s.push_back({n, median_time([&] { load("half-v1"); }, min_seconds)});
    current_s.push_back({n, median_time([&] { load("current"); }, min_seconds)});
  }
  emit_upcast(cfg, "load_aggregate_upcast", Json().num("stream_events", std::uint64_t(n)).boolean("snapshot", false),
              summarize(old_s), summarize(current_s), old_events);
}

void scenario_catchup_memory_upcast(const Config& cfg, DataSets& data) {
  const fs::path old_log = data.versioned_log(true), current_log = data.versioned_log(false);
  evs::SqliteEventStore old_store(store_options(old_log, evs::Durability::normal));
  evs::SqliteEventStore current_store(store_options(current_log, evs::Durability::normal));
  const std::uint64_t head = old_store.last_position().value();
  if (current_store.last_position().value() != head) throw std::runtime_error("catchup_memory_upcast: logs differ");
  const std::uint64_t old_events = count_version_1(old_log);  // also warms the page cache
  if (old_events != head / 2) throw std::runtime_error("catchup_memory_upcast: the log has no half of old events");
  count_version_1(current_log);  // warm
  std::vector<Sample> old_s, current_s;
  for (int r = 0; r < cfg.reps; ++r) {
    std::int64_t old_total = 0, current_total = 0;
    old_s.push_back(catch_up<versioned::Balances>(old_store, head, head, &old_total));
    current_s.push_back(catch_up<versioned::Balances>(current_store, head, head, &current_total));
    if (old_total != current_total) throw std::runtime_error("catchup_memory_upcast: the views differ");
  }
  emit_upcast(cfg, "catchup_memory_upcast", Json().num("log_events", head).num("batch", 500), summarize(old_s),
              summarize(current_s), old_events);
}

// ---- the shared read workload (workloads.hpp) --------------------------------------------------------------

Sample read_all_decoded(evs::EventStore& store, std::size_t batch_size) {
  std::int64_t checksum = 0;
  std::uint64_t n = 0, from = 1;
  const auto t0 = SteadyClock::now();
  bench::Deposited d;
  bench::Withdrawn w;
  for (;;) {
    auto batch = store.read_all(from, batch_size).value();
    if (batch.events.empty()) break;
    for (const evs::RecordedEvent& e : batch.events) {
      if (e.type == bench::deposited_type) {
        evs::decode_into(e.payload, e.encoding, d).value();
        checksum += d.cents;
      } else {
        evs::decode_into(e.payload, e.encoding, w).value();
        checksum -= w.cents;
      }
    }
    n += batch.events.size();
    from = batch.next_position;
  }
  const double s = seconds_since(t0);
  if (checksum == 42) std::fprintf(stderr, "!");
  return {n, s};
}

}  // namespace bench
