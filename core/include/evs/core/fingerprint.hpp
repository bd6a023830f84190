// Schema fingerprints: a 64-bit FNV-1a hash, computed at compile time, of a described type's members
// (names, order and types, recursively). The type's own C++ name is not part of it, so renaming a struct
// keeps its fingerprint; renaming, reordering, adding or retyping a member changes it.
// Snapshots store the fingerprint of their state type; a mismatch means "ignore the snapshot and replay".
#pragma once

#include "evs/core/codec.hpp"

#include <boost/describe/enumerators.hpp>

#include <cstdint>
#include <string_view>

namespace evs {
namespace detail {

constexpr std::uint64_t fnv(std::uint64_t h, std::string_view s) {
  for (char c : s) {
    h ^= static_cast<unsigned char>(c);
    h *= 1099511628211ULL;
  }
  return h;
}

constexpr std::uint64_t fnv_number(std::uint64_t h, std::uint64_t n) {
  do {
    h = fnv(h, std::string_view(&"0123456789"[n % 10], 1));
    n /= 10;
  } while (n);
  return h;
}

template <class T> struct member_pointee;
template <class C, class M> struct member_pointee<M C::*> { using type = M; };

template <class T>
constexpr std::uint64_t type_signature(std::uint64_t h);

template <template <class...> class L, class... D>
constexpr std::uint64_t members_signature(std::uint64_t h, L<D...>) {
  ((h = type_signature<typename member_pointee<std::remove_cv_t<decltype(D::pointer)>>::type>(
        fnv(fnv(h, D::name), ":"))),
   ...);
  return h;
}

template <template <class...> class L, class... D>
constexpr std::uint64_t enumerators_signature(std::uint64_t h, L<D...>) {
  ((h = fnv_number(fnv(fnv(h, D::name), "="), static_cast<std::uint64_t>(D::value))), ...);
  return h;
}

template <class T>
constexpr std::uint64_t type_signature(std::uint64_t h) {
  if constexpr (std::is_same_v<T, bool>) {
    return fnv(h, "b;");
  } else if constexpr (std::is_enum_v<T>) {
    h = type_signature<std::underlying_type_t<T>>(fnv(h, "enum<"));
    if constexpr (boost::describe::has_describe_enumerators<T>::value)
      h = enumerators_signature(h, boost::describe::describe_enumerators<T>());
    return fnv(h, ">;");
  } else if constexpr (std::is_integral_v<T>) {
    return fnv_number(fnv(h, std::is_signed_v<T> ? "i" : "u"), sizeof(T));
  } else if constexpr (std::is_floating_point_v<T>) {
    return fnv_number(fnv(h, "f"), sizeof(T));
  } else if constexpr (std::is_same_v<T, std::string>) {
    return fnv(h, "s;");
  } else if constexpr (std::is_same_v<T, Uuid>) {
    return fnv(h, "uuid;");
  } else if constexpr (is_time_point<T>::value) {
    return fnv(h, "time;");
  } else if constexpr (is_duration<T>::value) {
    return fnv(h, "dur;");
  } else if constexpr (is_optional<T>::value) {
    return type_signature<typename T::value_type>(fnv(h, "?"));
  } else if constexpr (is_vector<T>::value) {
    return fnv(type_signature<typename T::value_type>(fnv(h, "[")), "]");
  } else if constexpr (is_array<T>::value) {
    return fnv(type_signature<typename T::value_type>(fnv_number(fnv(h, "["), std::tuple_size_v<T>)), "]");
  } else if constexpr (is_map<T>::value) {
    h = type_signature<typename T::key_type>(fnv(h, "{"));
    return fnv(type_signature<typename T::mapped_type>(fnv(h, ",")), "}");
  } else if constexpr (is_described_struct<T>) {
    return fnv(members_signature(fnv(h, "("), public_members<T>()), ")");
  } else if constexpr (requires { T::evs_schema_name; }) {
    return fnv(fnv(fnv(h, "cereal<"), T::evs_schema_name), ">;");  // a type with cereal functions: see cereal.hpp
  } else if constexpr (requires { evs_schema_name(static_cast<const T*>(nullptr)); }) {
    return fnv(fnv(fnv(h, "cereal<"), evs_schema_name(static_cast<const T*>(nullptr))), ">;");
  } else {
    static_assert(dependent_false<T>,
                  "evs fingerprint: type is not describable; use BOOST_DESCRIBE_STRUCT, or (a type with cereal "
                  "functions) give it an evs_schema_name, see evs/core/cereal.hpp");
    return h;
  }
}

}  // namespace detail

// The schema fingerprint of T, a compile-time constant.
template <class T>
inline constexpr std::uint64_t fingerprint_v = detail::type_signature<T>(14695981039346656037ULL);

}  // namespace evs
