// Given/when/then for projections, independent of any test framework: a failed expectation throws
// evs::testing::ScenarioFailure whose message shows what was expected and what the projection produced.
//
//   evs::testing::ProjectionScenario<OrdersByCustomer>()
//       .given(OrderPlaced{"o1", "alice", ...}, OrderPlaced{"o2", "bob", ...})
//       .when(OrderShipped{"o1"})
//       .then_rows("SELECT order_id, status FROM orders ORDER BY order_id", {{"o1", "shipped"}, {"o2", "placed"}});
//
//   evs::testing::ProjectionScenario<Totals>()                       // a MemoryProjection
//       .given(OrderPlaced{...})
//       .then_view([](const Totals& t) { return t.total(); }, 2500);
//
//   ProjectionScenario<EmailConfirmation> s(mail);                    // constructor arguments go to P
//   s.when(OrderPlaced{...}).then_error("no such mailbox");
//
// A SQL projection runs on a private in-memory SQLite database through the real evs::SqlSession: setup()
// first, then each event in its own transaction, like the engine (a handler that throws leaves no writes).
// Every event goes through the engine's dispatch path: encoded, delivered with its registered type name
// and schema version, decoded, and handed to the matching handle() overload.
//
// Envelope: events are numbered from position 1 and get, unless recorded() says otherwise, the stream of
// the latest in_stream() call ("test-1" before any), the next version in that stream, a deterministic event
// id derived from the position, and the recorded time ProjectionScenario<P>::default_time:
//
//   s.given(evs::testing::recorded(OrderPlaced{...}, {.stream_id = "order-o1", .recorded_at = t}));
#pragma once

#include "evs/core/codec.hpp"
#include "evs/core/envelope.hpp"
#include "evs/core/event.hpp"
#include "evs/projections/projection.hpp"
#include "evs/projections/sql_database.hpp"
#include "evs/testing/aggregate_scenario.hpp"  // ScenarioFailure

#include <algorithm>
#include <charconv>
#include <concepts>
#include <chrono>
#include <exception>
#include <map>
#include <optional>
#include <sstream>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>

