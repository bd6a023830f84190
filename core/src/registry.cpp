#include "evs/core/registry.hpp"

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <atomic>
#include <deque>
#include <functional>
#include <map>
#include <mutex>
#include <set>
#include <unordered_map>
#include <utility>

namespace evs {

namespace {
// "'shop.order_placed' v1 (v1::OrderPlaced)", for messages.
std::string describe(const EventTypeInfo& info) {
  return "'" + info.name + "' v" + std::to_string(info.version) + " (" + info.cpp_type + ")";
}
}  // namespace

// Orders (name, version) keys; transparent, so a std::string_view name finds without a copy.
struct KeyLess {
  using is_transparent = void;
  template <class A, class B>
  bool operator()(const A& a, const B& b) const {
    const std::string_view an = a.first;
    const std::string_view bn = b.first;
    return an < bn || (an == bn && a.second < b.second);
  }
};

struct EventRegistry::Impl {
  mutable std::mutex mutex;
  std::deque<EventTypeInfo> infos;  // stable addresses
  std::deque<UpcasterInfo> upcasters;
  std::map<std::pair<std::string, std::uint32_t>, const EventTypeInfo*, KeyLess> by_key;
  std::unordered_map<std::type_index, const EventTypeInfo*> by_type;
  std::unordered_map<std::type_index, const UpcasterInfo*> upcaster_by_from;
  mutable std::atomic<bool> valid{false};  // validate() passed since the last add

