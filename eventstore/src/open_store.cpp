#include "evs/eventstore/open_store.hpp"

#include "evs/eventstore/sqlite_event_store.hpp"
#ifdef EVS_HAS_POSTGRESQL
#include "evs/eventstore/pg_event_store.hpp"
#endif

namespace evs {
namespace {

bool starts_with(std::string_view s, std::string_view prefix) { return s.substr(0, prefix.size()) == prefix; }

// Removes the evs_schema=NAME parameter from a URI's query (libpq refuses parameters it does not know).
std::string take_schema(std::string& uri) {
  const std::size_t query = uri.find('?');
  if (query == std::string::npos) return "public";
  std::string schema = "public", kept;
  std::string_view rest = std::string_view(uri).substr(query + 1);
  while (!rest.empty()) {
    const std::size_t amp = rest.find('&');
    const std::string_view param = rest.substr(0, amp);
    if (starts_with(param, "evs_schema=")) {
      schema = std::string(param.substr(11));
    } else if (!param.empty()) {
      kept += (kept.empty() ? "" : "&") + std::string(param);
    }
    rest = amp == std::string_view::npos ? std::string_view() : rest.substr(amp + 1);
  }
  uri = uri.substr(0, query) + (kept.empty() ? "" : "?" + kept);
  return schema;
}

}  // namespace

Result<StoreLocation> parse_store_location(std::string_view location) {
  if (location.empty()) return Error{errc::invalid_argument, "the store location is empty"};
  StoreLocation out;
  if (starts_with(location, "postgresql://") || starts_with(location, "postgres://")) {
    out.backend = StoreBackend::postgresql;
    out.target = std::string(location);
    out.schema = take_schema(out.target);
    if (out.schema.empty()) return Error{errc::invalid_argument, "evs_schema= names no schema in " + out.target};
    return out;
  }
  // A libpq key=value string: "host=... dbname=...".
  if (location.find('=') != std::string_view::npos && location.find("dbname=") != std::string_view::npos &&
      !starts_with(location, "sqlite:")) {
    out.backend = StoreBackend::postgresql;
    out.schema = "public";
    std::string kept;
    std::size_t start = 0;
    const std::string text(location);
    while (start < text.size()) {
      const std::size_t end = std::min(text.find(' ', start), text.size());
      const std::string word = text.substr(start, end - start);
      if (starts_with(word, "evs_schema=")) {
        out.schema = word.substr(11);
      } else if (!word.empty()) {
        kept += (kept.empty() ? "" : " ") + word;
      }
      start = end + 1;
    }
    out.target = kept;
    return out;
  }
  out.target = std::string(starts_with(location, "sqlite:") ? location.substr(7) : location);
  if (out.target.empty()) return Error{errc::invalid_argument, "sqlite: names no file"};
  return out;
}

std::unique_ptr<EventStore> open_store(std::string_view location, const OpenStoreOptions& options) {
  auto parsed = parse_store_location(location);
  if (!parsed) throw Exception(parsed.error());
  if (parsed->backend == StoreBackend::sqlite) {
    SqliteOptions o;
    o.path = parsed->target;
    o.read_only = options.read_only;
    o.schema_check = options.schema_check;
    o.schema_warning = options.schema_warning;
    o.registry = options.registry;
    return std::make_unique<SqliteEventStore>(std::move(o));
  }
#ifdef EVS_HAS_POSTGRESQL
  PgOptions o;
  o.url = parsed->target;
  o.schema = parsed->schema;
  o.read_only = options.read_only;
  o.schema_check = options.schema_check;
  o.schema_warning = options.schema_warning;
  o.registry = options.registry;
  return std::make_unique<PgEventStore>(std::move(o));
#else
  throw Exception(Error{errc::invalid_argument,
                        "this evs was built without the PostgreSQL backend (configure with EVS_POSTGRESQL=ON)"});
#endif
}

}  // namespace evs
