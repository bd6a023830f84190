#include "children.hpp"

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <stdexcept>
#include <utility>

namespace bench {

Child::Child(const std::string& command) : command_(command), pipe_(popen(command.c_str(), "r")) {
  if (!pipe_) throw std::runtime_error("cannot run " + command);
}

Child::~Child() {
  if (pipe_) pclose(pipe_);
}

std::string Child::line() {
  std::string out;
  char buf[4096];
  while (std::fgets(buf, sizeof buf, pipe_)) {
    out += buf;
    if (!out.empty() && out.back() == '\n') {
      out.pop_back();
      return out;
    }
  }
  throw std::runtime_error("child ended early: " + command_ + (out.empty() ? "" : " (printed " + out + ")"));
}

std::string Child::finish() {
  std::string out;
  char buf[4096];
  while (std::fgets(buf, sizeof buf, pipe_)) out += buf;
  const int status = pclose(std::exchange(pipe_, nullptr));
  if (status != 0) throw std::runtime_error("child failed: " + command_);
  return out;
}

std::vector<std::string> run_children(const std::vector<std::string>& commands) {
  std::vector<std::unique_ptr<Child>> children;
  for (const std::string& cmd : commands) children.push_back(std::make_unique<Child>(cmd));
  std::vector<std::string> outputs;
  std::string failed;
  for (auto& child : children) {
    try {
      outputs.push_back(child->finish());
    } catch (const std::exception& e) {
      if (failed.empty()) failed = e.what();
    }
  }
  if (!failed.empty()) throw std::runtime_error(failed);
  return outputs;
}

std::string shell_quote(const std::string& s) {
  std::string q = "'";
  for (char c : s) {
    if (c == '\'') q += "'\\''";
    else q += c;
  }
  return q + "'";
}

double json_field(const std::string& out, const char* key) {
  const std::string k = std::string("\"") + key + "\":";
  const auto at = out.find(k);
  if (at == std::string::npos) throw std::runtime_error("child output lacks " + k + ": " + out);
  return std::atof(out.c_str() + at + k.size());
}

std::int64_t steady_ns(SteadyClock::time_point t) {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(t.time_since_epoch()).count();
}

SteadyClock::time_point steady_at(std::int64_t ns) {
  return SteadyClock::time_point(std::chrono::duration_cast<SteadyClock::duration>(std::chrono::nanoseconds(ns)));
}

void print_waits(std::size_t appends, std::size_t failures, double seconds, const std::vector<double>& ms) {
  std::printf("%s\n", Json().num("appends", std::uint64_t(appends)).num("failures", std::uint64_t(failures))
                          .num("seconds", seconds).num("p50_ms", percentile(ms, 50)).num("p99_ms", percentile(ms, 99))
                          .num("max_ms", ms.empty() ? NAN : *std::max_element(ms.begin(), ms.end()))
                          .text().c_str());
}

ProcessWaits parse_waits(const std::string& out) {
  return {json_field(out, "seconds"), json_field(out, "p50_ms"), json_field(out, "p99_ms"),
          json_field(out, "max_ms"), std::uint64_t(json_field(out, "failures"))};
}

Sample waits_sample(const std::vector<ProcessWaits>& w, std::uint64_t events, double& longest,
                    std::uint64_t& failures) {
  Sample s{events, 0};
  std::vector<double> p50, p99;
  for (const ProcessWaits& x : w) {
    s.seconds = std::max(s.seconds, x.seconds);
    p50.push_back(x.p50_ms);
    p99.push_back(x.p99_ms);
    longest = std::max(longest, x.max_ms);
    failures += x.failures;
  }
  s.p50_ms = median(p50);
  s.p99_ms = p99.empty() ? NAN : *std::max_element(p99.begin(), p99.end());
  return s;
}

namespace {

// "[a,b,...]" of one figure per process.
std::string per_process(const std::vector<ProcessWaits>& w, double ProcessWaits::*field) {
  std::string out = "[";
  for (std::size_t i = 0; i < w.size(); ++i) out += (i ? "," : "") + Json::number(w[i].*field);
  return out + "]";
}

}  // namespace

Json waits_detail(const ProcessRuns& evs, const ProcessRuns& base) {
  Json detail;
  detail.raw("p50_ms_per_process", per_process(evs.last, &ProcessWaits::p50_ms))
      .raw("p99_ms_per_process", per_process(evs.last, &ProcessWaits::p99_ms))
      .raw("max_ms_per_process", per_process(evs.last, &ProcessWaits::max_ms))
      .num("longest_wait_ms", evs.longest_ms)
      .num("failed_appends", evs.failures)
      .raw("baseline_p50_ms_per_process", per_process(base.last, &ProcessWaits::p50_ms))
      .raw("baseline_p99_ms_per_process", per_process(base.last, &ProcessWaits::p99_ms))
      .raw("baseline_max_ms_per_process", per_process(base.last, &ProcessWaits::max_ms))
      .num("baseline_longest_wait_ms", base.longest_ms)
      .num("baseline_failed_appends", base.failures);
  return detail;
}

}  // namespace bench
