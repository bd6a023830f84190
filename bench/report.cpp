#include "report.hpp"

#include <malloc.h>

#include <cstdarg>
#include <cstdlib>
#include <cstring>
#include <fstream>

namespace bench {

double seconds_since(SteadyClock::time_point t0) {
  return std::chrono::duration<double>(SteadyClock::now() - t0).count();
}

double median(std::vector<double> v) {
  if (v.empty()) return NAN;
  std::sort(v.begin(), v.end());
  const std::size_t n = v.size();
  return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

double percentile(std::vector<double> v, double p) {
  if (v.empty()) return NAN;
  std::sort(v.begin(), v.end());
  const double rank = p / 100.0 * double(v.size() - 1);
  const std::size_t lo = std::size_t(rank);
  const std::size_t hi = std::min(lo + 1, v.size() - 1);
  return v[lo] + (v[hi] - v[lo]) * (rank - double(lo));
}

std::int64_t status_kib(const char* field) {
  std::ifstream in("/proc/self/status");
  std::string line;
  const std::size_t n = std::strlen(field);
  while (std::getline(in, line))
    if (line.compare(0, n, field) == 0 && line.size() > n && line[n] == ':') return std::atoll(line.c_str() + n + 1);
  return -1;
}

void reset_peak_rss() {
  malloc_trim(0);
  std::ofstream out("/proc/self/clear_refs");
  out << "5";
}

Summary summarize(const std::vector<Sample>& samples) {
  Summary s;
  std::vector<double> secs, rates, p50, p99;
  for (const Sample& x : samples) {
    secs.push_back(x.seconds);
    rates.push_back(x.rate());
    if (!std::isnan(x.p50_ms)) p50.push_back(x.p50_ms);
    if (!std::isnan(x.p99_ms)) p99.push_back(x.p99_ms);
  }
  if (!samples.empty()) s.events = samples.front().events;
  s.seconds = median(secs);
  s.rate = median(rates);
  s.p50_ms = median(p50);
  s.p99_ms = median(p99);
  return s;
}

void with_latencies(Sample& s, std::vector<double> ms) {
  s.p50_ms = percentile(ms, 50);
  s.p99_ms = percentile(ms, 99);
}

Json summary_json(const Summary& s, bool latency) {
  Json j;
  j.num("events", s.events).num("seconds", s.seconds).num("events_per_s", s.rate);
  if (latency) j.num("p50_ms", s.p50_ms).num("p99_ms", s.p99_ms);
  return j;
}

void emit(const Config& cfg, std::string_view scenario, const Json& params, const Summary& evs,
          const Summary& base, bool latency, double ratio, std::string_view target, std::optional<bool> met,
          Json extra) {
  Json j;
  j.str("scenario", scenario).obj("params", params).num("reps", cfg.quick ? 1 : cfg.reps);
  j.num("events", evs.events).num("seconds", evs.seconds).num("events_per_s", evs.rate);
  if (latency) j.num("p50_ms", evs.p50_ms).num("p99_ms", evs.p99_ms);
  j.num("peak_rss_mib", double(status_kib("VmHWM")) / 1024.0);
  j.obj("baseline", summary_json(base, latency));
  j.num("ratio", ratio);
  const std::string extra_text = extra.text();
  if (extra_text.size() > 2) j.raw("detail", extra_text);
  j.str("target", target);
  if (met && !cfg.quick) j.boolean("met", *met);
  else j.raw("met", "null");
  std::printf("%s\n", j.text().c_str());
  std::fflush(stdout);
}

void progress(const char* fmt, ...) {
  std::fprintf(stderr, "evs_bench: ");
  va_list args;
  va_start(args, fmt);
  std::vfprintf(stderr, fmt, args);
  va_end(args);
  std::fprintf(stderr, "\n");
}

}  // namespace bench
