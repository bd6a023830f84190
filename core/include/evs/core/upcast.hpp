// Upcasters: pure typed functions from an older version of an event to the next one, registered once.
//
//   namespace v1 {
//   struct OrderPlaced { std::string order_id; std::int64_t total_cents; };
//   EVS_EVENT(OrderPlaced, "shop.order_placed", 1, order_id, total_cents)
//   EVS_UPCAST(OrderPlaced, [](const OrderPlaced& e) { return shop::OrderPlaced{e.order_id, e.total_cents, "USD"}; })
//   }  // namespace v1
//
// EVS_UPCAST(From, function) goes in From's namespace, after From's EVS_EVENT (in a header is fine: it
// registers once). The function takes `const From&` and returns either
//   - one event (one-to-one; a type registered under another name makes a rename), or
//   - std::vector<std::variant<A, B, ...>> of registered events (one-to-many: a split; may be empty, which
//     drops the old event).
// Each produced event may itself be an older version with its own upcaster: the chain is followed until every
// event is current (has no upcaster). The registry checks the chains before the first upcast and on
// EventRegistry::validate(); dispatch_event stops the program with the broken links named.
#pragma once

#include "evs/core/event.hpp"
#include "evs/core/registry.hpp"

#include <boost/core/demangle.hpp>

#include <any>
#include <cstdio>
#include <cstdlib>
#include <type_traits>
#include <typeindex>
#include <utility>
#include <variant>
#include <vector>

namespace evs {

namespace detail {
template <class R>
struct UpcastResult {
  static constexpr bool valid = false;
};
template <Event E>
struct UpcastResult<E> {
  static constexpr bool valid = true;
  static std::vector<std::type_index> types() { return {typeid(E)}; }
  static void append(std::vector<std::any>& out, E&& e) { out.emplace_back(std::move(e)); }
};
template <Event... Es>
struct UpcastResult<std::vector<std::variant<Es...>>> {
  static constexpr bool valid = true;
  static std::vector<std::type_index> types() { return {typeid(Es)...}; }
  static void append(std::vector<std::any>& out, std::vector<std::variant<Es...>>&& events) {
    out.reserve(events.size());
    for (auto& v : events) std::visit([&](auto& e) { out.emplace_back(std::move(e)); }, v);
  }
};
}  // namespace detail

// The type-erased upcaster of From that `fn` describes (for EventRegistry::add_upcaster).
template <Event From, class F>
UpcasterInfo make_upcaster(F fn) {
  using R = std::remove_cvref_t<std::invoke_result_t<F&, const From&>>;
  using Shape = detail::UpcastResult<R>;
  static_assert(Shape::valid,
                "an upcaster returns one registered event, or std::vector<std::variant<Events...>> of them");
  UpcasterInfo u;
  u.from = typeid(From);
  u.from_cpp_type = boost::core::demangle(typeid(From).name());
  u.to = Shape::types();
  u.fn = [fn = std::move(fn)](const std::any& from) {
    std::vector<std::any> out;
    Shape::append(out, fn(std::any_cast<const From&>(from)));
    return out;
  };
  return u;
}

// Registers `fn` as the upcaster of From in the global registry; stops the program with a message when From
// has one already. Returns true, for a static initializer (EVS_UPCAST).
template <Event From, class F>
bool upcast(F fn) {
  try {
    EventRegistry::global().add_upcaster(make_upcaster<From>(std::move(fn)));
  } catch (const Exception& e) {
    std::fprintf(stderr, "evs: fatal: %s\n", e.what());
    std::abort();
  }
  return true;
}

}  // namespace evs

#define EVS_UPCAST(From, ...) \
  [[maybe_unused]] inline const bool evs_upcaster_registered_##From = ::evs::upcast<From>(__VA_ARGS__);