namespace evs::testing {

// What an event is recorded with. Unset members take the scenario's defaults (see above).
struct Envelope {
  std::string stream_id;                 // empty: the scenario's current stream
  std::optional<Timestamp> recorded_at;  // nullopt: ProjectionScenario<P>::default_time
  EventMetadata metadata;
  std::optional<Uuid> event_id;          // nullopt: derived from the position
  Encoding encoding = Encoding::binary;
};

// An event with its envelope; made by recorded().
template <Event E>
struct Recorded {
  E event;
  Envelope envelope;
};

template <Event E>
Recorded<E> recorded(E event, Envelope envelope) {
  return {std::move(event), std::move(envelope)};
}

namespace detail {

template <class T>
struct Unwrap {  // a plain event
  using type = T;
  static const T& event(const T& e) { return e; }
  static Envelope envelope(const T&) { return {}; }
};
template <class E>
struct Unwrap<Recorded<E>> {
  using type = E;
  static const E& event(const Recorded<E>& r) { return r.event; }
  static const Envelope& envelope(const Recorded<E>& r) { return r.envelope; }
};

template <class T>
concept ScenarioEvent = Event<typename Unwrap<T>::type>;

// A SQL value as a literal: NULL, 42, 2.5, 'text' (quotes doubled), x'0a1b'.
inline std::string sql_literal(const SqlValue& v) {
  if (std::holds_alternative<std::nullptr_t>(v)) return "NULL";
  if (const auto* i = std::get_if<std::int64_t>(&v)) return std::to_string(*i);
  if (const auto* d = std::get_if<double>(&v)) {
    char buf[64];
    std::string s(buf, std::to_chars(buf, buf + sizeof buf, *d).ptr);
    if (s.find_first_of(".eEn") == std::string::npos) s += ".0";  // 2.0, not 2: a real, not an integer
    return s;
  }
  if (const auto* t = std::get_if<std::string>(&v)) {
    std::string s = "'";
    for (char c : *t) s += c == '\'' ? std::string("''") : std::string(1, c);
    return s + "'";
  }
  static constexpr char hex[] = "0123456789abcdef";
  std::string s = "x'";
  for (unsigned char c : std::get<SqlBlob>(v).bytes) s += {hex[c >> 4], hex[c & 15]};
  return s + "'";
}

// Both tables, their columns aligned across the two.
inline std::string sql_tables(const std::vector<SqlRow>& expected, const std::vector<SqlRow>& actual) {
  std::vector<std::size_t> width;
  for (const auto* table : {&expected, &actual})
    for (const SqlRow& row : *table)
      for (std::size_t i = 0; i < row.size(); ++i) {
        if (width.size() <= i) width.resize(i + 1, 0);
        width[i] = std::max(width[i], sql_literal(row[i]).size());
      }
  auto print = [&](const std::vector<SqlRow>& table) {
    if (table.empty()) return std::string("  (no rows)\n");
    std::string s;
    for (const SqlRow& row : table) {
      s += "  |";
      for (std::size_t i = 0; i < row.size(); ++i) {
        const std::string v = sql_literal(row[i]);
        s += " " + v + std::string(width[i] - v.size(), ' ') + " |";
      }
      s += "\n";
    }
    return s;
  };
  auto count = [](std::size_t n) { return std::to_string(n) + (n == 1 ? " row" : " rows"); };
  return "expected " + count(expected.size()) + ":\n" + print(expected) + "but got " + count(actual.size()) +
         ":\n" + print(actual);
}

template <class V>
std::string printed(const V& v) {
  if constexpr (requires(std::ostream& os) { os << v; }) {
    std::ostringstream os;
    os << v;
    return os.str();
  } else {
    return "(a value without operator<<)";
  }
}

}  // namespace detail

template <class P>
class ProjectionScenario {
 public:
  static constexpr bool is_sql = P::projection_kind == ProjectionKind::sql;
  // The recorded time of events that do not set one: 2026-01-01T00:00:00Z.
  static constexpr Timestamp default_time{std::chrono::sys_days{std::chrono::year{2026} / 1 / 1}};

  // Builds the projection from `args` (SQL projections: and runs its setup() on a new, empty database).
  template <class... Args>
    requires std::constructible_from<P, Args...>
  explicit ProjectionScenario(Args&&... args) : projection_(std::forward<Args>(args)...) {
    if constexpr (is_sql) {
      db_.emplace(SqlDatabase::in_memory());
      try {
        db_->run_transaction([&](SqlSession& s) { static_cast<Projection&>(projection_).setup(s); });
      } catch (const std::exception& e) {
        fail("setup of projection " + std::string(P::name) + " failed: " + e.what());
      }
    }
  }
  ProjectionScenario(const ProjectionScenario&) = delete;
  ProjectionScenario& operator=(const ProjectionScenario&) = delete;

  // Events that do not name their stream are recorded in `stream_id` from now on.
  ProjectionScenario& in_stream(std::string stream_id) {
    stream_ = std::move(stream_id);
    return *this;
  }

  // Past events, handled in order. Each is a registered event, or recorded(event, envelope). A handler
  // that throws fails the scenario.
  template <detail::ScenarioEvent... E>
  ProjectionScenario& given(const E&... events) {
    (
        [&] {
          if (auto error = deliver(events))
            fail("given " + std::string(event_info_v<typename detail::Unwrap<E>::type>.name) + ": " + *error);
        }(),
        ...);
    return *this;
  }

  // The event under test. A handler that throws is recorded, not raised: then_error() matches it (and the
  // event's writes are rolled back); any other then_*() fails while it is unmatched.
  template <detail::ScenarioEvent E>
  ProjectionScenario& when(const E& event) {
    error_ = deliver(event);
    when_type_ = std::string(event_info_v<typename detail::Unwrap<E>::type>.name);
    error_matched_ = false;
    ran_ = true;
    return *this;
  }

