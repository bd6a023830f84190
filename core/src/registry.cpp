#include "evs/core/registry.hpp"

#include <algorithm>
#include <deque>
#include <functional>
#include <map>
#include <mutex>
#include <unordered_map>

namespace evs {

struct EventRegistry::Impl {
  mutable std::mutex mutex;
  std::deque<EventTypeInfo> infos;  // stable addresses
  std::map<std::string, const EventTypeInfo*, std::less<>> by_name;
  std::unordered_map<std::type_index, const EventTypeInfo*> by_type;
};

EventRegistry::EventRegistry() : impl_(std::make_unique<Impl>()) {}
EventRegistry::~EventRegistry() = default;

EventRegistry& EventRegistry::global() {
  static EventRegistry registry;
  return registry;
}

void EventRegistry::add(EventTypeInfo info) {
  std::lock_guard lock(impl_->mutex);
  if (auto it = impl_->by_name.find(info.name); it != impl_->by_name.end()) {
    if (it->second->type == info.type) return;
    throw Exception(errc::invalid_argument, "event name '" + info.name + "' is registered for two types: " +
                                                it->second->cpp_type + " and " + info.cpp_type);
  }
  if (auto it = impl_->by_type.find(info.type); it != impl_->by_type.end())
    throw Exception(errc::invalid_argument, "type " + info.cpp_type + " is registered under two names: '" +
                                                it->second->name + "' and '" + info.name + "'");
  const EventTypeInfo& stored = impl_->infos.emplace_back(std::move(info));
  impl_->by_name.emplace(stored.name, &stored);
  impl_->by_type.emplace(stored.type, &stored);
}

const EventTypeInfo* EventRegistry::find(std::string_view name) const {
  std::lock_guard lock(impl_->mutex);
  auto it = impl_->by_name.find(name);
  return it == impl_->by_name.end() ? nullptr : it->second;
}

const EventTypeInfo* EventRegistry::find(std::type_index type) const {
  std::lock_guard lock(impl_->mutex);
  auto it = impl_->by_type.find(type);
  return it == impl_->by_type.end() ? nullptr : it->second;
}

std::vector<const EventTypeInfo*> EventRegistry::all() const {
  std::lock_guard lock(impl_->mutex);
  std::vector<const EventTypeInfo*> out;
  for (const auto& [name, info] : impl_->by_name) out.push_back(info);
  return out;
}

}  // namespace evs
