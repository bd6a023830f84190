// pg_rebuild_sql: a SQL read model in PostgreSQL (one upsert per event, the checkpoint in the same
// transaction) rebuilt from a PostgreSQL log by the projection engine, against raw libpq doing the same work
// by hand, measured in the same run.
#include "domain.hpp"
#include "pg_common.hpp"
#include "raw.hpp"
#include "raw_pg.hpp"
#include "report.hpp"
#include "scenarios.hpp"

#include <evs/projections/engine.hpp>

#include <stdexcept>
#include <string>
#include <vector>

namespace bench {

namespace {


Sample evs_pg_rebuild(evs::PgEventStore& store, PgSchema& read_model, std::uint64_t head, std::size_t events) {
  read_model.reset();
  BalanceTable table;
  evs::ProjectionEngine engine(store);
  evs::ProjectionOptions o;
  o.database = pg_location(read_model.url(), read_model.name());
  engine.add(table, o);
  const auto t0 = SteadyClock::now();
  engine.start();
  engine.wait_for(BalanceTable::name, head, std::chrono::minutes(30)).value();
  const double s = seconds_since(t0);
  engine.stop();
  return {events, s};
}

// Pages through `position, type, payload` (500 rows per SELECT) on one connection and, on another, runs the
// same upsert per event, 500 events per transaction, each transaction also upserting a checkpoint row.
Sample raw_pg_rebuild(const std::string& url, const std::string& log_schema, PgSchema& read_model) {
  constexpr std::int64_t page = 500;
  read_model.reset();
  rawpg::Conn src(url);
  src.exec("SET search_path = " + rawpg::ident(log_schema));
  const auto types = rawpg::load_types(src);
  src.prepare("page", rawpg::select_page_payloads);
  rawpg::Conn dst(url);
  dst.exec("CREATE SCHEMA " + rawpg::ident(read_model.name()) + "; SET search_path = " +
           rawpg::ident(read_model.name()));
  dst.exec(std::string(balances_ddl) +
           "; CREATE TABLE checkpoints(projection TEXT PRIMARY KEY, position BIGINT NOT NULL, updated_at BIGINT NOT NULL)");
  dst.prepare("upsert", "INSERT INTO balances(account, balance, events) VALUES($1, $2, 1) ON CONFLICT(account) DO "
                        "UPDATE SET balance = balances.balance + excluded.balance, events = balances.events + 1");
  dst.prepare("checkpoint", "INSERT INTO checkpoints(projection, position, updated_at) VALUES('balance_table', $1, $2) "
                            "ON CONFLICT(projection) DO UPDATE SET position = excluded.position, "
                            "updated_at = excluded.updated_at");
  rawpg::Params read(2), upsert(2), checkpoint(2);
  raw::MovementView m;
  std::uint64_t n = 0;
  std::int64_t after = 0;
  const auto t0 = SteadyClock::now();
  for (;;) {
    read.clear();
    read.int64(after).int64(page);
    const rawpg::Result r = src.run("page", read);
    if (r.rows() == 0) break;
    dst.exec("BEGIN");
    for (int i = 0; i < r.rows(); ++i) {
      const bool deposit = types.kinds.at(r.i64(i, 1));
      if (!raw::decode_movement(r.bytes(i, 2), m)) throw std::runtime_error("raw pg rebuild: bad payload");
      upsert.clear();
      upsert.text(m.account).int64(deposit ? m.cents : -m.cents);
      dst.run("upsert", upsert);
      ++n;
    }
    after = r.i64(r.rows() - 1, 0);
    checkpoint.clear();
    checkpoint.int64(after).int64(raw::now_us());
    dst.run("checkpoint", checkpoint);
    dst.exec("COMMIT");
  }
  return {n, seconds_since(t0)};
}

}  // namespace

void scenario_pg_rebuild_sql(const Config& cfg, DataSets&) {
  const std::size_t events = cfg.scale(100'000, 1'000);
  PgSchema log(cfg, "rebuild_log"), evs_side(cfg, "rebuild_evs"), raw_side(cfg, "rebuild_raw");
  const std::uint64_t head = build_pg_log(log, events);
  evs::PgEventStore store(log.options());
  std::vector<Sample> evs_s, raw_s;
  for (int r = 0; r < cfg.reps; ++r) {
    evs_s.push_back(evs_pg_rebuild(store, evs_side, head, events));
    raw_s.push_back(raw_pg_rebuild(cfg.pg_url, log.name(), raw_side));
    if (raw_s.back().events != events) throw std::runtime_error("pg_rebuild_sql: raw did not read the whole log");
  }
  const Summary e = summarize(evs_s), b = summarize(raw_s);
  const double ratio = e.rate / b.rate;
  emit(cfg, "pg_rebuild_sql",
       Json().num("log_events", std::uint64_t(events))
           .str("baseline", "raw libpq: paged SELECT position, type, payload (500 rows) + hand decode + one prepared "
                            "upsert per event, 500 per transaction with a checkpoint upsert"),
       e, b, false, ratio, ">= 0.5x raw", ratio >= 0.5);
}

}  // namespace bench
