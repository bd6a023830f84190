// Child processes of evs_bench: scenarios that measure several processes run each measured side as a child
// (`evs_bench --child-...`), start them together and collect the one JSON line each prints; and the figures
// of processes that append (their write waits), as the multi-process scenarios report them.
#pragma once

#include "report.hpp"

#include <cstdint>
#include <cstdio>
#include <string>
#include <vector>

namespace bench {

// A child process running a shell command, its standard output read through a pipe.
class Child {
 public:
  explicit Child(const std::string& command);
  ~Child();  // waits for it if finish() was not called
  Child(const Child&) = delete;
  Child& operator=(const Child&) = delete;
  // The next line of its output, without the newline; throws if it ended first.
  std::string line();
  // The rest of its output, after it exited; throws if it failed.
  std::string finish();

 private:
  std::string command_;
  FILE* pipe_ = nullptr;
};

// Runs the shell commands at once and returns each one's standard output, in order. Throws if one fails.
std::vector<std::string> run_children(const std::vector<std::string>& commands);

// `s` single-quoted for a shell command line.
std::string shell_quote(const std::string& s);

// A number from a child's one-line JSON output; throws if the key is missing.
double json_field(const std::string& out, const char* key);

// A time point of the steady clock as the nanosecond count a child gets on its command line (the steady
// clock is system-wide, so parent and children share it), and back.
std::int64_t steady_ns(SteadyClock::time_point t);
SteadyClock::time_point steady_at(std::int64_t ns);

// What one appending process measured.
struct ProcessWaits {
  double seconds = 0, p50_ms = 0, p99_ms = 0, max_ms = 0;
  std::uint64_t failures = 0;
};
// Prints {"appends","failures","seconds","p50_ms","p99_ms","max_ms"} (the child's side), from per-append
// waits in milliseconds.
void print_waits(std::size_t appends, std::size_t failures, double seconds, const std::vector<double>& ms);
// Reads what print_waits printed.
ProcessWaits parse_waits(const std::string& out);

// The processes' waits of one repetition, as a Sample: `events` over the slowest process's time, p50 = the
// median process's median, p99 = the worst process's p99. Adds to the running longest wait and failures.
Sample waits_sample(const std::vector<ProcessWaits>& w, std::uint64_t events, double& longest,
                    std::uint64_t& failures);

// The per-process figures of evs's and the baseline's last repetitions, the longest waits and failed
// appends, as a scenario's `detail`.
struct ProcessRuns {
  std::vector<ProcessWaits> last;
  double longest_ms = 0;
  std::uint64_t failures = 0;
};
Json waits_detail(const ProcessRuns& evs, const ProcessRuns& base);

}  // namespace bench
