// One generic serializer for every type described with Boost.Describe (BOOST_DESCRIBE_STRUCT /
// BOOST_DESCRIBE_ENUM): nobody writes serialize functions by hand.
//
// Supported member types: bool, integers (up to 64-bit), float/double, std::string, described enums (JSON
// writes the enumerator name), std::optional, std::vector, std::array, std::map / std::unordered_map with
// string or integer keys, evs::Uuid, std::chrono::time_point and duration (microseconds), and described
// structs nested to any depth. Types with cereal functions work too, through evs/core/cereal.hpp (include it
// where such a type is used): the codec calls its hooks evs_cereal_save / evs_cereal_load (found by
// argument-dependent lookup) for any type not in this list; cereal.hpp's archives produce these same bytes.
//
// Two encodings (see docs/event-format.md; both are on-disk formats):
//  - binary: members in declaration order, no names. Unsigned integers as LEB128 varints, signed as zigzag
//    varints, doubles as 8 little-endian bytes, strings/containers prefixed with a varint length,
//    optionals with one presence byte. Compact and fast; the schema fingerprint guards its layout.
//    Members of described base classes come first, in base order. Only public members are stored: a type
//    that describes private or protected members (BOOST_DESCRIBE_CLASS) does not compile, nor does a plain
//    struct with a member left out of its description (see checked_public_members).
//  - json: objects keyed by member name, readable and queryable with SQLite's json functions. NaN and
//    infinities are written as the literals NaN / Infinity / -Infinity (a RapidJSON extension) and read back.
#pragma once

#include "evs/core/envelope.hpp"
#include "evs/core/error.hpp"
#include "evs/core/uuid.hpp"

#include <boost/describe/bases.hpp>
#include <boost/describe/class.hpp>
#include <boost/describe/enum.hpp>
#include <boost/describe/enum_from_string.hpp>
#include <boost/describe/enum_to_string.hpp>
#include <boost/describe/members.hpp>
#include <boost/mp11/algorithm.hpp>
#include <boost/pfr/tuple_size.hpp>

#include <array>
#include <charconv>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <limits>
#include <map>
#include <memory>
#include <optional>
#include <ratio>
#include <stdexcept>
#include <string>
#include <string_view>
#include <type_traits>
#include <unordered_map>
#include <vector>

namespace evs {

// Thrown by readers on malformed input; decode() turns it into errc::corrupt_payload.
class DecodeError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

class BinaryWriter {
 public:
  static constexpr bool text = false;
  explicit BinaryWriter(std::string& out) : out_(out) {}

  void write_bool(bool v) { out_.push_back(v ? '\1' : '\0'); }
  void write_uint(std::uint64_t v) {
    char buf[10];
    int n = 0;
    while (v >= 0x80) {
      buf[n++] = static_cast<char>(v | 0x80);
      v >>= 7;
    }
    buf[n++] = static_cast<char>(v);
    out_.append(buf, static_cast<std::size_t>(n));
  }
  void write_int(std::int64_t v) {
    write_uint((static_cast<std::uint64_t>(v) << 1) ^ static_cast<std::uint64_t>(v >> 63));
  }
  void write_double(double v) {
    char buf[8];
    std::memcpy(buf, &v, 8);  // little-endian hosts only (checked in src/json_codec.cpp)
    out_.append(buf, 8);
  }
  void write_string(std::string_view s) {
    write_uint(s.size());
    out_.append(s.data(), s.size());
  }
  void write_enum(std::int64_t value, const char*) { write_int(value); }
  void begin_object() {}
  void field(const char*) {}
  void end_object() {}
  void begin_array(std::size_t n) { write_uint(n); }
  void end_array() {}
  void begin_map(std::size_t n) { write_uint(n); }
  void map_key(std::string_view k) { write_string(k); }
  void end_map() {}
  void begin_optional(bool present) { write_bool(present); }

 private:
  std::string& out_;
};

class BinaryReader {
 public:
  static constexpr bool text = false;
  explicit BinaryReader(std::string_view in) : p_(in.data()), end_(in.data() + in.size()) {}

