// Differential test: random sequences of operations run against the in-memory store (the reference) and the
// SQLite store must get identical answers: the same results or error codes, positions, versions, events and
// snapshots. Operations: appends with every kind of expectation (also empty, invalid and to streams that do
// not exist), idempotent retries (exact, partial, into another stream, mixed with new ids), stream reads
// forward and backward with version, count and position bounds, with and without the envelope, into fresh
// and reused buffers, read_all with every filter, versions, positions, and snapshots.
//
// Seeds: a fixed list, or the one in EVS_DIFFERENTIAL_SEED; EVS_DIFFERENTIAL_OPS sets the length of a run.
#include "../support/backends.hpp"

#include <doctest/doctest.h>

#include <cstdlib>
#include <future>
#include <optional>
#include <random>
#include <sstream>
#include <string>
#include <vector>

using namespace evs;

namespace {

const std::vector<std::string> stream_pool = {"a-1", "a-2", "b-1", "b-2", "c", "d-1"};
const std::vector<std::string> type_pool = {"t.one", "t.two", "t.three"};
const std::vector<std::string> category_pool = {"a", "b", "c", "d", "e"};

std::uint64_t env_number(const char* name, std::uint64_t fallback) {
  const char* v = std::getenv(name);
  return v && *v ? std::strtoull(v, nullptr, 10) : fallback;
}

std::string describe(const ExpectedVersion& e) { return e.to_string(); }

std::string describe(const AppendResult& r) {
  std::ostringstream s;
  s << "{version " << r.stream_version << ", positions " << r.first_position << ".." << r.last_position
    << (r.idempotent_replay ? ", replay" : "") << "}";
  return s.str();
}

// What a read without the envelope is guaranteed to carry; recorded_at is each backend's own clock.
std::string describe(const RecordedEvent& e, bool envelope) {
  std::ostringstream s;
  s << "#" << e.position << " " << e.stream_id << "@" << e.version << " " << e.type << "/v" << e.schema_version
    << " enc" << int(e.encoding) << " [" << e.payload << "]";
  if (envelope) {
    s << " id " << e.event_id.to_string() << " meta{" << e.metadata.correlation_id << "," << e.metadata.causation_id;
    for (const auto& [k, v] : e.metadata.user) s << "," << k << "=" << v;
    s << "}";
  }
  return s.str();
}

std::string describe(const std::vector<RecordedEvent>& events, bool envelope) {
  std::string s = "[" + std::to_string(events.size()) + "]";
  for (const auto& e : events) s += "\n    " + describe(e, envelope);
  return s;
}

std::string describe(const ReadAllBatch& b) { return "next " + std::to_string(b.next_position) + " " + describe(b.events, true); }

std::string describe(const std::optional<Snapshot>& s) {
  if (!s) return "none";
  std::ostringstream o;
  o << s->stream_id << "@" << s->version << " " << s->state_type << " fp " << s->fingerprint << " enc"
    << int(s->encoding) << " [" << s->payload << "]";
  return o.str();
}

std::string describe(std::uint64_t n) { return std::to_string(n); }

// Errors compare by code only: messages are each backend's own words.
std::string error_answer(const Error& e) { return "error " + std::to_string(e.code.value()); }

template <class T, class... Extra>
std::string answer(const Result<T>& r, const Extra&... extra) {
  return r ? describe(*r, extra...) : error_answer(r.error());
}
inline std::string answer(const Result<void>& r) { return r ? std::string("ok") : error_answer(r.error()); }

// One run: both stores, one random sequence.
class Run {
 public:
  explicit Run(std::uint64_t seed) : rng_(seed) {
    SqliteOptions o;
    o.path = dir_ / "events.db";
    o.durability = Durability::normal;
    sqlite_ = std::make_unique<SqliteEventStore>(o);
  }

  // Runs `ops` operations; returns a description of the first divergence, or nothing.
  std::optional<std::string> play(int ops) {
    for (int i = 0; i < ops; ++i) {
      std::string op, a, b;
      step(op, a, b);
      if (a != b) return "operation " + std::to_string(i) + ": " + op + "\n  memory: " + a + "\n  sqlite: " + b;
    }
    return std::nullopt;
  }

 private:
  std::uint64_t pick(std::uint64_t n) { return std::uniform_int_distribution<std::uint64_t>(0, n - 1)(rng_); }
  bool chance(int percent) { return pick(100) < static_cast<std::uint64_t>(percent); }
  template <class C>
  const auto& any_of(const C& c) { return c[pick(c.size())]; }

