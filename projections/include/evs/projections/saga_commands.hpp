// Commands as data: what a saga sends (saga.send(ReserveStock{...})) and how it reaches a handler.
//
// A command is a described struct (BOOST_DESCRIBE_STRUCT). The saga records it in its audit trail
// (evs.saga.command_issued, named by the command's unqualified C++ type name) and, once the reaction is
// stored, hands it to the handler registered for its type when the process manager was attached:
//
//   saga.attach(engine, options,
//               [&](const ReserveStock& c, const evs::CommandMetadata& m) { commands.reserve_stock(c, m); },
//               [&](const ShipOrder& c) { commands.ship(c); });
//
// A handler is a callable of (const C&, const CommandMetadata&) or (const C&) with one non-template call
// operator (C is deduced from it), or a std::tuple of such callables.
#pragma once

#include "evs/core/codec.hpp"
#include "evs/core/envelope.hpp"
#include "evs/core/error.hpp"
#include "evs/eventstore/command_handler.hpp"

#include <boost/describe/members.hpp>

#include <functional>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <tuple>
#include <type_traits>
#include <typeindex>
#include <utility>

namespace evs {

// ---- Choreography helpers (also used by command handlers) ------------------------------------------------

// Metadata for an event appended in reaction to `cause`: the cause's correlation id (or the cause's own id
// when it has none, so a conversation is named after its first event), the cause's id as causation id,
// and the cause's user metadata.
EventMetadata caused_by(const RecordedEvent& cause);

// A deterministic id derived from `base` and `salt` (a version-8 UUID made of two FNV-1a hashes). Use it as
// the event id of what you append in reaction to an event, e.g. derived_id(cause.event_id, "payment"):
// a redelivered cause then appends the same id again, which the store's idempotent append turns into a
// no-op. Different salts give different ids; the same inputs give the same id in every build.
Uuid derived_id(const Uuid& base, std::string_view salt);

// Travels with every command a saga issues.
struct CommandMetadata {
  // Deterministic: the same command re-issued (after a crash or a failed send) has the same id. A command
  // handler that uses it as the id of the event it appends gets duplicates dropped by the store.
  Uuid command_id;
  std::string correlation_id;  // the saga instance's correlation id
  std::string causation_id;    // the id of the event the saga reacted to
  // Metadata for the events the command handler appends: the same correlation id, caused by this command.
  // Replies carrying it find their way back to the saga instance.
  EventMetadata event_metadata() const { return {correlation_id, command_id.to_string(), {}}; }
  // Options for the command handler that carries the command out (evs::create / update / upsert): the
  // events get event_metadata(), and the command id is the idempotency key, so a re-issued command stores
  // nothing new and gets its first answer.
  CommandOptions options() const { return {.metadata = event_metadata(), .idempotency_key = command_id}; }
};

// One command a reaction issued, type-erased.
struct IssuedCommand {
  std::string name;  // the unqualified C++ type name, as in evs.saga.command_issued
  std::type_index type;
  std::shared_ptr<const void> command;
  std::string (*to_json)(const void* command);
  CommandMetadata metadata;

