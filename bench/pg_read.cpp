// The PostgreSQL read scenarios: pg_read_all and pg_catchup_memory, each on a log evs wrote, against
// hand-written paged SELECTs (raw_pg.hpp) on the same tables, measured in the same run.
#include "pg_common.hpp"
#include "raw_pg.hpp"
#include "report.hpp"
#include "scenarios.hpp"
#include "workloads.hpp"

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <functional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace bench {

namespace {

// Pages through the whole log like a reader (`page` rows per SELECT, resumed after the last position),
// copying out every column of every row (stream names from an in-memory table), without decoding payloads:
// the same baseline as the SQLite read_all's.
Sample raw_pg_read_all(const std::string& url, const std::string& schema, std::size_t page) {
  rawpg::Conn db(url);
  db.exec("SET search_path = " + rawpg::ident(schema));
  const auto names = rawpg::stream_names(db);
  const auto types = rawpg::load_types(db);
  db.prepare("page", rawpg::select_page_all);
  rawpg::Params params(2);
  struct Row {
    std::int64_t position, version, schema_version, encoding, recorded_at;
    const std::string* stream;
    bool deposit;
    char id[16];
    std::string correlation, causation, metadata, payload;
  } row{};
  std::uint64_t n = 0;
  std::size_t bytes = 0;
  std::int64_t after = 0;
  const auto t0 = SteadyClock::now();
  for (;;) {
    params.clear();
    params.int64(after).int64(std::int64_t(page));
    const rawpg::Result r = db.run("page", params);
    if (r.rows() == 0) break;
    for (int i = 0; i < r.rows(); ++i) {
      row.position = r.i64(i, 0);
      row.stream = &names.at(std::size_t(r.i64(i, 1)));
      row.version = r.i64(i, 2);
      std::memcpy(row.id, r.bytes(i, 3).data(), std::min<std::size_t>(16, r.bytes(i, 3).size()));
      row.deposit = types.kinds.at(r.i64(i, 4));
      row.schema_version = r.i64(i, 5);
      row.encoding = r.i64(i, 6);
      row.recorded_at = r.i64(i, 7);
      row.correlation.assign(r.null(i, 8) ? std::string_view() : r.bytes(i, 8));
      row.causation.assign(r.null(i, 9) ? std::string_view() : r.bytes(i, 9));
      row.metadata.assign(r.null(i, 10) ? std::string_view() : r.bytes(i, 10));
      row.payload.assign(r.bytes(i, 11));
      bytes += row.payload.size() + row.stream->size();
      ++n;
    }
    after = row.position;
  }
  const double s = seconds_since(t0);
  if (bytes == 42) std::fprintf(stderr, "!");
  return {n, s};
}

// Pages through `position, type, payload` (`page` rows per SELECT), decodes each payload by hand and applies
// it to a balance map: the SQLite catch-up baseline, paged.
Sample raw_pg_catchup(const std::string& url, const std::string& schema, std::size_t page) {
  rawpg::Conn db(url);
  db.exec("SET search_path = " + rawpg::ident(schema));
  const auto types = rawpg::load_types(db);
  db.prepare("page", rawpg::select_page_payloads);
  rawpg::Params params(2);
  struct Hash {
    using is_transparent = void;
    std::size_t operator()(std::string_view s) const noexcept { return std::hash<std::string_view>{}(s); }
  };
  std::unordered_map<std::string, std::int64_t, Hash, std::equal_to<>> balance;
  std::uint64_t n = 0;
  std::int64_t after = 0;
  raw::MovementView m;
  const auto t0 = SteadyClock::now();
  for (;;) {
    params.clear();
    params.int64(after).int64(std::int64_t(page));
    const rawpg::Result r = db.run("page", params);
    if (r.rows() == 0) break;
    for (int i = 0; i < r.rows(); ++i) {
      const bool deposit = types.kinds.at(r.i64(i, 1));
      if (!raw::decode_movement(r.bytes(i, 2), m)) throw std::runtime_error("raw pg catchup: bad payload");
      auto it = balance.find(m.account);
      if (it == balance.end()) it = balance.emplace(std::string(m.account), 0).first;
      it->second += deposit ? m.cents : -m.cents;
      ++n;
    }
    after = r.i64(r.rows() - 1, 0);
  }
  return {n, seconds_since(t0)};
}

}  // namespace

void scenario_pg_read_all(const Config& cfg, DataSets&) {
  const std::size_t events = cfg.scale(100'000, 1'000), page = 1000;
  PgSchema schema(cfg, "read_all");
  build_pg_log(schema, events);
  evs::PgEventStore store(schema.options());
  raw_pg_read_all(cfg.pg_url, schema.name(), page);  // warm the server's cache for both
  std::vector<Sample> evs_s, raw_s;
  for (int r = 0; r < cfg.reps; ++r) {
    evs_s.push_back(read_all_decoded(store, page));
    raw_s.push_back(raw_pg_read_all(cfg.pg_url, schema.name(), page));
    if (evs_s.back().events != events || raw_s.back().events != events)
      throw std::runtime_error("pg_read_all: a side did not read the whole log");
  }
  const Summary e = summarize(evs_s), b = summarize(raw_s);
  const double ratio = e.rate / b.rate;
  emit(cfg, "pg_read_all",
       Json().num("log_events", std::uint64_t(events)).num("batch", std::uint64_t(page)).str("encoding", "binary")
           .str("baseline", "raw libpq: SELECT every column WHERE position > last ORDER BY position LIMIT 1000, "
                            "copied out, no decoding"),
       e, b, false, ratio, ">= 0.5x raw paged SELECT", ratio >= 0.5);
}

void scenario_pg_catchup_memory(const Config& cfg, DataSets&) {
  const std::size_t events = cfg.scale(100'000, 1'000), page = 500;
  PgSchema schema(cfg, "catchup_memory");
  const std::uint64_t head = build_pg_log(schema, events);
  evs::PgEventStore store(schema.options());
  raw_pg_catchup(cfg.pg_url, schema.name(), page);  // warm
  std::vector<Sample> evs_s, raw_s;
  for (int r = 0; r < cfg.reps; ++r) {
    evs_s.push_back(catch_up<bench::Balances>(store, head, events));
    raw_s.push_back(raw_pg_catchup(cfg.pg_url, schema.name(), page));
    if (raw_s.back().events != events) throw std::runtime_error("pg_catchup_memory: raw did not read the whole log");
  }
  const Summary e = summarize(evs_s), b = summarize(raw_s);
  emit(cfg, "pg_catchup_memory",
       Json().num("log_events", std::uint64_t(events)).num("batch", std::uint64_t(page))
           .str("baseline", "raw libpq: paged SELECT position, type, payload (500 rows) + hand decode + apply"),
       e, b, false, e.rate / b.rate, "informational (no target on PostgreSQL yet)", std::nullopt);
}

}  // namespace bench
