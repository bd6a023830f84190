// Commands: load -> decide -> append with the loaded version as expectation. On a version conflict the
// aggregate is reloaded and the decision made again, a bounded number of times. The verb says what the
// command expects of the stream:
//
//   evs::create(orders, "o1", &Order::place, request, total);          // a new stream; exists -> refused
//   evs::update(accounts, "acc-1", &Account::withdraw, cents);         // an existing one; missing -> refused
//   evs::upsert(stock, "BOOK", &Stock::restock, 3);                    // either
//   evs::update(accounts, "acc-1", {.metadata = m, .idempotency_key = m.command_id},
//               [&](Account& a) { return a.withdraw(cents); });
//
// `decide` is a member function of the aggregate (then `args` are its arguments) or a callable taking the
// aggregate (and `args`). It returns void, or Result<void> to refuse the command (evs::reject("why")): the
// refusal is returned as is and nothing is appended. It may run several times (once per attempt), so it
// must not have effects outside the aggregate; `args` are passed to it as lvalues each time.
#pragma once

#include "evs/eventstore/repository.hpp"

#include <concepts>
#include <functional>
#include <optional>
#include <string>
#include <type_traits>

namespace evs {

struct CommandOptions {
  EventMetadata metadata;  // attached to every event the command appends
  // Makes the command idempotent: its i-th event gets the id command_event_id(*idempotency_key, i), and a
  // command whose events are already stored (a retry after a lost answer, a crash between the append and
  // its acknowledgement, a redelivered message) is decided again on the state just before them, so it
  // appends nothing and returns the original result (append.idempotent_replay = true). `decide` must be
  // deterministic: on the same state it raises the same number of events. See Repository::load_for_command.
  std::optional<Uuid> idempotency_key;
  int max_attempts = 5;  // total attempts, including the first; < 1 is an invalid_argument error
};

struct CommandResult {
  AppendResult append;                // what was appended (positions 0 if the decision raised nothing);
                                      // a retried idempotency key: the original append, idempotent_replay = true
  std::uint64_t version = 0;          // the aggregate's version after the command
  int attempts = 0;                   // how many load/decide/append rounds it took
  std::size_t events = 0;             // how many events the command appended
};

namespace detail {

enum class StreamExpectation { absent, present, either };

template <class A, class Decide, class... Args>
[[nodiscard]] Result<void> decide_once(Decide& decide, A& aggregate, Args&... args) {
  constexpr bool invocable = std::is_invocable_v<Decide&, A&, Args&...>;
  static_assert(invocable, "evs::create/update/upsert: `decide` must be a member function of the aggregate that "
                           "takes the given arguments, or a callable taking (Aggregate&, arguments...)");
  if constexpr (invocable) {
    using Verdict = std::invoke_result_t<Decide&, A&, Args&...>;
    static_assert(std::is_void_v<Verdict> || std::is_same_v<std::remove_cvref_t<Verdict>, Result<void>>,
                  "evs::create/update/upsert: a decision returns void or evs::Result<void>");
    if constexpr (std::is_void_v<Verdict>) {
      std::invoke(decide, aggregate, args...);
      return {};
    } else {
      return std::invoke(decide, aggregate, args...);
    }
  } else {
    return {};
  }
}

// The one command loop behind create / update / upsert.
// Errors: invalid_argument (max_attempts < 1: nothing loaded), stream_not_found (expect present, no
// stream), wrong_expected_version (expect absent, the stream exists with events that are not this
// command's: nothing decided), the decision's refusal, retries_exhausted after max_attempts conflicts
// (message names the last one), and load/append errors.
template <class A, class Decide, class... Args>
[[nodiscard]] Result<CommandResult> run_command(Repository<A>& repository, std::string_view id,
                                                StreamExpectation expect, const EventMetadata& metadata,
                                                const std::optional<Uuid>& key, int max_attempts, Decide& decide,
                                                Args&... args) {
  if (max_attempts < 1)
    return Error{errc::invalid_argument,
                 "max_attempts is " + std::to_string(max_attempts) + ": a command needs at least one attempt"};
  Error last_conflict;
  for (int attempt = 1; attempt <= max_attempts; ++attempt) {
    // With a key whose events are stored, this is the state just before them (version 0 for a create).
    auto loaded = key ? repository.load_for_command(id, *key) : repository.load(id);
    if (!loaded && loaded.error().is(errc::stream_not_found) && expect != StreamExpectation::present)
      loaded = A(std::string(id));
    if (!loaded) return loaded.error();
    A& aggregate = *loaded;
    if (expect == StreamExpectation::absent && aggregate.persisted_version() != 0)
      return Error{errc::wrong_expected_version, "stream " + aggregate.stream_id() + " already exists (version " +
                                                     std::to_string(aggregate.persisted_version()) +
                                                     "): create expects a new stream"};
    if (auto verdict = decide_once(decide, aggregate, args...); !verdict) return verdict.error();
    const std::size_t raised = aggregate.pending_events().size();
    auto saved = repository.save(aggregate, metadata, key);
    if (saved) return CommandResult{*saved, aggregate.version(), attempt, raised};
    if (!saved.error().is(errc::wrong_expected_version)) return saved.error();
    last_conflict = saved.error();
  }
  return Error{errc::retries_exhausted, "gave up after " + std::to_string(max_attempts) +
                                            " conflicting attempts; last: " + last_conflict.what()};
}

template <class A, class Decide, class... Args>
[[nodiscard]] Result<CommandResult> run_verb(StreamExpectation expect, Repository<A>& repository, std::string_view id,
                                             const CommandOptions& options, Decide& decide, Args&... args) {
  return run_command(repository, id, expect, options.metadata, options.idempotency_key, options.max_attempts, decide,
                     args...);
}

template <class T>
concept NotCommandOptions = !std::same_as<std::remove_cvref_t<T>, CommandOptions>;

}  // namespace detail

// A command on a new stream: no stream yet -> decide on a new aggregate and append (expecting no stream).
// A stream that exists with events that are not this command's -> wrong_expected_version ("... already
// exists"), nothing decided. A retry with the same idempotency key -> the original result
// (idempotent_replay). Other errors: see detail::run_command.
template <class A, class Decide, class... Args>
[[nodiscard]] Result<CommandResult> create(Repository<A>& repository, std::string_view id, const CommandOptions& options,
                                           Decide&& decide, Args&&... args) {
  return detail::run_verb(detail::StreamExpectation::absent, repository, id, options, decide, args...);
}
template <class A, detail::NotCommandOptions Decide, class... Args>
[[nodiscard]] Result<CommandResult> create(Repository<A>& repository, std::string_view id, Decide&& decide,
                                           Args&&... args) {
  return create(repository, id, CommandOptions{}, decide, args...);
}

// A command on an existing stream: a missing one is stream_not_found, nothing decided.
template <class A, class Decide, class... Args>
[[nodiscard]] Result<CommandResult> update(Repository<A>& repository, std::string_view id, const CommandOptions& options,
                                           Decide&& decide, Args&&... args) {
  return detail::run_verb(detail::StreamExpectation::present, repository, id, options, decide, args...);
}
template <class A, detail::NotCommandOptions Decide, class... Args>
[[nodiscard]] Result<CommandResult> update(Repository<A>& repository, std::string_view id, Decide&& decide,
                                           Args&&... args) {
  return update(repository, id, CommandOptions{}, decide, args...);
}

// A command on a stream that may or may not exist: a missing one is decided on a new aggregate.
template <class A, class Decide, class... Args>
[[nodiscard]] Result<CommandResult> upsert(Repository<A>& repository, std::string_view id, const CommandOptions& options,
                                           Decide&& decide, Args&&... args) {
  return detail::run_verb(detail::StreamExpectation::either, repository, id, options, decide, args...);
}
template <class A, detail::NotCommandOptions Decide, class... Args>
[[nodiscard]] Result<CommandResult> upsert(Repository<A>& repository, std::string_view id, Decide&& decide,
                                           Args&&... args) {
  return upsert(repository, id, CommandOptions{}, decide, args...);
}

}  // namespace evs