  std::string json() const { return to_json(command.get()); }
};

// Lets a process manager call private hooks, handlers and `correlate`: `friend evs::SagaAccess;`.
struct SagaAccess {
  template <class D, class... A>
  static auto handle(D& d, A&&... a) -> decltype(d.handle(std::forward<A>(a)...)) {
    return d.handle(std::forward<A>(a)...);
  }
  template <class D, class Step, class S>
  static auto compensate(D& d, Step step, S& saga) -> decltype(d.compensate(step, saga)) {
    return d.compensate(step, saga);
  }
  template <class D, class Step, class S>
  static auto on_timeout(D& d, Step step, S& saga) -> decltype(d.on_timeout(step, saga)) {
    return d.on_timeout(step, saga);
  }
  template <class D>
  static constexpr auto correlate() -> decltype((D::correlate)) {
    return D::correlate;
  }
};

namespace detail {

// "checkout::ShipOrder" -> "ShipOrder" (GCC and Clang).
template <class T>
constexpr std::string_view unqualified_type_name() {
  std::string_view f = __PRETTY_FUNCTION__;
  const auto start = f.find("T = ") + 4;
  f = f.substr(start, f.find_first_of(";]", start) - start);
  const auto open = f.find('<');
  const auto colons = f.substr(0, open).rfind("::");
  return colons == std::string_view::npos ? f : f.substr(colons + 2);
}

template <class F>
struct CommandHandlerCall;
template <class F, class R, class C>
struct CommandHandlerCall<R (F::*)(const C&, const CommandMetadata&) const> {
  using command = C;
};
template <class F, class R, class C>
struct CommandHandlerCall<R (F::*)(const C&, const CommandMetadata&)> {
  using command = C;
};
template <class F, class R, class C>
struct CommandHandlerCall<R (F::*)(const C&) const> {
  using command = C;
};
template <class F, class R, class C>
struct CommandHandlerCall<R (F::*)(const C&)> {
  using command = C;
};
template <class R, class C>
struct CommandHandlerCall<R (*)(const C&, const CommandMetadata&)> {
  using command = C;
};
template <class R, class C>
struct CommandHandlerCall<R (*)(const C&)> {
  using command = C;
};

template <class H>
struct CommandHandlerTraits : CommandHandlerCall<decltype(&H::operator())> {};
template <class R, class... A>
struct CommandHandlerTraits<R (*)(A...)> : CommandHandlerCall<R (*)(A...)> {};

template <class H>
concept CommandHandler = requires { typename CommandHandlerTraits<std::decay_t<H>>::command; };

template <class T>
inline constexpr bool is_tuple_v = false;
template <class... T>
inline constexpr bool is_tuple_v<std::tuple<T...>> = true;

// The command handlers of one process manager, by command type. Registered before the engine starts,
// then only read. A sink set for tests receives every command instead of the handlers.
class CommandRouter {
 public:
  using Handler = std::function<void(const void*, const CommandMetadata&)>;
  using Sink = std::function<void(const IssuedCommand&)>;

  // Throws invalid_argument if `type` has a handler already.
  void add(std::type_index type, std::string_view name, Handler handler, std::string_view owner) {
    if (!handlers_.emplace(type, std::move(handler)).second)
      throw Exception(errc::invalid_argument, "process manager " + std::string(owner) + ": two handlers for command " +
                                                  std::string(name));
  }
  template <class H>
  void add_handler(H&& handler, std::string_view owner) {
    if constexpr (is_tuple_v<std::remove_cvref_t<H>>) {
      std::apply([&](auto&&... h) { (add_handler(std::forward<decltype(h)>(h), owner), ...); }, std::forward<H>(handler));
    } else {
      static_assert(CommandHandler<H>,
                    "a saga command handler is a callable of (const Command&, const evs::CommandMetadata&) or "
                    "(const Command&) with one non-template call operator, or a std::tuple of such callables");
      using C = typename CommandHandlerTraits<std::decay_t<H>>::command;
      add(typeid(C), unqualified_type_name<C>(),
          [h = std::decay_t<H>(std::forward<H>(handler))](const void* c, const CommandMetadata& m) mutable {
            if constexpr (std::is_invocable_v<decltype(h)&, const C&, const CommandMetadata&>)
              h(*static_cast<const C*>(c), m);
            else
              h(*static_cast<const C*>(c));
          },
          owner);
    }
  }
  void set_sink(Sink sink) { sink_ = std::move(sink); }

  // Throws invalid_argument naming the command and `owner` when a command of `type` cannot be issued.
  void require(std::type_index type, std::string_view name, std::string_view owner) const {
    if (sink_ || handlers_.contains(type)) return;
    throw Exception(errc::invalid_argument, "process manager " + std::string(owner) + " sends command " +
                                                std::string(name) +
                                                ", but no handler for it was passed to attach(engine, options, "
                                                "handlers...)");
  }
  // Hands `c` to its handler (or to the sink). Throws what the handler throws.
  void issue(const IssuedCommand& c) const {
    if (sink_) return sink_(c);
    auto it = handlers_.find(c.type);
    if (it == handlers_.end())
      throw Exception(errc::invalid_argument, "no handler for command " + c.name);  // require() prevents this
    it->second(c.command.get(), c.metadata);
  }

 private:
  std::map<std::type_index, Handler> handlers_;
  Sink sink_;
};

template <class C>
IssuedCommand make_issued(C command, CommandMetadata metadata) {
  static_assert(boost::describe::has_describe_members<C>::value,
                "a saga command must be a described struct (BOOST_DESCRIBE_STRUCT): it is recorded as JSON in "
                "tests and named in the audit trail");
  return IssuedCommand{std::string(unqualified_type_name<C>()), typeid(C),
                       std::make_shared<const C>(std::move(command)),
                       [](const void* c) { return encode(*static_cast<const C*>(c), Encoding::json); },
                       std::move(metadata)};
}

}  // namespace detail
}  // namespace evs
