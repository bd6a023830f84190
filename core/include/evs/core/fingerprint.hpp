// Schema fingerprints: a 64-bit FNV-1a hash, computed at compile time, of a described type's members
// (names, order and types, recursively). The type's own C++ name is not part of it, so renaming a struct
// keeps its fingerprint; renaming, reordering, adding or retyping a member changes it.
// Snapshots store the fingerprint of their state type; a mismatch means "ignore the snapshot and replay".
//
// schema_members<T>() is the same information as readable text (what the store records next to the
// fingerprint, so that a drift can be explained member by member): the top-level members in order,
// `name:type` separated by commas, e.g. "order_id:string,total_cents:int64,lines:vector<{sku:string,qty:int32}>".
// Types: bool, intN, uintN, floatN (N in bits), string, uuid, time, duration, optional<T>, vector<T>,
// array<T,N>, map<K,V>, enum<int32>{a=0,b=1} (enumerators when described), {members} for a nested struct.
// Two types with the same fingerprint have the same description (both cover names, order and types).
#pragma once

#include "evs/core/codec.hpp"

#include <boost/describe/enumerators.hpp>

#include <cstdint>
#include <string>
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

template <class T>
void describe_type(std::string& out);

template <template <class...> class L, class... D>
void describe_members(std::string& out, L<D...>) {
  bool first = true;
  const auto one = [&](std::string_view name, auto* type) {
    if (!first) out += ',';
    first = false;
    out += name;
    out += ':';
    describe_type<std::remove_pointer_t<decltype(type)>>(out);
  };
  (one(D::name,
       static_cast<typename member_pointee<std::remove_cv_t<decltype(D::pointer)>>::type*>(nullptr)),
   ...);
}

template <template <class...> class L, class... D>
void describe_enumerators(std::string& out, L<D...>) {
  bool first = true;
  ((out += first ? "{" : ",", first = false, out += D::name, out += '=',
    out += std::to_string(static_cast<std::uint64_t>(D::value))),
   ...);
  out += first ? "{}" : "}";
}

template <class T>
void describe_type(std::string& out) {
  if constexpr (std::is_same_v<T, bool>) {
    out += "bool";
  } else if constexpr (std::is_enum_v<T>) {
    out += "enum<";
    describe_type<std::underlying_type_t<T>>(out);
    out += '>';
    if constexpr (boost::describe::has_describe_enumerators<T>::value)
      describe_enumerators(out, boost::describe::describe_enumerators<T>());
  } else if constexpr (std::is_integral_v<T>) {
    out += std::is_signed_v<T> ? "int" : "uint";
    out += std::to_string(sizeof(T) * 8);
  } else if constexpr (std::is_floating_point_v<T>) {
    out += "float" + std::to_string(sizeof(T) * 8);
  } else if constexpr (std::is_same_v<T, std::string>) {
    out += "string";
  } else if constexpr (std::is_same_v<T, Uuid>) {
    out += "uuid";
  } else if constexpr (is_time_point<T>::value) {
    out += "time";
  } else if constexpr (is_duration<T>::value) {
    out += "duration";
  } else if constexpr (is_optional<T>::value) {
    out += "optional<";
    describe_type<typename T::value_type>(out);
    out += '>';
  } else if constexpr (is_vector<T>::value) {
    out += "vector<";
    describe_type<typename T::value_type>(out);
    out += '>';
  } else if constexpr (is_array<T>::value) {
    out += "array<";
    describe_type<typename T::value_type>(out);
    out += "," + std::to_string(std::tuple_size_v<T>) + ">";
  } else if constexpr (is_map<T>::value) {
    out += "map<";
    describe_type<typename T::key_type>(out);
    out += ',';
    describe_type<typename T::mapped_type>(out);
    out += '>';
  } else if constexpr (is_described_struct<T>) {
    out += '{';
    describe_members(out, public_members<T>());
    out += '}';
  } else if constexpr (requires { T::evs_schema_name; }) {
    out += "cereal<";  // a type with only cereal functions: named by its schema name, as in the fingerprint
    out += T::evs_schema_name;
    out += '>';
  } else if constexpr (requires { evs_schema_name(static_cast<const T*>(nullptr)); }) {
    out += "cereal<";
    out += evs_schema_name(static_cast<const T*>(nullptr));
    out += '>';
  } else {
    static_assert(dependent_false<T>, "evs schema_members: type is not describable; use BOOST_DESCRIBE_STRUCT");
  }
}

}  // namespace detail

// The readable member description of the described struct T (see the top of this file).
template <class T>
std::string schema_members() {
  std::string out;
  detail::describe_members(out, detail::public_members<T>());
  return out;
}

// The schema fingerprint of T, a compile-time constant.
template <class T>
inline constexpr std::uint64_t fingerprint_v = detail::type_signature<T>(14695981039346656037ULL);

}  // namespace evs