  bool read_bool() {
    need(1);
    const char c = *p_++;
    if (c != 0 && c != 1) throw DecodeError("invalid boolean byte");
    return c == 1;
  }
  std::uint64_t read_uint() {
    std::uint64_t v = 0;
    for (int shift = 0; shift < 64; shift += 7) {
      need(1);
      const auto b = static_cast<std::uint8_t>(*p_++);
      v |= static_cast<std::uint64_t>(b & 0x7f) << shift;
      if (!(b & 0x80)) return v;
    }
    throw DecodeError("varint longer than 10 bytes");
  }
  std::int64_t read_int() {
    const std::uint64_t u = read_uint();
    return static_cast<std::int64_t>((u >> 1) ^ (~(u & 1) + 1));
  }
  double read_double() {
    need(8);
    double v;
    std::memcpy(&v, p_, 8);
    p_ += 8;
    return v;
  }
  std::string_view read_string_view() {
    const std::uint64_t n = read_uint();
    need(n);
    std::string_view s(p_, static_cast<std::size_t>(n));
    p_ += n;
    return s;
  }
  std::string read_string() { return std::string(read_string_view()); }
  std::int64_t read_enum() { return read_int(); }
  void begin_object() {}
  void field(const char*) {}
  void end_object() {}
  std::size_t begin_array() { return read_count(); }
  void end_array() {}
  std::size_t begin_map() { return read_count(); }
  std::string map_key() { return read_string(); }
  void end_map() {}
  bool read_optional() { return read_bool(); }
  void finish() const {
    if (p_ != end_) throw DecodeError(std::to_string(end_ - p_) + " unexpected trailing bytes");
  }

 private:
  void need(std::uint64_t n) const {
    if (n > static_cast<std::uint64_t>(end_ - p_)) throw DecodeError("payload truncated");
  }
  std::size_t read_count() {
    const std::uint64_t n = read_uint();
    // Every element takes at least one byte, so a count beyond the remaining bytes is corrupt.
    if (n > static_cast<std::uint64_t>(end_ - p_)) throw DecodeError("element count exceeds payload size");
    return static_cast<std::size_t>(n);
  }
  const char* p_;
  const char* end_;
};

// JSON writer/reader; implemented in src/json_codec.cpp so the JSON library stays out of public headers.
class JsonWriter {
 public:
  static constexpr bool text = true;
  explicit JsonWriter(std::string& out);
  ~JsonWriter();
  JsonWriter(const JsonWriter&) = delete;
  JsonWriter& operator=(const JsonWriter&) = delete;

  void write_bool(bool v);
  void write_uint(std::uint64_t v);
  void write_int(std::int64_t v);
  void write_double(double v);
  void write_string(std::string_view s);
  void write_enum(std::int64_t value, const char* name);  // the name, or the number when name is null
  void begin_object();
  void field(const char* name);
  void end_object();
  void begin_array(std::size_t n);
  void end_array();
  void begin_map(std::size_t n);
  void map_key(std::string_view k);
  void end_map();
  void begin_optional(bool present);  // absent: writes null
  void finish();                      // flushes the document into `out`

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

class JsonReader {
 public:
  static constexpr bool text = true;
  explicit JsonReader(std::string_view in);  // throws DecodeError if the text is not JSON
  ~JsonReader();
  JsonReader(const JsonReader&) = delete;
  JsonReader& operator=(const JsonReader&) = delete;

