// cereal and evs. Include this header (it needs cereal's core, <cereal/cereal.hpp>, and no cereal archive)
// where a type that has cereal functions is used inside an event or a state, or where described types are
// written with cereal's own archives. It gives three things:
//
//  1. A generic cereal `serialize` for every Boost.Describe struct, found by argument-dependent lookup through
//     the archive (it lives in namespace cereal, like cereal's own std:: support). It writes each public
//     member as make_nvp(name, member), in description order. A type with its own cereal functions
//     (member serialize/save/load, non-member save/load, any minimal or versioned form) is skipped; a type's
//     own non-member serialize is more specialized and wins. With cereal's archives the member types need
//     their usual cereal support (<cereal/types/string.hpp> ...).
//
//  2. evs's payload encodings as cereal archives: CerealOutputArchive<W> / CerealInputArchive<R> over the
//     codec's writers and readers (BinaryWriter / BinaryReader for the binary format, JsonWriter / JsonReader
//     for JSON). Every type the codec knows (see codec.hpp) is written exactly as the codec writes it, so the
//     bytes are those of docs/event-format.md; anything else goes through the type's cereal functions, whose
//     `ar(...)` calls come back to the codec's rules. encode_cereal / decode_cereal run a whole value through
//     them (the golden tests prove the bytes equal the codec's).
//
//  3. Member types that only have cereal functions (serialize, save/load, save_minimal/load_minimal; not the
//     versioned forms) work inside events, states and snapshots, in both encodings:
//       - binary: what their functions write, in order, with no names (a size tag is a varint);
//       - JSON: an object whose members are named by make_nvp, or "value0", "value1"... for unnamed values
//         (cereal's own JSON convention); a minimal type is its single value.
//     The codec's hot path never builds a cereal archive: it does only for these member types.
//     Their fingerprint: such a type must name its schema, `static constexpr const char* evs_schema_name =
//     "shop.money/1";` (or a non-member `constexpr const char* evs_schema_name(const T*)` found by ADL, for
//     types you cannot change), and its signature is `cereal<` + that name + `>;`. Change the name whenever
//     what its functions write changes; evs cannot see inside them.
#pragma once

#include "evs/core/codec.hpp"

#include <cereal/cereal.hpp>

#include <cstddef>
#include <string>
#include <string_view>
#include <type_traits>
#include <vector>

namespace evs {

template <class W>
class CerealOutputArchive;
template <class R>
class CerealInputArchive;

namespace detail {

template <class T> struct is_nvp : std::false_type {};
template <class T> struct is_nvp<cereal::NameValuePair<T>> : std::true_type {};
template <class T> struct is_size_tag : std::false_type {};
template <class T> struct is_size_tag<cereal::SizeTag<T>> : std::true_type {};

// Whether T has cereal functions of its own for the output archive A / the input archive A.
template <class T, class A>
inline constexpr bool has_cereal_output =
    cereal::traits::has_member_serialize<T, A>::value || cereal::traits::has_non_member_serialize<T, A>::value ||
    cereal::traits::has_member_save<T, A>::value || cereal::traits::has_non_member_save<T, A>::value ||
    cereal::traits::has_member_save_minimal<T, A>::value || cereal::traits::has_non_member_save_minimal<T, A>::value;
template <class T, class A>
inline constexpr bool has_cereal_input =
    cereal::traits::has_member_serialize<T, A>::value || cereal::traits::has_non_member_serialize<T, A>::value ||
    cereal::traits::has_member_load<T, A>::value || cereal::traits::has_non_member_load<T, A>::value ||
    cereal::traits::has_member_load_minimal<T, A>::value || cereal::traits::has_non_member_load_minimal<T, A>::value;
template <class T, class A>
inline constexpr bool has_cereal_versioned =
    cereal::traits::has_member_versioned_serialize<T, A>::value ||
    cereal::traits::has_non_member_versioned_serialize<T, A>::value ||
    cereal::traits::has_member_versioned_save<T, A>::value || cereal::traits::has_non_member_versioned_save<T, A>::value ||
    cereal::traits::has_member_versioned_load<T, A>::value || cereal::traits::has_non_member_versioned_load<T, A>::value ||
    cereal::traits::has_member_versioned_save_minimal<T, A>::value ||
    cereal::traits::has_non_member_versioned_save_minimal<T, A>::value ||
    cereal::traits::has_member_versioned_load_minimal<T, A>::value ||
    cereal::traits::has_non_member_versioned_load_minimal<T, A>::value;

// A described struct brings no cereal functions of its own (non-member serialize excepted: see above). Checked
// only for described structs (the generic serialize's constraint tests is_described_struct first).
template <class T, class A>
inline constexpr bool no_own_cereal_functions =
    !cereal::traits::has_member_serialize<T, A>::value &&
    !cereal::traits::has_member_save<T, A>::value && !cereal::traits::has_member_load<T, A>::value &&
    !cereal::traits::has_non_member_save<T, A>::value && !cereal::traits::has_non_member_load<T, A>::value &&
    !cereal::traits::has_member_save_minimal<T, A>::value && !cereal::traits::has_member_load_minimal<T, A>::value &&
    !cereal::traits::has_non_member_save_minimal<T, A>::value &&
    !cereal::traits::has_non_member_load_minimal<T, A>::value && !has_cereal_versioned<T, A>;

// Names the unnamed values of a cereal object in JSON: "value0", "value1"...
class CerealObjectNames {
 public:
  void open() { counters_.push_back(0); }
  void close() { counters_.pop_back(); }
  bool inside() const { return !counters_.empty(); }
  const char* next(const char* name) {
    if (name) return name;
    scratch_ = "value" + std::to_string(counters_.back()++);
    return scratch_.c_str();
  }