  const EventTypeInfo* type_locked(std::type_index t) const {
    auto it = by_type.find(t);
    return it == by_type.end() ? nullptr : it->second;
  }
  const UpcasterInfo* upcaster_locked(std::type_index t) const {
    auto it = upcaster_by_from.find(t);
    return it == upcaster_by_from.end() ? nullptr : it->second;
  }
  std::string type_name_locked(std::type_index t, const std::string& fallback) const {
    const EventTypeInfo* info = type_locked(t);
    return info != nullptr ? describe(*info) : fallback + " (not registered with EVS_EVENT)";
  }
};

EventRegistry::EventRegistry() : impl_(std::make_unique<Impl>()) {}
EventRegistry::~EventRegistry() = default;

EventRegistry& EventRegistry::global() {
  static EventRegistry registry;
  return registry;
}

void EventRegistry::add(EventTypeInfo info) {
  std::lock_guard lock(impl_->mutex);
  if (auto it = impl_->by_key.find(std::pair(info.name, info.version)); it != impl_->by_key.end()) {
    if (it->second->type == info.type) return;
    throw Exception(errc::invalid_argument, "event name '" + info.name + "' is registered for two types: " +
                                                it->second->cpp_type + " and " + info.cpp_type + " (both version " +
                                                std::to_string(info.version) + ")");
  }
  if (auto it = impl_->by_type.find(info.type); it != impl_->by_type.end())
    throw Exception(errc::invalid_argument, "type " + info.cpp_type + " is registered under two names: '" +
                                                it->second->name + "' v" + std::to_string(it->second->version) +
                                                " and '" + info.name + "' v" + std::to_string(info.version));
  const EventTypeInfo& stored = impl_->infos.emplace_back(std::move(info));
  impl_->by_key.emplace(std::pair(stored.name, stored.version), &stored);
  impl_->by_type.emplace(stored.type, &stored);
  impl_->valid = false;
}

void EventRegistry::add_upcaster(UpcasterInfo upcaster) {
  std::lock_guard lock(impl_->mutex);
  if (impl_->upcaster_by_from.contains(upcaster.from))
    throw Exception(errc::invalid_argument,
                    "type " + upcaster.from_cpp_type + " has two upcasters: an older version upcasts one way");
  const UpcasterInfo& stored = impl_->upcasters.emplace_back(std::move(upcaster));
  impl_->upcaster_by_from.emplace(stored.from, &stored);
  impl_->valid = false;
}

const EventTypeInfo* EventRegistry::find(std::string_view name) const {
  std::lock_guard lock(impl_->mutex);
  // The last key with this name: (name, highest version).
  auto it = impl_->by_key.lower_bound(std::pair(name, std::uint32_t{0}));
  const EventTypeInfo* found = nullptr;
  for (; it != impl_->by_key.end() && it->first.first == name; ++it) found = it->second;
  return found;
}

const EventTypeInfo* EventRegistry::find(std::string_view name, std::uint32_t version) const {
  std::lock_guard lock(impl_->mutex);
  auto it = impl_->by_key.find(std::pair(name, version));
  return it == impl_->by_key.end() ? nullptr : it->second;
}

const EventTypeInfo* EventRegistry::find(std::type_index type) const {
  std::lock_guard lock(impl_->mutex);
  return impl_->type_locked(type);
}

const UpcasterInfo* EventRegistry::upcaster_of(std::type_index type) const {
  std::lock_guard lock(impl_->mutex);
  return impl_->upcaster_locked(type);
}

std::vector<const EventTypeInfo*> EventRegistry::all() const {
  std::lock_guard lock(impl_->mutex);
  std::vector<const EventTypeInfo*> out;
  for (const auto& [key, info] : impl_->by_key) out.push_back(info);
  return out;
}

Result<void> EventRegistry::validate() const {
  if (impl_->valid) return {};
  std::lock_guard lock(impl_->mutex);
  const Impl& m = *impl_;
  std::vector<std::string> problems;

  // Each upcaster: from and to registered; never back to the same or a lower version of one name.
  for (const UpcasterInfo& u : m.upcasters) {
    const EventTypeInfo* from = m.type_locked(u.from);
    if (from == nullptr) {
      problems.push_back("the upcaster of " + u.from_cpp_type + ": that type is not registered with EVS_EVENT");
      continue;
    }
    for (const std::type_index& t : u.to) {
      const EventTypeInfo* to = m.type_locked(t);
      if (to == nullptr)
        problems.push_back("the upcaster of " + describe(*from) + " produces " + t.name() +
                           ", which is not registered with EVS_EVENT");
      else if (to->name == from->name && to->version <= from->version)
        problems.push_back("the upcaster of " + describe(*from) + " goes back to " + describe(*to) +
                           ": an upcaster leads to a higher version or to another name");
    }
  }

  // Each name: versions without gaps, and every version below the highest has an upcaster.
  for (auto it = m.by_key.begin(); it != m.by_key.end();) {
    const std::string& name = it->first.first;
    std::vector<const EventTypeInfo*> versions;
    for (; it != m.by_key.end() && it->first.first == name; ++it) versions.push_back(it->second);
    for (std::size_t i = 1; i < versions.size(); ++i)
      if (versions[i]->version != versions[i - 1]->version + 1)
        problems.push_back("'" + name + "' has versions " + std::to_string(versions[i - 1]->version) + " and " +
                           std::to_string(versions[i]->version) + " but no version " +
                           std::to_string(versions[i - 1]->version + 1) +
                           " in between: register every version that may be stored");
    for (std::size_t i = 0; i + 1 < versions.size(); ++i)
      if (m.upcaster_locked(versions[i]->type) == nullptr)
        problems.push_back(describe(*versions[i]) + " has no upcaster, but the current version is " +
                           describe(*versions.back()) + ": add EVS_UPCAST(" + versions[i]->cpp_type +
                           ", ...) leading towards it");
  }

  // No loops: depth-first along the upcasters from every type.
  enum class Mark { none, active, done };
  std::unordered_map<std::type_index, Mark> marks;
  std::vector<const EventTypeInfo*> path;
  std::function<void(const EventTypeInfo&)> visit = [&](const EventTypeInfo& info) {
    Mark& mark = marks[info.type];
    if (mark == Mark::done) return;
    if (mark == Mark::active) {
      std::string loop;
      auto start = std::find(path.begin(), path.end(), &info);
      for (auto p = start; p != path.end(); ++p) loop += describe(**p) + " -> ";
      problems.push_back("the upcasters loop: " + loop + describe(info));
      return;
    }
    mark = Mark::active;
    path.push_back(&info);
    if (const UpcasterInfo* u = m.upcaster_locked(info.type))
      for (const std::type_index& t : u->to)
        if (const EventTypeInfo* next = m.type_locked(t)) visit(*next);
    path.pop_back();
    marks[info.type] = Mark::done;
  };
  for (const EventTypeInfo& info : m.infos) visit(info);

  if (problems.empty()) {
    impl_->valid = true;
    return {};
  }
  std::string message = "the event upcasting chains are broken:";
  for (const auto& p : problems) message += "\n  - " + p;
  return Error{errc::invalid_argument, std::move(message)};
}

Result<std::vector<std::any>> EventRegistry::upcast(const EventTypeInfo& stored, std::string_view payload,
                                                    Encoding encoding) const {
  if (auto v = validate(); !v) return v.error();
  if (stored.decode == nullptr)
    return Error{errc::invalid_argument, "type " + stored.cpp_type + " was registered without a decoder"};
  auto first = stored.decode(payload, encoding);
  if (!first) return Error{errc::corrupt_payload, "does not decode as " + stored.cpp_type + ": " + first.error().message};
  std::vector<std::any> out;
  // The chains are valid (acyclic, every produced type registered), so this ends.
  std::function<void(std::any&&)> step = [&](std::any&& value) {
    const UpcasterInfo* u = upcaster_of(std::type_index(value.type()));
    if (u == nullptr) {
      out.push_back(std::move(value));
      return;
    }
    for (std::any& next : u->fn(value)) step(std::move(next));
  };
  step(std::move(*first));
  return out;
}

std::vector<std::string> EventRegistry::names_reaching(std::type_index current) const {
  std::lock_guard lock(impl_->mutex);
  const Impl& m = *impl_;
  // Reverse walk: the types whose upcaster produces a type already reached, until nothing new is added.
  std::set<std::type_index> reached{current};
  for (bool grew = true; grew;) {
    grew = false;
    for (const UpcasterInfo& u : m.upcasters) {
      if (reached.contains(u.from)) continue;
      if (std::any_of(u.to.begin(), u.to.end(), [&](const std::type_index& t) { return reached.contains(t); })) {
        reached.insert(u.from);
        grew = true;
      }
    }
  }
  std::set<std::string> names;
  for (const std::type_index& t : reached)
    if (const EventTypeInfo* info = m.type_locked(t)) names.insert(info->name);
  return {names.begin(), names.end()};
}

}  // namespace evs

namespace evs::detail {

bool require_valid_upcasting_chains() {
  static const bool valid = [] {
    if (auto r = EventRegistry::global().validate(); !r) {
      std::fprintf(stderr, "evs: fatal: %s\n", r.error().message.c_str());
      std::abort();
    }
    return true;
  }();
  return valid;
}

}  // namespace evs::detail
