// Golden payloads of every telemetry event (golden/<name>.v<version>.bin and .json): what stores hold must
// keep decoding, and re-encode byte for byte. Never regenerate a file; a new version gets new files.
#include "telemetry.hpp"

#include <evs/testing/golden.hpp>

#include <doctest/doctest.h>

using evs::testing::check_golden_event;

TEST_CASE("every telemetry event's golden payloads decode and re-encode byte for byte") {
  const std::filesystem::path dir = TELEMETRY_GOLDEN_DIR;
  CHECK_NOTHROW(check_golden_event(dir, telemetry::ReadingRecorded{"r2", 1234567, 1767225600000, -21.375, 99.5}));
  CHECK_NOTHROW(check_golden_event(dir, telemetry::CommandQueued{"r2", "drive 3m north"}));
  CHECK_NOTHROW(check_golden_event(dir, telemetry::CommandDelivered{"r2", "drive 3m north",
                                                                    "0190f5a2-7c3e-7b1a-9f00-00c0ffee0002"}));
}