 private:
  std::vector<std::size_t> counters_;
  std::string scratch_;
};

struct BinaryArchiveTag {};
template <bool Text>
using archive_kind = std::conditional_t<Text, cereal::traits::TextArchive, BinaryArchiveTag>;  // cereal's text trait

template <class R> struct writer_for;
template <> struct writer_for<BinaryReader> { using type = BinaryWriter; };
template <> struct writer_for<JsonReader> { using type = JsonWriter; };
template <class W> struct reader_for;
template <> struct reader_for<BinaryWriter> { using type = BinaryReader; };
template <> struct reader_for<JsonWriter> { using type = JsonReader; };

}  // namespace detail

// evs's encoding W (BinaryWriter or JsonWriter) as a cereal output archive. It appends to W's output.
template <class W>
class CerealOutputArchive : public cereal::OutputArchive<CerealOutputArchive<W>, cereal::AllowEmptyClassElision>,
                            public detail::archive_kind<W::text> {
 public:
  explicit CerealOutputArchive(W& writer)
      : cereal::OutputArchive<CerealOutputArchive<W>, cereal::AllowEmptyClassElision>(this), w_(writer) {}

  template <class... T>
  CerealOutputArchive& operator()(T&&... values) {
    (write(values, nullptr), ...);
    return *this;
  }

 private:
  template <class T>
  void write(const T& v, const char* name) {
    if constexpr (detail::is_nvp<T>::value) {
      write(v.value, v.name);
    } else if constexpr (detail::is_size_tag<T>::value) {
      if constexpr (W::text) {
        if (names_.inside()) {  // JSON has no place for it but a member
          w_.field(names_.next("size"));
          w_.write_uint(static_cast<std::uint64_t>(v.size));
        }
      } else {
        w_.write_uint(static_cast<std::uint64_t>(v.size));
      }
    } else {
      if constexpr (W::text) {
        if (names_.inside()) w_.field(names_.next(name));
      }
      if constexpr (detail::codec_native<T>) {
        encode_value(w_, v);
      } else {
        write_cereal(v);
      }
    }
  }

  template <class T>
  void write_cereal(const T& v) {
    static_assert(!detail::has_cereal_versioned<T, CerealOutputArchive>,
                  "evs: versioned cereal functions are not supported inside events (evs has schema versions)");
    namespace tr = cereal::traits;
    using A = CerealOutputArchive;
    // A minimal type's value (an arithmetic type or a string) takes the place of the type, under its name.
    if constexpr (tr::has_member_save_minimal<T, A>::value) {
      encode_value(w_, cereal::access::member_save_minimal(std::as_const(*this), v));
    } else if constexpr (tr::has_non_member_save_minimal<T, A>::value) {
      encode_value(w_, save_minimal(std::as_const(*this), v));
    } else {
      static_assert(detail::has_cereal_output<T, A>, "evs: this type has neither evs nor cereal serialization");
      if constexpr (W::text) {
        w_.begin_object();
        names_.open();
      }
      if constexpr (tr::has_member_serialize<T, A>::value)
        cereal::access::member_serialize(*this, const_cast<T&>(v));
      else if constexpr (tr::has_non_member_serialize<T, A>::value)
        serialize(*this, const_cast<T&>(v));
      else if constexpr (tr::has_member_save<T, A>::value)
        cereal::access::member_save(*this, v);
      else
        save(*this, v);
      if constexpr (W::text) {
        names_.close();
        w_.end_object();
      }
    }
  }

  W& w_;
  detail::CerealObjectNames names_;
};

// evs's encoding R (BinaryReader or JsonReader) as a cereal input archive. Throws DecodeError on bad input.
template <class R>
class CerealInputArchive : public cereal::InputArchive<CerealInputArchive<R>, cereal::AllowEmptyClassElision>,
                           public detail::archive_kind<R::text> {
 public:
  explicit CerealInputArchive(R& reader)
      : cereal::InputArchive<CerealInputArchive<R>, cereal::AllowEmptyClassElision>(this), r_(reader) {}

  template <class... T>
  CerealInputArchive& operator()(T&&... values) {
    (read(values, nullptr), ...);
    return *this;
  }

 private:
  template <class T>
  void read(T& v, const char* name) {
    if constexpr (detail::is_nvp<std::remove_cv_t<T>>::value) {
      read(v.value, v.name);
    } else if constexpr (detail::is_size_tag<std::remove_cv_t<T>>::value) {
      if constexpr (R::text) {
        if (!names_.inside()) throw DecodeError("a cereal size tag outside an object");
        r_.field(names_.next("size"));
      }
      v.size = static_cast<std::remove_reference_t<decltype(v.size)>>(r_.read_uint());
    } else {
      if constexpr (R::text) {
        if (names_.inside()) r_.field(names_.next(name));
      }
      if constexpr (detail::codec_native<T>) {
        decode_value(r_, v);
      } else {
        read_cereal(v);
      }
    }
  }

  template <class T>
  void read_cereal(T& v) {
    static_assert(!detail::has_cereal_versioned<T, CerealInputArchive>,
                  "evs: versioned cereal functions are not supported inside events (evs has schema versions)");
    namespace tr = cereal::traits;
    using A = CerealInputArchive;
    using Out = CerealOutputArchive<typename detail::writer_for<R>::type>;
    if constexpr (tr::has_member_load_minimal<T, A>::value) {
      std::remove_cvref_t<decltype(cereal::access::member_save_minimal(std::declval<const Out&>(), v))> raw{};
      decode_value(r_, raw);
      cereal::access::member_load_minimal(std::as_const(*this), v, raw);
    } else if constexpr (tr::has_non_member_load_minimal<T, A>::value) {
      std::remove_cvref_t<decltype(save_minimal(std::declval<const Out&>(), v))> raw{};
      decode_value(r_, raw);
      load_minimal(std::as_const(*this), v, raw);
    } else {
      static_assert(detail::has_cereal_input<T, A>, "evs: this type has neither evs nor cereal serialization");
      if constexpr (R::text) {
        r_.begin_object();
        names_.open();
      }
      if constexpr (tr::has_member_serialize<T, A>::value)
        cereal::access::member_serialize(*this, v);
      else if constexpr (tr::has_non_member_serialize<T, A>::value)
        serialize(*this, v);
      else if constexpr (tr::has_member_load<T, A>::value)
        cereal::access::member_load(*this, v);
      else
        load(*this, v);
      if constexpr (R::text) {
        names_.close();
        r_.end_object();
      }
    }
  }

  R& r_;
  detail::CerealObjectNames names_;
};

// The codec's hooks for types it does not know (codec.hpp calls them through argument-dependent lookup).
template <class W, class T>
  requires detail::has_cereal_output<T, CerealOutputArchive<W>>
void evs_cereal_save(W& w, const T& v) {
  CerealOutputArchive<W> ar(w);
  ar(v);
}

template <class R, class T>
  requires detail::has_cereal_input<T, CerealInputArchive<R>>
void evs_cereal_load(R& r, T& v) {
  CerealInputArchive<R> ar(r);
  ar(v);
}

// A whole value through the cereal archives: the same bytes as evs::encode / evs::decode_into.
template <class T>
std::string encode_cereal(const T& v, Encoding e) {
  std::string out;
  if (e == Encoding::binary) {
    BinaryWriter w(out);
    CerealOutputArchive<BinaryWriter> ar(w);
    ar(v);
  } else {
    JsonWriter w(out);
    CerealOutputArchive<JsonWriter> ar(w);
    ar(v);
    w.finish();
  }
  return out;
}

template <class T>
[[nodiscard]] Result<void> decode_cereal(std::string_view bytes, Encoding e, T& out) {
  try {
    if (e == Encoding::binary) {
      BinaryReader r(bytes);
      CerealInputArchive<BinaryReader> ar(r);
      ar(out);
      r.finish();
    } else if (e == Encoding::json) {
      JsonReader r(bytes);
      CerealInputArchive<JsonReader> ar(r);
      ar(out);
    } else {
      return Error{errc::corrupt_payload, "unknown encoding " + std::to_string(static_cast<int>(e))};
    }
    return {};
  } catch (const DecodeError& x) {
    return Error{errc::corrupt_payload, x.what()};
  }
}

}  // namespace evs

namespace cereal {

// Pairs each evs input archive with its output archive (cereal's minimal-serialization traits need it).
namespace traits::detail {
template <class R>
struct get_output_from_input<evs::CerealInputArchive<R>> {
  using type = evs::CerealOutputArchive<typename evs::detail::writer_for<R>::type>;
};
template <class W>
struct get_input_from_output<evs::CerealOutputArchive<W>> {
  using type = evs::CerealInputArchive<typename evs::detail::reader_for<W>::type>;
};
}  // namespace traits::detail

// The generic serialize for described structs (see the header comment).
template <class Archive, class T>
  requires evs::detail::is_described_struct<T> && evs::detail::no_own_cereal_functions<T, Archive>
void serialize(Archive& ar, T& v) {
  boost::mp11::mp_for_each<evs::detail::public_members<T>>(
      [&](auto d) { ar(::cereal::make_nvp(d.name, v.*d.pointer)); });
}

}  // namespace cereal
