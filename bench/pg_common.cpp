#include "pg_common.hpp"

#include "raw_pg.hpp"
#include "workloads.hpp"

#include <stdexcept>
#include <vector>

namespace bench {

evs::PgOptions pg_options(const std::string& url, const std::string& schema) {
  evs::PgOptions o;
  o.url = url;
  o.schema = schema;
  return o;
}

PgSchema::PgSchema(const Config& cfg, const std::string& name) : url_(cfg.pg_url), name_("evs_bench_" + name) {
  reset();
}

PgSchema::~PgSchema() {
  try {
    reset();
  } catch (const std::exception& e) {
    progress("could not drop schema %s: %s", name_.c_str(), e.what());
  }
}

void PgSchema::reset() { rawpg::drop_schema(url_, name_); }

void PgSchema::create_empty_store() {
  reset();
  evs::PgEventStore store(options());
}

std::string pg_location(const std::string& url, const std::string& schema) {
  return url + (url.find('?') == std::string::npos ? "?" : "&") + "evs_schema=" + schema;
}

std::uint64_t build_pg_log(const PgSchema& schema, std::size_t events) {
  evs::PgEventStore store(schema.options());
  const std::size_t per_append = 100;
  append_batches(store, (events + per_append - 1) / per_append, per_append, evs::Encoding::binary);
  // Planner statistics, as autovacuum would have them on a store in use: without them the first reads get
  // plans of an empty table, and which plan a run measured would depend on autovacuum's timing.
  rawpg::Conn db(schema.url());
  db.exec("ANALYZE " + rawpg::ident(schema.name()) + ".events, " + rawpg::ident(schema.name()) + ".streams, " +
          rawpg::ident(schema.name()) + ".event_types");
  return store.last_position().value();
}

void warm_up_appends(evs::EventStore& store, const std::string& stream) {
  const std::vector<evs::EventData> both{event_data(stream, 0, evs::Encoding::binary),
                                         event_data(stream, 3, evs::Encoding::binary)};  // movement(3): a withdrawal
  if (!store.append(stream, evs::ExpectedVersion::any(), both))
    throw std::runtime_error("the warm-up append failed");
}

}  // namespace bench
