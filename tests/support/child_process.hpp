// Real child processes for the crash, cross-process and CLI tests: start a program with its stdout (and
// optionally stderr) on a pipe, read it, kill it, wait for it.
#pragma once

#include <doctest/doctest.h>

#include <chrono>
#include <csignal>
#include <optional>
#include <poll.h>
#include <string>
#include <sys/wait.h>
#include <unistd.h>
#include <utility>
#include <vector>

namespace evs::test {

struct ChildProcess {
  pid_t pid = -1;
  int out = -1;  // read end of the child's stdout
};

// Starts `path` with `args`; `env` is set in the child only. With merge_stderr, stderr goes to the pipe too.
inline ChildProcess spawn_child(const std::string& path, std::vector<std::string> args,
                                const std::vector<std::pair<std::string, std::string>>& env = {},
                                bool merge_stderr = false) {
  args.insert(args.begin(), path);
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  int fds[2];
  REQUIRE(pipe(fds) == 0);
  const pid_t pid = fork();
  REQUIRE(pid >= 0);
  if (pid == 0) {
    dup2(fds[1], STDOUT_FILENO);
    if (merge_stderr) dup2(fds[1], STDERR_FILENO);
    close(fds[0]);
    close(fds[1]);
    for (const auto& [name, value] : env) setenv(name.c_str(), value.c_str(), 1);
    execv(argv[0], argv.data());
    _exit(127);
  }
  close(fds[1]);
  return {pid, fds[0]};
}

// Reads the pipe until the child closes it, then closes it.
inline std::string read_to_end(int fd) {
  std::string out;
  char buf[4096];
  ssize_t n;
  while ((n = read(fd, buf, sizeof buf)) > 0) out.append(buf, static_cast<std::size_t>(n));
  close(fd);
  return out;
}

// Reads one line (without its newline) from the pipe, waiting at most `limit`; nullopt when the limit passes
// or the child closes the pipe first.
inline std::optional<std::string> read_line_within(int fd, std::chrono::milliseconds limit) {
  const auto deadline = std::chrono::steady_clock::now() + limit;
  std::string line;
  for (;;) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) return std::nullopt;
    pollfd p{fd, POLLIN, 0};
    if (poll(&p, 1, static_cast<int>(left.count())) <= 0) continue;
    char c = 0;
    if (read(fd, &c, 1) != 1) return std::nullopt;
    if (c == '\n') return line;
    line += c;
  }
}

// Waits for the child: its exit code, or minus the signal that ended it.
inline int wait_child(pid_t pid) {
  int status = 0;
  waitpid(pid, &status, 0);
  return WIFEXITED(status) ? WEXITSTATUS(status) : -WTERMSIG(status);
}

}  // namespace evs::test
