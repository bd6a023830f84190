// The read models and the uplink, one event at a time (given/when/then through the engine's dispatch path
// and SQL session).
#include "telemetry.hpp"

#include <evs/eventstore/memory_event_store.hpp>
#include <evs/testing/projection_scenario.hpp>

#include <doctest/doctest.h>

using namespace telemetry;
using namespace std::chrono_literals;
using evs::testing::ProjectionScenario;

TEST_CASE("rover latest keeps each rover's newest sample by sequence number, and counts every reading") {
  ProjectionScenario<RoverLatest>()
      .given(ReadingRecorded{"a", 1, 60'000, -50.5, 99.0}, ReadingRecorded{"a", 3, 60'200, -49.25, 98.5},
             ReadingRecorded{"bb", 1, 60'000, -40.0, 50.0})
      .when(ReadingRecorded{"a", 2, 60'100, -51.0, 98.75})  // older than seq 3: counted, not kept
      .then_rows("SELECT rover, seq, sampled_at_ms, temperature_c, battery_pct, readings FROM rover_latest ORDER BY rover",
                 {{"a", 3, 60'200, -49.25, 98.5, 3}, {"bb", 1, 60'000, -40.0, 50.0, 1}});
}

TEST_CASE("minute rollups count, sum and bound the temperatures per rover and minute of the rover's clock") {
  ProjectionScenario<MinuteRollups>()
      .given(ReadingRecorded{"a", 1, 60'000, -50.0, 99}, ReadingRecorded{"a", 2, 119'999, -48.5, 99},
             ReadingRecorded{"a", 3, 120'000, -47.0, 99})
      .when(ReadingRecorded{"bb", 1, 61'000, -30.0, 99})
      .then_rows("SELECT rover, minute, readings, sum_temperature_c, min_temperature_c, max_temperature_c "
                 "FROM rover_minutes ORDER BY rover, minute",
                 {{"a", 1, 2, -98.5, -50.0, -48.5}, {"a", 2, 1, -47.0, -47.0, -47.0}, {"bb", 1, 1, -30.0, -30.0, -30.0}});
}

TEST_CASE("the uplink fails while the link is down, then records the delivery once, linked to the queued command") {
  evs::MemoryEventStore store;
  Radio radio;
  radio.link_down_until("a", std::chrono::steady_clock::now() + 1h);
  ProjectionScenario<Uplink> uplink(store, radio);
  const evs::Uuid queued_id = evs::Uuid::generate();
  const auto queued = evs::testing::recorded(CommandQueued{"a", "drive 3m north"}, {.stream_id = "uplink-a", .event_id = queued_id});
  uplink.when(queued).then_error("no carrier: the link to a is down");
  CHECK(store.read_all(1, 10).value().events.empty());  // nothing recorded

  radio.link_down_until("a", std::chrono::steady_clock::now());
  uplink.when(queued).when(queued);  // delivered, then delivered again (a redelivery)
  const auto stream = store.read_stream("uplink-a").value();
  REQUIRE(stream.size() == 1);
  const auto delivered = evs::decode<CommandDelivered>(stream[0].payload, stream[0].encoding).value();
  CHECK(delivered.command == "drive 3m north");
  CHECK(delivered.queued_event_id == queued_id.to_string());
  CHECK(stream[0].metadata.causation_id == queued_id.to_string());
  CHECK(radio.deliveries("drive 3m north") == 2);
}