  std::uint64_t version_of(const std::string& stream) { return memory_.stream_version(stream).value(); }
  std::uint64_t head() { return memory_.last_position().value(); }

  // A version near the interesting ones: 0, the current, one past it, or any in between.
  std::uint64_t near_version(std::uint64_t current) {
    switch (pick(5)) {
      case 0: return 0;
      case 1: return current;
      case 2: return current + 1;
      case 3: return end_of_stream;
      default: return pick(current + 3);
    }
  }

  ExpectedVersion expectation(const std::string& stream) {
    const std::uint64_t current = version_of(stream);
    switch (pick(6)) {
      case 0: return ExpectedVersion::any();
      case 1: return ExpectedVersion::no_stream();
      case 2: return ExpectedVersion::stream_exists();
      case 3: return ExpectedVersion::exact(current);
      case 4: return ExpectedVersion::exact(current + 1);
      default: return ExpectedVersion::exact(pick(current + 2));
    }
  }

  EventData new_event() {
    EventData e;
    e.type = any_of(type_pool);
    e.schema_version = static_cast<std::uint32_t>(1 + pick(3));
    e.encoding = chance(50) ? Encoding::binary : Encoding::json;
    e.payload = "p" + std::to_string(counter_++) + (chance(10) ? std::string("\0\x01\xff", 3) : std::string());
    if (chance(30)) e.metadata.correlation_id = "corr-" + std::to_string(pick(3));
    if (chance(20)) e.metadata.causation_id = "cause-" + std::to_string(pick(3));
    if (chance(20)) e.metadata.user["who"] = "user-" + std::to_string(pick(3));
    return e;
  }

  std::vector<EventData> new_events(std::size_t n) {
    std::vector<EventData> v;
    for (std::size_t i = 0; i < n; ++i) v.push_back(new_event());
    return v;
  }

  // A batch for an append: new events, a retry of an earlier batch (whole, partial, mixed with new events),
  // or an invalid one.
  std::vector<EventData> batch(std::string& kind) {
    if (!sent_.empty() && chance(35)) {
      const std::vector<EventData>& earlier = any_of(sent_);
      switch (pick(4)) {
        case 0:
        case 1: kind = "retry"; return earlier;
        case 2: {
          kind = "partial retry";
          const std::size_t from = pick(earlier.size());
          return {earlier.begin() + static_cast<std::ptrdiff_t>(from), earlier.end()};
        }
        default: {
          kind = "retry mixed with new events";
          std::vector<EventData> v = earlier;
          v.push_back(new_event());
          return v;
        }
      }
    }
    if (chance(5)) {
      kind = "invalid";
      std::vector<EventData> v = new_events(2);
      if (chance(50)) v[1].event_id = v[0].event_id;  // an id repeated inside the batch
      else v[pick(2)].type.clear();
      return v;
    }
    kind = "new";
    return new_events(chance(8) ? 0 : 1 + pick(3));
  }

  std::string stream() { return chance(3) ? std::string() : any_of(stream_pool); }

