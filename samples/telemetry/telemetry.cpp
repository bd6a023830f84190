#include "telemetry.hpp"

#include <cmath>
#include <condition_variable>
#include <stdexcept>
#include <thread>

namespace telemetry {

std::string rover_stream(const std::string& rover) { return "rover-" + rover; }
std::string uplink_stream(const std::string& rover) { return "uplink-" + rover; }

// ---- Read models --------------------------------------------------------------------------------------

void RoverLatest::setup(evs::SqlSession& db) {
  db.exec("CREATE TABLE IF NOT EXISTS rover_latest (rover TEXT PRIMARY KEY, seq INTEGER NOT NULL, "
          "sampled_at_ms INTEGER NOT NULL, temperature_c REAL NOT NULL, battery_pct REAL NOT NULL, "
          "readings INTEGER NOT NULL)");
}
void RoverLatest::handle(const ReadingRecorded& e, evs::SqlSession& db) {
  // Readings of one rover arrive in stream order; keep the newest sample (by the rover's sequence number).
  db.exec("INSERT INTO rover_latest VALUES (?1, ?2, ?3, ?4, ?5, 1) ON CONFLICT(rover) DO UPDATE SET "
          "readings = readings + 1, seq = max(seq, excluded.seq), "
          "sampled_at_ms = CASE WHEN excluded.seq > seq THEN excluded.sampled_at_ms ELSE sampled_at_ms END, "
          "temperature_c = CASE WHEN excluded.seq > seq THEN excluded.temperature_c ELSE temperature_c END, "
          "battery_pct = CASE WHEN excluded.seq > seq THEN excluded.battery_pct ELSE battery_pct END",
          {e.rover, static_cast<std::int64_t>(e.seq), e.sampled_at_ms, e.temperature_c, e.battery_pct});
}

void MinuteRollups::setup(evs::SqlSession& db) {
  db.exec("CREATE TABLE IF NOT EXISTS rover_minutes (rover TEXT NOT NULL, minute INTEGER NOT NULL, "
          "readings INTEGER NOT NULL, sum_temperature_c REAL NOT NULL, min_temperature_c REAL NOT NULL, "
          "max_temperature_c REAL NOT NULL, PRIMARY KEY (rover, minute))");
}
void MinuteRollups::handle(const ReadingRecorded& e, evs::SqlSession& db) {
  if (delay_.count() > 0) std::this_thread::sleep_for(delay_);
  db.exec("INSERT INTO rover_minutes VALUES (?1, ?2, 1, ?3, ?3, ?3) ON CONFLICT(rover, minute) DO UPDATE SET "
          "readings = readings + 1, sum_temperature_c = sum_temperature_c + ?3, "
          "min_temperature_c = min(min_temperature_c, ?3), max_temperature_c = max(max_temperature_c, ?3)",
          {e.rover, e.sampled_at_ms / 60'000, e.temperature_c});
}

// ---- Radio and uplink ---------------------------------------------------------------------------------

void Radio::link_down_until(const std::string& rover, std::chrono::steady_clock::time_point up) {
  std::lock_guard lock(mutex_);
  down_until_[rover] = up;
}

void Radio::send(const std::string& rover, const std::string& command) {
  std::lock_guard lock(mutex_);
  const auto now = std::chrono::steady_clock::now();
  auto it = down_until_.find(rover);
  const bool up = it == down_until_.end() || now >= it->second;
  attempts_.push_back({rover, command, now, up});
  if (!up) throw std::runtime_error("no carrier: the link to " + rover + " is down");
}

std::vector<Radio::Attempt> Radio::attempts() const {
  std::lock_guard lock(mutex_);
  return attempts_;
}

int Radio::deliveries(const std::string& command) const {
  std::lock_guard lock(mutex_);
  int n = 0;
  for (const auto& a : attempts_) n += a.delivered && a.command == command ? 1 : 0;
  return n;
}

void Uplink::handle(const CommandQueued& e, const evs::RecordedEvent& m) {
  radio_.send(e.rover, e.command);  // throws while the link is down: the engine retries with backoff
  auto r = store_.append_event(uplink_stream(e.rover), evs::ExpectedVersion::any(),
                               CommandDelivered{e.rover, e.command, m.event_id.to_string()},
                               {.metadata = evs::caused_by(m),
                                .event_id = evs::derived_id(m.event_id, "delivered")});  // recorded twice, stored once
  if (!r) throw evs::Exception(r.error());
}

evs::Result<evs::AppendResult> queue_command(evs::EventStore& store, const std::string& rover, const std::string& command) {
  return store.append_event(uplink_stream(rover), evs::ExpectedVersion::any(), CommandQueued{rover, command},
                            {.metadata = {.user = {{"who", "mission-control"}}}});
}

// ---- The burst ----------------------------------------------------------------------------------------

double temperature_of(const std::string& rover, std::uint64_t seq) {
  const double base = -60.0 + static_cast<double>(rover.size() * 7 % 20);
  return std::round((base + 15.0 * std::sin(static_cast<double>(seq) / 600.0)) * 100.0) / 100.0;
}

BurstResult run_burst(evs::EventStore& store, const BurstOptions& options, const std::function<void()>& tick) {
  BurstResult result;
  std::atomic<std::uint64_t> transactions{0};
  const auto listener = store.add_commit_listener([&](std::uint64_t) { ++transactions; });

  const std::size_t per_rover = options.readings / options.rovers.size();
  std::atomic<std::size_t> acknowledged{0}, failed{0}, outstanding{0};
  std::mutex done_mutex;
  std::condition_variable done;
  const auto start = std::chrono::steady_clock::now();
  std::vector<std::thread> producers;
  std::vector<double> sums(options.rovers.size(), 0.0);
  for (std::size_t r = 0; r < options.rovers.size(); ++r) {
    producers.emplace_back([&, r] {
      const std::string& rover = options.rovers[r];
      const std::string stream = rover_stream(rover);
      const std::size_t count = r + 1 == options.rovers.size() ? options.readings - per_rover * r : per_rover;
      for (std::size_t i = 1; i <= count; ++i) {
        if (options.duration.count() > 0) {  // pace: reading i is due at i/count of the duration
          const auto due = start + options.duration * static_cast<std::int64_t>(i) / static_cast<std::int64_t>(count);
          std::this_thread::sleep_until(due);
        }
        const double t = temperature_of(rover, i);
        sums[r] += t;
        const std::int64_t sampled_at = options.first_sample_ms + static_cast<std::int64_t>(i) * 100;
        evs::EventData d =
            evs::make_event_data(ReadingRecorded{rover, i, sampled_at, t, 100.0 - static_cast<double>(i) * 0.004});
        ++outstanding;
        store.append_async(stream, evs::ExpectedVersion::any(), std::span(&d, 1), [&](evs::Result<evs::AppendResult> res) {
          (res ? acknowledged : failed)++;
          std::lock_guard lock(done_mutex);
          --outstanding;
          done.notify_all();
        });
      }
    });
  }
  // Tick while producing; then wait for every acknowledgement.
  std::atomic<bool> produced{false};
  std::thread join_all([&] {
    for (auto& p : producers) p.join();
    produced = true;
  });
  auto next_tick = std::chrono::steady_clock::now() + std::chrono::milliseconds(100);
  for (;;) {
    std::unique_lock lock(done_mutex);
    if (produced && outstanding == 0) break;
    done.wait_until(lock, next_tick);
    if (std::chrono::steady_clock::now() >= next_tick) {
      lock.unlock();
      if (tick) tick();
      next_tick += std::chrono::milliseconds(100);
    }
  }
  join_all.join();
  result.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  store.remove_commit_listener(listener);
  result.acknowledged = acknowledged;
  result.failed = failed;
  result.transactions = transactions;
  for (double s : sums) result.temperature_sum += s;
  return result;
}

}  // namespace telemetry
