// Which saga instance an event belongs to: explicit and total.
//
// A process manager declares, for every event type it handles, exactly one way to get the instance key
// (its correlation id):
//
//   static constexpr auto correlate = evs::by(
//       &OrderPlaced::order_id,                                  // a std::string member
//       evs::if_set(&MoneyDeposited::transfer_id),               // empty: belongs to no instance (ignored)
//       evs::from_metadata<PaymentCharged>,                      // the event's metadata.correlation_id
//       [](const StockReserved& e) { return "order-" + e.order_id; },   // a captureless lambda or function
//       [](const Refund& e, const evs::RecordedEvent& m) -> std::optional<std::string> { ... });
//
// Entries:
//  - `&E::m`, m a std::string member of E;
//  - `evs::from_metadata<E>`: RecordedEvent::metadata.correlation_id;
//  - a captureless lambda or function of (const E&) or (const E&, const RecordedEvent&) returning
//    std::string or std::optional<std::string> (std::nullopt: the event belongs to no instance);
//  - `evs::if_set(entry)` around any of these: an empty key means "no instance" instead of an error.
// Any other empty key is an error: the reaction throws, so the engine retries the event and then parks it
// as a dead letter, never a silent drop. The process manager checks at compile time that every event it
// lists has exactly one entry and that no entry names an event it does not list.
#pragma once

#include "evs/core/event.hpp"
#include "evs/eventstore/event_store.hpp"

#include <concepts>
#include <optional>
#include <string>
#include <tuple>
#include <type_traits>

namespace evs {

// The metadata entry: `evs::from_metadata<E>`.
template <class E>
struct FromMetadata {
  using event_type = E;
};
template <class E>
inline constexpr FromMetadata<E> from_metadata{};

// `evs::if_set(entry)`: an empty key (or nullopt) from `entry` means the event belongs to no instance.
template <class Entry>
struct IfSet {
  Entry entry;
};

namespace detail {

template <class F>
struct CorrelationFunction;  // the event type and arity of a function entry
template <class R, class E>
struct CorrelationFunction<R (*)(const E&)> {
  using event_type = E;
};
template <class R, class E>
struct CorrelationFunction<R (*)(const E&, const RecordedEvent&)> {
  using event_type = E;
};
template <class L, class R, class E>
struct CorrelationFunction<R (L::*)(const E&) const> {
  using event_type = E;
};
template <class L, class R, class E>
struct CorrelationFunction<R (L::*)(const E&, const RecordedEvent&) const> {
  using event_type = E;
};

template <class T>
struct CorrelationEntry {  // a lambda (or other function object with one non-template operator())
  using event_type = typename CorrelationFunction<decltype(&T::operator())>::event_type;
  static constexpr bool optional = false;
};
template <class R, class... A>
struct CorrelationEntry<R (*)(A...)> {
  using event_type = typename CorrelationFunction<R (*)(A...)>::event_type;
  static constexpr bool optional = false;
};
template <class E>
struct CorrelationEntry<std::string E::*> {
  using event_type = E;
  static constexpr bool optional = false;
};
template <class E>
struct CorrelationEntry<FromMetadata<E>> {
  using event_type = E;
  static constexpr bool optional = false;
};
template <class Entry>
struct CorrelationEntry<IfSet<Entry>> {
  using event_type = typename CorrelationEntry<Entry>::event_type;
  static constexpr bool optional = true;
};

template <class T, class... Es>
inline constexpr bool one_of = (std::is_same_v<T, Es> || ...);

template <class T>
concept CorrelationEntryType = requires { typename CorrelationEntry<T>::event_type; };

// The key of `e` by `entry`; nullopt when the entry returned nullopt.
template <class Entry, class E>
std::optional<std::string> correlation_key(const Entry& entry, const E& e, const RecordedEvent& meta) {
  if constexpr (std::is_member_object_pointer_v<Entry>) {
    return e.*entry;
  } else if constexpr (std::is_same_v<Entry, FromMetadata<E>>) {
    return meta.metadata.correlation_id;
  } else if constexpr (requires { entry.entry; }) {
    return correlation_key(entry.entry, e, meta);
  } else if constexpr (std::is_invocable_v<const Entry&, const E&, const RecordedEvent&>) {
    return std::optional<std::string>(entry(e, meta));
  } else {
    return std::optional<std::string>(entry(e));
  }
}

}  // namespace detail

// The correlation of a process manager: one entry per event type (see the top of this file).
template <class... Entries>
struct Correlation {
  std::tuple<Entries...> entries;

  // How many entries name E.
  template <class E>
  static constexpr int entries_for = (0 + ... + int(std::is_same_v<typename detail::CorrelationEntry<Entries>::event_type, E>));

  // True if every entry names one of Es.
  template <class... Es>
  static constexpr bool only_for = (detail::one_of<typename detail::CorrelationEntry<Entries>::event_type, Es...> && ...);

  // The key of `e`: nullopt when E's entry says it belongs to no instance (if_set, or a function's
  // nullopt). An empty string is returned as is; the caller decides (an error unless the entry is if_set).
  template <class E>
  std::optional<std::string> key(const E& e, const RecordedEvent& meta, bool& optional) const {
    std::optional<std::string> out;
    std::apply(
        [&](const auto&... entry) {
          (
              [&](const auto& one) {
                using Traits = detail::CorrelationEntry<std::remove_cvref_t<decltype(one)>>;
                if constexpr (std::is_same_v<typename Traits::event_type, E>) {
                  out = detail::correlation_key(one, e, meta);
                  optional = Traits::optional;
                }
              }(entry),
              ...);
        },
        entries);
    return out;
  }
};

template <class T>
inline constexpr bool is_correlation_v = false;
template <class... Entries>
inline constexpr bool is_correlation_v<Correlation<Entries...>> = true;

// `static constexpr auto correlate = evs::by(entry, ...)`.
template <class... Entries>
constexpr auto by(Entries... entries) {
  static_assert((detail::CorrelationEntryType<Entries> && ...),
                "evs::by: each entry is &Event::member (a std::string), evs::from_metadata<Event>, a captureless "
                "lambda or function of (const Event&) or (const Event&, const evs::RecordedEvent&) returning "
                "std::string or std::optional<std::string>, or evs::if_set(one of these)");
  return Correlation<Entries...>{{entries...}};
}

template <class Entry>
constexpr auto if_set(Entry entry) {
  static_assert(detail::CorrelationEntryType<Entry>, "evs::if_set takes a correlation entry (see evs::by)");
  return IfSet<Entry>{entry};
}

}  // namespace evs
