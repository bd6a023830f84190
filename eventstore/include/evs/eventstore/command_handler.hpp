// Command handling: load -> decide -> append with the loaded version as expectation. On a version conflict
// the aggregate is reloaded and the decision made again, a bounded number of times.
//
//   auto r = evs::handle_command(accounts, "acc-1", [&](Account& a) -> evs::Result<void> {
//     if (a.state().balance < amount) return evs::Error{evs::errc::invalid_argument, "insufficient funds"};
//     a.withdraw(amount);
//     return {};
//   });
#pragma once

#include "evs/eventstore/repository.hpp"

#include <string>
#include <type_traits>

namespace evs {

struct CommandOptions {
  int max_attempts = 5;               // total attempts, including the first
  bool create_if_missing = true;      // false: a missing stream is a stream_not_found error
  EventMetadata metadata;             // attached to every event the command appends
};

struct CommandResult {
  AppendResult append;                // what was appended (positions 0 if the decision raised nothing)
  std::uint64_t version = 0;          // the aggregate's version after the command
  int attempts = 0;                   // how many load/decide/append rounds it took
  std::size_t events = 0;             // how many events the command appended
};

// `decide(A&)` inspects the state and raises events; it returns void, or Result<void> to reject the command
// (the rejection is returned as is and nothing is appended). Errors: the decision's own rejections,
// retries_exhausted after max_attempts conflicts (message names the last conflict), and load/append errors.
template <class A, class Decide>
Result<CommandResult> handle_command(Repository<A>& repository, std::string_view id, Decide&& decide,
                                     const CommandOptions& options = {}) {
  Error last_conflict;
  for (int attempt = 1; attempt <= options.max_attempts; ++attempt) {
    auto loaded = options.create_if_missing ? repository.load_or_create(id) : repository.load(id);
    if (!loaded) return loaded.error();
    A& aggregate = *loaded;
    if constexpr (std::is_void_v<std::invoke_result_t<Decide&, A&>>) {
      decide(aggregate);
    } else {
      if (auto verdict = decide(aggregate); !verdict) return verdict.error();
    }
    const std::size_t raised = aggregate.pending_events().size();
    auto saved = repository.save(aggregate, options.metadata);
    if (saved) return CommandResult{*saved, aggregate.version(), attempt, raised};
    if (!saved.error().is(errc::wrong_expected_version)) return saved.error();
    last_conflict = saved.error();
  }
  return Error{errc::retries_exhausted, "gave up after " + std::to_string(options.max_attempts) +
                                            " conflicting attempts; last: " + last_conflict.what()};
}

}  // namespace evs
