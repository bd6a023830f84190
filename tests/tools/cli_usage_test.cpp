// Every command treats usage the same way: --help prints its help and exits 0; an unknown command or an
// extra argument is bad usage (exit 2, one line naming the usage), with or without --help. And --version.
#include "cli_support.hpp"

#include <doctest/doctest.h>

#include <regex>

using namespace clitest;

namespace {

struct Command {
  std::string binary;
  std::string program;           // as errors name it
  std::vector<std::string> path;  // the command words
  std::vector<std::string> args;  // the rest of a valid command line (without --db)
};

std::string joined(const std::vector<std::string>& words) {
  std::string out;
  for (const auto& w : words) out += (out.empty() ? "" : " ") + w;
  return out;
}

}  // namespace

TEST_SUITE("cli") {

TEST_CASE("every command prints its help with --help, and refuses an extra argument with or without --help") {
  Fixture f;
  const std::string file = (f.dir / "none.jsonl").string();
  const std::vector<Command> commands = {
      {evs_bin, "evs", {"streams"}, {}},
      {evs_bin, "evs", {"read"}, {"order-1"}},
      {evs_bin, "evs", {"tail"}, {"--count", "1"}},
      {evs_bin, "evs", {"stats"}, {}},
      {evs_bin, "evs", {"check"}, {}},
      {evs_bin, "evs", {"export"}, {"--all"}},
      {evs_bin, "evs", {"import"}, {file}},
      {evs_bin, "evs", {"projections"}, {}},
      {evs_bin, "evs", {"dead-letters", "list"}, {}},
      {evs_bin, "evs", {"dead-letters", "show"}, {"1"}},
      {evs_bin, "evs", {"dead-letters", "retry"}, {"1"}},
      {evs_bin, "evs", {"dead-letters", "skip"}, {"1"}},
      {shop_bin, "shop", {"rebuild"}, {"orders_by_customer"}},
      {shop_bin, "shop", {"replay"}, {"orders_by_customer", "--until", "1"}},
  };
  for (const auto& c : commands) {
    const std::string path = c.program + " " + joined(c.path);
    CAPTURE(path);
    auto with = [&](std::vector<std::string> tail) {
      auto args = c.path;
      args.insert(args.end(), tail.begin(), tail.end());
      args.insert(args.end(), {"--db", f.db});
      return args;
    };

    auto help = run(c.binary, with({"--help"}));
    CHECK(help.code == 0);
    CHECK(help.err.empty());
    CHECK(contains(help.out, "Usage: " + path));

    auto extra_args = c.args;
    extra_args.push_back("stray");
    auto extra = run(c.binary, with(extra_args));
    check_one_line_error(extra, 2, c.program);
    CHECK(contains(extra.err, "stray"));
    CHECK(contains(extra.err, "usage: " + path));

    extra_args.push_back("--help");
    auto extra_help = run(c.binary, with(extra_args));
    check_one_line_error(extra_help, 2, c.program);
    CHECK(extra_help.err == extra.err);
  }
}

TEST_CASE("an unknown command is bad usage with or without --help, and the standalone tool says where rebuild lives") {
  Fixture f;
  for (const char* command : {"rebuild", "replay", "frobnicate"}) {
    CAPTURE(command);
    auto plain = run(evs_bin, f.with_db({command, "x"}));
    auto help = run(evs_bin, f.with_db({command, "--help"}));
    check_one_line_error(plain, 2);
    check_one_line_error(help, 2);
    CHECK(plain.err == help.err);
    CHECK(contains(plain.err, "unknown command '" + std::string(command) + "'"));
    CHECK(contains(plain.err, "usage: evs [OPTIONS] SUBCOMMAND"));
    CHECK(contains(plain.err, "embeds evs::cli") == (std::string(command) != "frobnicate"));
  }
  auto nested = run(evs_bin, f.with_db({"dead-letters", "frobnicate", "--help"}));
  check_one_line_error(nested, 2);
  CHECK(contains(nested.err, "unknown command 'frobnicate'; commands: list, show, retry, skip"));

  // A projection the application does not define is bad usage too.
  auto unknown = run(shop_bin, f.with_db({"rebuild", "nope"}));
  check_one_line_error(unknown, 2, "shop");
  CHECK(contains(unknown.err, "unknown projection 'nope'; known: orders_by_customer"));
}

TEST_CASE("--version prints the version and exits 0") {
  auto standalone = run(evs_bin, {"--version"});
  CHECK(standalone.code == 0);
  CHECK(standalone.err.empty());
  CHECK(std::regex_match(standalone.out, std::regex("evs [0-9]+\\.[0-9]+\\.[0-9]+\n")));
  auto embedded = run(shop_bin, {"--version"});
  CHECK(embedded.code == 0);
  CHECK(std::regex_match(embedded.out, std::regex("shop \\(evs [0-9]+\\.[0-9]+\\.[0-9]+\\)\n")));
  CHECK(contains(run(evs_bin, {"--help"}).out, "--version"));
}

}  // TEST_SUITE
