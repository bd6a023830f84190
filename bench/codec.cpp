// codec_cereal: the cereal archives against the codec's direct path.
#include "data.hpp"
#include "domain.hpp"
#include "raw.hpp"
#include "report.hpp"
#include "scenarios.hpp"

#include <evs/core/cereal.hpp>
#include <evs/core/codec.hpp>

#include <stdexcept>
#include <string>
#include <vector>

namespace bench {

// ---- codec_cereal -----------------------------------------------------------------------------------------

namespace {

// Encodes then decodes `n` events, through the codec (evs::encode_to / decode_into) or through the cereal
// archives (evs::encode_cereal / decode_cereal); both write the same bytes.
Sample codec_round_trips(std::size_t n, evs::Encoding enc, bool cereal) {
  bench::Deposited e{"account-042", 1234, 0, bench::memo}, back;
  std::string bytes;
  std::int64_t check = 0;
  const auto t0 = SteadyClock::now();
  for (std::size_t i = 0; i < n; ++i) {
    e.seq = static_cast<std::int64_t>(i);
    if (cereal) {
      bytes = evs::encode_cereal(e, enc);
      if (!evs::decode_cereal(bytes, enc, back)) throw std::runtime_error("codec_cereal: decode failed");
    } else {
      bytes.clear();
      evs::encode_to(bytes, e, enc);
      if (!evs::decode_into(bytes, enc, back)) throw std::runtime_error("codec_cereal: decode failed");
    }
    check += back.seq;
  }
  const double s = seconds_since(t0);
  if (check != static_cast<std::int64_t>(n) * static_cast<std::int64_t>(n - 1) / 2)
    throw std::runtime_error("codec_cereal: wrong values");
  return {n, s};
}

}  // namespace

void scenario_codec_cereal(const Config& cfg, DataSets&) {
  const std::size_t n = cfg.quick ? 10'000 : 1'000'000;
  for (const evs::Encoding enc : {evs::Encoding::binary, evs::Encoding::json}) {
    std::vector<Sample> cereal_s, codec_s;
    for (int r = 0; r < cfg.reps; ++r) {
      codec_s.push_back(codec_round_trips(n, enc, false));
      cereal_s.push_back(codec_round_trips(n, enc, true));
    }
    const Summary c = summarize(cereal_s), b = summarize(codec_s);
    emit(cfg, "codec_cereal",
         Json().str("encoding", enc == evs::Encoding::binary ? "binary" : "json").str("baseline", "the codec's direct path"),
         c, b, false, c.rate / b.rate, "informational", std::nullopt);
  }
}

}  // namespace bench
