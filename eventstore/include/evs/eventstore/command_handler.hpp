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

#include <optional>
#include <string>
#include <type_traits>

namespace evs {

struct CommandOptions {
  int max_attempts = 5;               // total attempts, including the first; < 1 is an invalid_argument error
  bool create_if_missing = true;      // false: a missing stream is a stream_not_found error
  EventMetadata metadata;             // attached to every event the command appends
  // Makes the command idempotent: its i-th event gets the id command_event_id(*command_id, i), and a
  // command whose events are already stored (a retry after a lost answer, a crash between the append and
  // its acknowledgement, a redelivered message) is decided again on the state just before them, so it
  // appends nothing and returns the original result (append.idempotent_replay = true). `decide` must be
  // deterministic: on the same state it raises the same number of events. See Repository::load_for_command.
  std::optional<Uuid> command_id;
};

struct CommandResult {
  AppendResult append;                // what was appended (positions 0 if the decision raised nothing);
                                      // a retried command_id: the original append, idempotent_replay = true
  std::uint64_t version = 0;          // the aggregate's version after the command
  int attempts = 0;                   // how many load/decide/append rounds it took
  std::size_t events = 0;             // how many events the command appended
};

// `decide(A&)` inspects the state and raises events; it returns void, or Result<void> to reject the command
// (the rejection is returned as is and nothing is appended). Errors: the decision's own rejections,
// invalid_argument for max_attempts < 1 (nothing is loaded or decided),
// retries_exhausted after max_attempts conflicts (message names the last conflict), and load/append errors.
template <class A, class Decide>
[[nodiscard]] Result<CommandResult> handle_command(Repository<A>& repository, std::string_view id,
                                                   Decide&& decide, const CommandOptions& options = {}) {
  if (options.max_attempts < 1)
    return Error{errc::invalid_argument, "max_attempts is " + std::to_string(options.max_attempts) +
                                             ": a command needs at least one attempt"};
  Error last_conflict;
  for (int attempt = 1; attempt <= options.max_attempts; ++attempt) {
    auto loaded = options.command_id ? repository.load_for_command(id, *options.command_id) : repository.load(id);
    if (!loaded && options.create_if_missing && loaded.error().is(errc::stream_not_found))
      loaded = A(std::string(id));
    if (!loaded) return loaded.error();
    A& aggregate = *loaded;
    if constexpr (std::is_void_v<std::invoke_result_t<Decide&, A&>>) {
      decide(aggregate);
    } else {
      if (auto verdict = decide(aggregate); !verdict) return verdict.error();
    }
    const std::size_t raised = aggregate.pending_events().size();
    auto saved = repository.save(aggregate, options.metadata, options.command_id);
    if (saved) return CommandResult{*saved, aggregate.version(), attempt, raised};
    if (!saved.error().is(errc::wrong_expected_version)) return saved.error();
    last_conflict = saved.error();
  }
  return Error{errc::retries_exhausted, "gave up after " + std::to_string(options.max_attempts) +
                                            " conflicting attempts; last: " + last_conflict.what()};
}

}  // namespace evs
