// Measurement and output: the run's configuration, samples and their medians, and the one-JSON-object-per-line
// output every scenario prints through emit().
#pragma once

#include "domain.hpp"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace fs = std::filesystem;

namespace bench {

struct Config {
  bool quick = false;
  bool reuse = false;  // --reuse DIR: use the data sets already in DIR (kept by --keep), keep everything
  int reps = 3;
  fs::path dir;
  std::string self;  // path of this executable (for child processes)
  std::string pg_url;  // the PostgreSQL server of the pg_ scenarios (EVS_PG_URL); empty: none
  std::size_t scale(std::size_t full, std::size_t minimum = 1) const {
    return quick ? std::max(full / 100, minimum) : full;
  }
};

double seconds_since(SteadyClock::time_point t0);
// The median / the p-th percentile (interpolated) of `v`; NaN if empty.
double median(std::vector<double> v);
double percentile(std::vector<double> v, double p);

// "VmHWM" / "VmRSS" of this process, in KiB.
std::int64_t status_kib(const char* field);
// Returns freed heap memory to the system and resets VmHWM to the current RSS (Linux >= 4.0), so each
// scenario reports its own peak.
void reset_peak_rss();

// One repetition's measurement.
struct Sample {
  std::uint64_t events = 0;
  double seconds = 0;
  double p50_ms = NAN;
  double p99_ms = NAN;
  double rate() const { return seconds > 0 ? double(events) / seconds : NAN; }
};

struct Summary {
  std::uint64_t events = 0;
  double seconds = NAN, rate = NAN, p50_ms = NAN, p99_ms = NAN;
};

// The medians of the samples' figures.
Summary summarize(const std::vector<Sample>& samples);
// Sets the sample's p50 / p99 from per-operation latencies.
void with_latencies(Sample& s, std::vector<double> ms);

// A JSON object written key by key, in order.
class Json {
 public:
  Json& num(std::string_view key, double v) { return raw(key, number(v)); }
  // A figure as the output writes it: 4 significant digits, whole numbers from 1000 on, null if not finite.
  static std::string number(double v) {
    char buf[64];
    if (!std::isfinite(v)) return "null";
    if (std::fabs(v) >= 1000) std::snprintf(buf, sizeof buf, "%.0f", v);
    else std::snprintf(buf, sizeof buf, "%.4g", v);
    return buf;
  }
  Json& num(std::string_view key, std::int64_t v) { return raw(key, std::to_string(v)); }
  Json& num(std::string_view key, std::uint64_t v) { return raw(key, std::to_string(v)); }
  Json& num(std::string_view key, int v) { return raw(key, std::to_string(v)); }
  Json& str(std::string_view key, std::string_view v) {
    std::string q = "\"";
    for (char c : v) {
      if (c == '"' || c == '\\') q += '\\';
      q += c;
    }
    return raw(key, q + "\"");
  }
  Json& boolean(std::string_view key, bool v) { return raw(key, v ? "true" : "false"); }
  Json& obj(std::string_view key, const Json& o) { return raw(key, o.text()); }
  Json& raw(std::string_view key, std::string_view value) {
    if (!body_.empty()) body_ += ',';
    body_.append("\"").append(key).append("\":").append(value);
    return *this;
  }
  std::string text() const { return "{" + body_ + "}"; }

 private:
  std::string body_;
};

Json summary_json(const Summary& s, bool latency);

// Prints one result line. `ratio`: evs relative to the baseline (see each scenario for its direction).
void emit(const Config& cfg, std::string_view scenario, const Json& params, const Summary& evs,
          const Summary& base, bool latency, double ratio, std::string_view target, std::optional<bool> met,
          Json extra = {});

// A progress line on stderr.
[[gnu::format(printf, 1, 2)]] void progress(const char* fmt, ...);

}  // namespace bench