  bool read_bool();
  std::uint64_t read_uint();
  std::int64_t read_int();
  double read_double();
  std::string read_string();
  std::string_view read_string_view();
  // A described enum: the enumerator name (returned in `name`) or a number (returned as the value).
  std::int64_t read_enum(std::string* name);
  void begin_object();
  void field(const char* name);  // a missing member reads as absent for optionals, an error otherwise
  void end_object();
  std::size_t begin_array();
  void end_array();
  std::size_t begin_map();
  std::string map_key();
  void end_map();
  bool read_optional();  // false (and consumed) when null or missing
  void finish() const {}

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

namespace detail {

template <class T> struct is_optional : std::false_type {};
template <class T> struct is_optional<std::optional<T>> : std::true_type {};
template <class T> struct is_vector : std::false_type {};
template <class T, class A> struct is_vector<std::vector<T, A>> : std::true_type {};
template <class T> struct is_array : std::false_type {};
template <class T, std::size_t N> struct is_array<std::array<T, N>> : std::true_type {};
template <class T> struct is_map : std::false_type {};
template <class K, class V, class C, class A> struct is_map<std::map<K, V, C, A>> : std::true_type {};
template <class K, class V, class H, class E, class A>
struct is_map<std::unordered_map<K, V, H, E, A>> : std::true_type {};
template <class T> struct is_time_point : std::false_type {};
template <class C, class D> struct is_time_point<std::chrono::time_point<C, D>> : std::true_type {};
template <class T> struct is_duration : std::false_type {};
template <class R, class P> struct is_duration<std::chrono::duration<R, P>> : std::true_type {};

template <class T>
inline constexpr bool is_described_struct =
    boost::describe::has_describe_members<T>::value && !std::is_union_v<T>;

// How many members T really has, when that can be counted: for an aggregate without described base
// classes, Boost.PFR counts its fields. For other types (a BOOST_DESCRIBE_CLASS class with constructors,
// a struct with described bases) nothing can count them, and the described count is taken as is. A struct
// whose bases are not described would lose their members: PFR refuses it ("Inherited types are not
// supported"), and so does the check below.
template <class T, class Described>
constexpr std::size_t real_member_count() {
  if constexpr (std::is_aggregate_v<T> &&
                boost::mp11::mp_empty<boost::describe::describe_bases<T, boost::describe::mod_any_access>>::value)
    return boost::pfr::tuple_size_v<T>;
  else
    return boost::mp11::mp_size<Described>::value;
}

// The members evs encodes and fingerprints: the public ones, own and inherited. Two silent losses are
// refused at compile time, so no member is ever left out of a payload or a fingerprint without a word:
//  - a type that also describes private or protected members (BOOST_DESCRIBE_CLASS);
//  - an aggregate (a plain struct without bases: events, states, snapshots, saga data, nested members)
//    with a member missing from its BOOST_DESCRIBE_STRUCT / EVS_EVENT list. The diagnostic comes from this
//    template, instantiated on the type, so the compiler names the type.
template <class T>
struct checked_public_members {
  static_assert(boost::mp11::mp_empty<boost::describe::describe_members<
                    T, boost::describe::mod_private | boost::describe::mod_protected |
                           boost::describe::mod_inherited>>::value,
                "evs: this type describes private or protected members, which evs would neither encode nor "
                "fingerprint; make every stored member public (BOOST_DESCRIBE_STRUCT)");
  using type = boost::describe::describe_members<T, boost::describe::mod_public | boost::describe::mod_inherited>;
  static_assert(real_member_count<T, type>() == boost::mp11::mp_size<type>::value,
                "evs: a member of this type is missing from its BOOST_DESCRIBE_STRUCT / EVS_EVENT member list; "
                "it would silently be neither stored nor fingerprinted. Describe every member");
};

template <class T>
using public_members = typename checked_public_members<T>::type;

template <class T>
inline constexpr bool dependent_false = false;

// The types the codec writes itself (containers whatever their elements); any other type goes to the cereal
// hooks.
template <class T>
inline constexpr bool codec_native =
    std::is_arithmetic_v<T> || std::is_enum_v<T> || std::is_same_v<T, std::string> || std::is_same_v<T, Uuid> ||
    is_time_point<T>::value || is_duration<T>::value || is_optional<T>::value || is_vector<T>::value ||
    is_array<T>::value || is_map<T>::value || is_described_struct<T>;

template <class K>
std::string key_to_string(const K& k) {
  if constexpr (std::is_convertible_v<const K&, std::string_view>) {
    return std::string(k);
  } else {
    static_assert(std::is_integral_v<K>, "evs codec: map keys must be strings or integers");
    char buf[24];
    auto r = std::to_chars(buf, buf + sizeof buf, k);
    return std::string(buf, r.ptr);
  }
}

template <class K>
K key_from_string(const std::string& s) {
  if constexpr (std::is_same_v<K, std::string>) {
    return s;
  } else {
    K k{};
    auto r = std::from_chars(s.data(), s.data() + s.size(), k);
    if (r.ec != std::errc{} || r.ptr != s.data() + s.size()) throw DecodeError("bad integer map key '" + s + "'");
    return k;
  }
}

template <class I>
I checked_integer(std::int64_t v) {
  if (v < static_cast<std::int64_t>(std::numeric_limits<I>::min()) ||
      (v > 0 && static_cast<std::uint64_t>(v) > static_cast<std::uint64_t>(std::numeric_limits<I>::max())))
    throw DecodeError("integer " + std::to_string(v) + " out of range");
  return static_cast<I>(v);
}

template <class I>
I checked_unsigned(std::uint64_t v) {
  if (v > static_cast<std::uint64_t>(std::numeric_limits<I>::max()))
    throw DecodeError("integer " + std::to_string(v) + " out of range");
  return static_cast<I>(v);
}

// A count of microseconds read from a payload as the duration D. A count D cannot hold is corrupt input:
// converting it unchecked would overflow (UB) for finer durations such as the nanoseconds of system_clock.
template <class D>
D duration_from_micros(std::int64_t micros) {
  using Rep = typename D::rep;
  if constexpr (std::is_integral_v<Rep>) {
    using factor = std::ratio_divide<std::micro, typename D::period>;  // what duration_cast multiplies by
    constexpr std::int64_t num = factor::num;
    if (micros > std::numeric_limits<std::int64_t>::max() / num || micros < std::numeric_limits<std::int64_t>::min() / num)
      throw DecodeError("time value " + std::to_string(micros) + " us out of range");
    return D(checked_integer<Rep>(micros * num / factor::den));
  } else {
    return std::chrono::duration_cast<D>(std::chrono::microseconds(micros));
  }
}

}  // namespace detail

// Writes one value with any writer (BinaryWriter, JsonWriter).
template <class W, class T>
void encode_value(W& w, const T& v) {
  using namespace detail;
  if constexpr (std::is_same_v<T, bool>) {
    w.write_bool(v);
  } else if constexpr (std::is_enum_v<T>) {
    const char* name = nullptr;
    if constexpr (boost::describe::has_describe_enumerators<T>::value)
      name = boost::describe::enum_to_string(v, static_cast<const char*>(nullptr));
    w.write_enum(static_cast<std::int64_t>(v), name);
  } else if constexpr (std::is_integral_v<T> && std::is_signed_v<T>) {
    w.write_int(v);
  } else if constexpr (std::is_integral_v<T>) {
    w.write_uint(v);
  } else if constexpr (std::is_floating_point_v<T>) {
    w.write_double(static_cast<double>(v));
  } else if constexpr (std::is_same_v<T, std::string>) {
    w.write_string(v);
  } else if constexpr (std::is_same_v<T, Uuid>) {
    if constexpr (W::text) w.write_string(v.to_string());
    else w.write_string(v.bytes_view());
  } else if constexpr (is_time_point<T>::value) {
    w.write_int(std::chrono::duration_cast<std::chrono::microseconds>(v.time_since_epoch()).count());
  } else if constexpr (is_duration<T>::value) {
    w.write_int(std::chrono::duration_cast<std::chrono::microseconds>(v).count());
  } else if constexpr (is_optional<T>::value) {
    w.begin_optional(v.has_value());
    if (v) encode_value(w, *v);
  } else if constexpr (is_vector<T>::value || is_array<T>::value) {
    w.begin_array(v.size());
    for (const auto& e : v) encode_value(w, e);
    w.end_array();
  } else if constexpr (is_map<T>::value) {
    w.begin_map(v.size());
    for (const auto& [k, val] : v) {
      w.map_key(key_to_string(k));
      encode_value(w, val);
    }
    w.end_map();
  } else if constexpr (is_described_struct<T>) {
    w.begin_object();
    boost::mp11::mp_for_each<public_members<T>>([&](auto d) {
      w.field(d.name);
      encode_value(w, v.*d.pointer);
    });
    w.end_object();
  } else if constexpr (requires { evs_cereal_save(w, v); }) {
    evs_cereal_save(w, v);  // a type with cereal functions (evs/core/cereal.hpp)
  } else {
    static_assert(dependent_false<T>,
                  "evs codec: type is not serializable; describe it with BOOST_DESCRIBE_STRUCT, or give it cereal "
                  "functions and include evs/core/cereal.hpp");
  }
}

// Reads one value with any reader (BinaryReader, JsonReader). Throws DecodeError on malformed input.
template <class R, class T>
void decode_value(R& r, T& v) {
  using namespace detail;
  if constexpr (std::is_same_v<T, bool>) {
    v = r.read_bool();
  } else if constexpr (std::is_enum_v<T>) {
    using U = std::underlying_type_t<T>;
    std::int64_t raw;
    if constexpr (R::text) {
      std::string name;
      raw = r.read_enum(&name);
      if (!name.empty()) {
        if constexpr (boost::describe::has_describe_enumerators<T>::value) {
          if (!boost::describe::enum_from_string(name.c_str(), v)) throw DecodeError("unknown enumerator '" + name + "'");
          return;
        } else {
          throw DecodeError("enumerator name '" + name + "' for an undescribed enum");
        }
      }
    } else {
      raw = r.read_enum();
    }
    if constexpr (std::is_signed_v<U>) {
      v = static_cast<T>(checked_integer<U>(raw));
    } else {
      if (raw < 0) throw DecodeError("enumerator " + std::to_string(raw) + " out of range");
      v = static_cast<T>(checked_unsigned<U>(static_cast<std::uint64_t>(raw)));
    }
  } else if constexpr (std::is_integral_v<T> && std::is_signed_v<T>) {
    v = checked_integer<T>(r.read_int());
  } else if constexpr (std::is_integral_v<T>) {
    v = checked_unsigned<T>(r.read_uint());
  } else if constexpr (std::is_floating_point_v<T>) {
    v = static_cast<T>(r.read_double());
  } else if constexpr (std::is_same_v<T, std::string>) {
    v.assign(r.read_string_view());  // reuses v's buffer when decoding into an existing object
  } else if constexpr (std::is_same_v<T, Uuid>) {
    const std::string_view s = r.read_string_view();
    const auto u = R::text ? Uuid::parse(s) : Uuid::from_bytes(s);
    if (!u) throw DecodeError("malformed uuid");
    v = *u;
  } else if constexpr (is_time_point<T>::value) {
    v = T(duration_from_micros<typename T::duration>(r.read_int()));
  } else if constexpr (is_duration<T>::value) {
    v = duration_from_micros<T>(r.read_int());
  } else if constexpr (is_optional<T>::value) {
    if (r.read_optional()) {
      v.emplace();
      decode_value(r, *v);
    } else {
      v.reset();
    }
  } else if constexpr (is_vector<T>::value) {
    const std::size_t n = r.begin_array();
    v.clear();
    v.resize(n);
    for (auto& e : v) decode_value(r, e);
    r.end_array();
  } else if constexpr (is_array<T>::value) {
    const std::size_t n = r.begin_array();
    if (n != v.size()) throw DecodeError("array size " + std::to_string(n) + ", expected " + std::to_string(v.size()));
    for (auto& e : v) decode_value(r, e);
    r.end_array();
  } else if constexpr (is_map<T>::value) {
    const std::size_t n = r.begin_map();
    v.clear();
    for (std::size_t i = 0; i < n; ++i) {
      auto key = key_from_string<typename T::key_type>(r.map_key());
      decode_value(r, v[std::move(key)]);
    }
    r.end_map();
  } else if constexpr (is_described_struct<T>) {
    r.begin_object();
    boost::mp11::mp_for_each<public_members<T>>([&](auto d) {
      r.field(d.name);
      decode_value(r, v.*d.pointer);
    });
    r.end_object();
  } else if constexpr (requires { evs_cereal_load(r, v); }) {
    evs_cereal_load(r, v);  // a type with cereal functions (evs/core/cereal.hpp)
  } else {
    static_assert(dependent_false<T>,
                  "evs codec: type is not serializable; describe it with BOOST_DESCRIBE_STRUCT, or give it cereal "
                  "functions and include evs/core/cereal.hpp");
  }
}

// Appends the encoding of `v` to `out`.
template <class T>
void encode_to(std::string& out, const T& v, Encoding e) {
  if (e == Encoding::binary) {
    BinaryWriter w(out);
    encode_value(w, v);
  } else {
    JsonWriter w(out);
    encode_value(w, v);
    w.finish();
  }
}

template <class T>
std::string encode(const T& v, Encoding e) {
  std::string out;
  encode_to(out, v, e);
  return out;
}

// Decodes `bytes` into `out`. Errors: corrupt_payload with what was wrong.
template <class T>
[[nodiscard]] Result<void> decode_into(std::string_view bytes, Encoding e, T& out) {
  try {
    if (e == Encoding::binary) {
      BinaryReader r(bytes);
      decode_value(r, out);
      r.finish();
    } else if (e == Encoding::json) {
      JsonReader r(bytes);
      decode_value(r, out);
    } else {
      return Error{errc::corrupt_payload, "unknown encoding " + std::to_string(static_cast<int>(e))};
    }
    return {};
  } catch (const DecodeError& x) {
    return Error{errc::corrupt_payload, x.what()};
  }
}

template <class T>
[[nodiscard]] Result<T> decode(std::string_view bytes, Encoding e) {
  T out{};
  if (auto r = decode_into(bytes, e, out); !r) return r.error();
  return out;
}

}  // namespace evs