  // SQL projections: `sql` returns exactly `expected`, row by row in order (give the query an ORDER BY).
  // Values compare by type and value: 2 (integer), 2.0 (real), "2" (text) and nullptr (NULL) all differ.
  ProjectionScenario& then_rows(std::string_view sql, const std::vector<SqlRow>& expected) {
    static_assert(is_sql, "then_rows needs a SqlProjection; use then_view for other projections");
    require_no_unmatched_error("then_rows");
    std::vector<SqlRow> actual;
    try {
      actual = db_->session().query(sql);
    } catch (const std::exception& e) {
      fail("then_rows: the query failed: " + std::string(e.what()));
    }
    if (actual != expected) fail("then_rows " + std::string(sql) + "\n" + detail::sql_tables(expected, actual));
    return *this;
  }

  // view(projection) == expected; the message prints both when they have operator<<.
  template <class F, class T>
  ProjectionScenario& then_view(F&& view, const T& expected) {
    require_no_unmatched_error("then_view");
    const auto actual = view(std::as_const(projection_));
    if (!(actual == expected))
      fail("then_view: expected " + detail::printed(expected) + ", got " + detail::printed(actual));
    return *this;
  }

  // The when() event's handler threw with a message containing `text`.
  ProjectionScenario& then_error(const std::string& text) {
    if (!ran_) fail("then_error() before when()");
    if (!error_) fail("expected an error containing '" + text + "', but " + when_type_ + " was handled");
    if (error_->find(text) == std::string::npos)
      fail("expected an error containing '" + text + "', got: " + *error_);
    error_matched_ = true;
    return *this;
  }

  P& projection() { return projection_; }
  // SQL projections: the read model's session, for checks then_rows cannot express.
  SqlSession& session() {
    static_assert(is_sql, "session() needs a SqlProjection");
    return db_->session();
  }

 private:
  // Records and handles one event; the handler's error message, if it threw.
  template <class T>
  std::optional<std::string> deliver(const T& given) {
    using U = detail::Unwrap<T>;
    using E = typename U::type;
    const Envelope& envelope = U::envelope(given);
    RecordedEvent r;
    r.position = ++position_;
    r.stream_id = envelope.stream_id.empty() ? stream_ : envelope.stream_id;
    r.version = ++versions_[r.stream_id];
    r.event_id = envelope.event_id ? *envelope.event_id
                                   : Uuid::name_based(Uuid{}, "evs.testing.event-" + std::to_string(r.position));
    r.type = std::string(event_info_v<E>.name);
    r.schema_version = event_info_v<E>.version;
    r.encoding = envelope.encoding;
    r.recorded_at = envelope.recorded_at.value_or(default_time);
    r.payload = encode(U::event(given), envelope.encoding);
    r.metadata = envelope.metadata;
    try {
      Projection& projection = projection_;
      if constexpr (is_sql)
        db_->run_transaction([&](SqlSession& s) { projection.handle(r, &s); });
      else
        projection.handle(r, nullptr);
    } catch (const std::exception& e) {
      return std::string(e.what());
    } catch (...) {
      return std::string("a non-standard exception");
    }
    return std::nullopt;
  }

  void require_no_unmatched_error(const char* what) const {
    if (ran_ && error_ && !error_matched_)
      fail(std::string(what) + ": the handler of " + when_type_ + " failed: " + *error_ +
           " (use then_error to expect it)");
  }

  [[noreturn]] static void fail(const std::string& message) { throw ScenarioFailure(message); }

  P projection_;
  std::optional<SqlDatabase> db_;
  std::string stream_ = "test-1";
  std::uint64_t position_ = 0;
  std::map<std::string, std::uint64_t> versions_;
  std::optional<std::string> error_;
  std::string when_type_;
  bool error_matched_ = false;
  bool ran_ = false;
};

}  // namespace evs::testing