  void step(std::string& op, std::string& a, std::string& b) {
    const std::uint64_t kind = pick(100);
    if (kind < 40) {
      const std::string s = stream();
      std::string what;
      std::vector<EventData> events = batch(what);
      const ExpectedVersion e = expectation(s);
      op = "append " + what + " of " + std::to_string(events.size()) + " to '" + s + "' expecting " + describe(e);
      if (chance(25)) {
        Result<AppendResult> ra = Error{errc::io_error}, rb = Error{errc::io_error};
        memory_.append_async(s, e, events, [&](Result<AppendResult> r) { ra = std::move(r); });
        std::promise<Result<AppendResult>> done;
        sqlite_->append_async(s, e, events, [&](Result<AppendResult> r) { done.set_value(std::move(r)); });
        rb = done.get_future().get();
        op += " (async)";
        a = answer(ra), b = answer(rb);
      } else {
        a = answer(memory_.append(s, e, events));
        b = answer(sqlite_->append(s, e, events));
      }
      if (!events.empty()) sent_.push_back(std::move(events));
    } else if (kind < 65) {
      const std::string s = chance(10) ? std::string("nowhere-1") : any_of(stream_pool);
      ReadStreamOptions o;
      o.direction = chance(50) ? Direction::forward : Direction::backward;
      o.from_version = near_version(version_of(s));
      if (chance(60)) o.max_count = pick(6);
      if (chance(40)) o.until_position = pick(head() + 3);
      o.envelope = chance(60);
      std::ostringstream d;
      d << "read_stream '" << s << "' " << (o.direction == Direction::forward ? "forward" : "backward") << " from "
        << o.from_version << " max " << o.max_count << " until " << o.until_position << (o.envelope ? "" : " lean");
      if (chance(30)) {
        d << " (into reused buffers)";
        const auto ra = memory_.read_stream_into(memory_page_, s, o);
        const auto rb = sqlite_->read_stream_into(sqlite_page_, s, o);
        a = ra ? describe(memory_page_, o.envelope) : answer(ra);
        b = rb ? describe(sqlite_page_, o.envelope) : answer(rb);
      } else {
        a = answer(memory_.read_stream(s, o), o.envelope);
        b = answer(sqlite_->read_stream(s, o), o.envelope);
      }
      op = d.str();
    } else if (kind < 85) {
      const std::uint64_t from = chance(10) ? 0 : pick(head() + 3);
      const std::size_t max = chance(10) ? 0 : 1 + pick(8);
      ReadAllFilter f;
      if (chance(40))
        for (const auto& t : type_pool)
          if (chance(50)) f.event_types.push_back(t);
      if (chance(40))
        for (const auto& c : category_pool)
          if (chance(40)) f.categories.push_back(c);
      std::ostringstream d;
      d << "read_all from " << from << " max " << max << " types";
      for (const auto& t : f.event_types) d << " " << t;
      d << " categories";
      for (const auto& c : f.categories) d << " " << c;
      if (chance(30)) {
        d << " (into reused buffers)";
        const auto ra = memory_.read_all_into(memory_batch_, from, max, f);
        const auto rb = sqlite_->read_all_into(sqlite_batch_, from, max, f);
        a = ra ? describe(memory_batch_) : answer(ra);
        b = rb ? describe(sqlite_batch_) : answer(rb);
      } else {
        a = answer(memory_.read_all(from, max, f));
        b = answer(sqlite_->read_all(from, max, f));
      }
      op = d.str();
    } else if (kind < 90) {
      const std::string s = chance(20) ? std::string("nowhere-1") : any_of(stream_pool);
      op = "stream_version '" + s + "' and last_position";
      a = answer(memory_.stream_version(s)) + " " + answer(memory_.last_position());
      b = answer(sqlite_->stream_version(s)) + " " + answer(sqlite_->last_position());
    } else if (kind < 95) {
      Snapshot snap;
      snap.stream_id = stream();
      snap.version = near_version(version_of(snap.stream_id));
      if (snap.version == end_of_stream) snap.version = version_of(snap.stream_id);
      snap.state_type = "State";
      snap.fingerprint = pick(3);
      snap.encoding = chance(50) ? Encoding::binary : Encoding::json;
      snap.payload = "s" + std::to_string(counter_++);
      op = "save_snapshot '" + snap.stream_id + "' at " + std::to_string(snap.version);
      a = answer(memory_.save_snapshot(snap));
      b = answer(sqlite_->save_snapshot(snap));
    } else {
      const std::string s = chance(20) ? std::string("nowhere-1") : any_of(stream_pool);
      const std::uint64_t max = chance(50) ? end_of_stream : pick(version_of(s) + 2);
      op = "load_snapshot '" + s + "' max " + std::to_string(max);
      a = answer(memory_.load_snapshot(s, max));
      b = answer(sqlite_->load_snapshot(s, max));
    }
  }

  std::mt19937_64 rng_;
  test::TempDir dir_;
  MemoryEventStore memory_;
  std::unique_ptr<SqliteEventStore> sqlite_;
  std::vector<std::vector<EventData>> sent_;  // every batch appended so far, for retries
  std::uint64_t counter_ = 0;
  std::vector<RecordedEvent> memory_page_, sqlite_page_;
  ReadAllBatch memory_batch_, sqlite_batch_;
};

}  // namespace

TEST_CASE("the in-memory and the SQLite store answer every random sequence of operations identically") {
  std::vector<std::uint64_t> seeds = {1, 2, 3, 5, 8, 13, 21, 34};
  if (const std::uint64_t seed = env_number("EVS_DIFFERENTIAL_SEED", 0)) seeds = {seed};
  const int ops = static_cast<int>(env_number("EVS_DIFFERENTIAL_OPS", 1500));
  for (const std::uint64_t seed : seeds) {
    CAPTURE(seed);
    Run run(seed);
    const auto divergence = run.play(ops);
    CHECK_MESSAGE(!divergence, "seed " << seed << " (rerun with EVS_DIFFERENTIAL_SEED=" << seed << "): "
                                       << divergence.value_or(""));
  }
}
