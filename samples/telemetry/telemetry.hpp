// The telemetry sample's domain: rovers stream readings into per-rover streams, read models keep each
// rover's latest state and per-minute rollups, and commands to a rover are delivered over a radio link that
// may be down (retried with exponential backoff, delivered once).
//
//   ReadingRecorded   stream "rover-<id>":  one sensor sample (the rover's own clock, 10 Hz)
//   CommandQueued     stream "uplink-<id>": a command waiting for the radio; CommandDelivered when it got through
//   RoverLatest       SQL read model: rover_latest(rover, seq, sampled_at_ms, temperature_c, battery_pct, readings)
//   MinuteRollups     SQL read model: rover_minutes(rover, minute, readings, sum/min/max temperature) — slow on purpose
//   Uplink            side-effect handler: sends each queued command over the Radio; throws while the link is down
#pragma once

#include <evs/eventstore/event_store.hpp>
#include <evs/projections/process_manager.hpp>  // caused_by, derived_id
#include <evs/projections/projection.hpp>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <mutex>
#include <string>
#include <vector>

namespace telemetry {

// ---- Events (stored names and versions are on-disk format) -------------------------------------------

struct ReadingRecorded {
  std::string rover;
  std::uint64_t seq = 0;             // per rover, from 1
  std::int64_t sampled_at_ms = 0;    // the rover's clock (Unix ms)
  double temperature_c = 0;
  double battery_pct = 0;
};
EVS_EVENT(ReadingRecorded, "telemetry.reading_recorded", 1, rover, seq, sampled_at_ms, temperature_c, battery_pct)

struct CommandQueued {
  std::string rover;
  std::string command;  // e.g. "drive 3m north"
};
EVS_EVENT(CommandQueued, "telemetry.command_queued", 1, rover, command)

struct CommandDelivered {
  std::string rover;
  std::string command;
  std::string queued_event_id;  // the CommandQueued it answers
};
EVS_EVENT(CommandDelivered, "telemetry.command_delivered", 1, rover, command, queued_event_id)

std::string rover_stream(const std::string& rover);   // "rover-<id>"
std::string uplink_stream(const std::string& rover);  // "uplink-<id>"

// ---- Read models --------------------------------------------------------------------------------------

class RoverLatest : public evs::SqlProjection<RoverLatest, ReadingRecorded> {
 public:
  static constexpr std::string_view name = "rover_latest";
  void setup(evs::SqlSession& db);
  void handle(const ReadingRecorded& e, evs::SqlSession& db);
};

// Slow on purpose (`delay` per event, like a handler that calls something expensive), to show a
// projection falling behind a burst without slowing the writers, then catching up.
class MinuteRollups : public evs::SqlProjection<MinuteRollups, ReadingRecorded> {
 public:
  static constexpr std::string_view name = "minute_rollups";
  explicit MinuteRollups(std::chrono::microseconds delay = {}) : delay_(delay) {}
  void setup(evs::SqlSession& db);
  void handle(const ReadingRecorded& e, evs::SqlSession& db);

 private:
  std::chrono::microseconds delay_;
};

// ---- Commands over a flaky radio link -----------------------------------------------------------------

// A fake radio: the link of each rover is down until a given time. Records every attempt.
class Radio {
 public:
  struct Attempt {
    std::string rover, command;
    std::chrono::steady_clock::time_point at;
    bool delivered = false;
  };
  void link_down_until(const std::string& rover, std::chrono::steady_clock::time_point up);
  // Throws std::runtime_error while the rover's link is down.
  void send(const std::string& rover, const std::string& command);
  std::vector<Attempt> attempts() const;
  int deliveries(const std::string& command) const;

 private:
  mutable std::mutex mutex_;
  std::map<std::string, std::chrono::steady_clock::time_point> down_until_;
  std::vector<Attempt> attempts_;
};

// Effect handler: each CommandQueued is sent over the radio; a failure throws, so the engine retries it
// with the projection's RetryPolicy (exponential backoff with jitter) and its inbox keeps it from being
// sent twice once it got through. The delivery is recorded as CommandDelivered (idempotent: derived id).
class Uplink : public evs::EffectHandler<Uplink, CommandQueued> {
 public:
  static constexpr std::string_view name = "uplink";
  Uplink(evs::EventStore& store, Radio& radio) : store_(store), radio_(radio) {}
  void handle(const CommandQueued& e, const evs::RecordedEvent& m);

 private:
  evs::EventStore& store_;
  Radio& radio_;
};

// Appends CommandQueued to "uplink-<rover>".
evs::Result<evs::AppendResult> queue_command(evs::EventStore& store, const std::string& rover, const std::string& command);

// ---- The burst ----------------------------------------------------------------------------------------

struct BurstOptions {
  std::vector<std::string> rovers;         // one producer thread per rover
  std::size_t readings = 10'000;           // in total, split evenly
  std::chrono::milliseconds duration{1000};  // paced over about this long (0: as fast as possible)
  std::int64_t first_sample_ms = 0;        // the rovers' clock at their first buffered sample
};

struct BurstResult {
  std::size_t acknowledged = 0;   // appends acknowledged as stored
  std::size_t failed = 0;
  std::uint64_t transactions = 0;  // commits observed while the burst ran (group commit: many appends each)
  double seconds = 0;              // from the first append to the last acknowledgement
  double temperature_sum = 0;      // of every reading sent
};

// Each rover's producer appends its readings one append each, with append_async (group commit), to its own
// stream. `tick` is called about every 100 ms on the calling thread while the burst runs.
BurstResult run_burst(evs::EventStore& store, const BurstOptions& options, const std::function<void()>& tick = {});

// A reading's temperature, deterministic per rover and sequence number.
double temperature_of(const std::string& rover, std::uint64_t seq);

}  // namespace telemetry
