// JsonWriter / JsonReader on RapidJSON (the JSON library cereal uses), kept out of the public headers.
#include "evs/core/codec.hpp"
#include "evs/core/detail/json_parse.hpp"

#include <rapidjson/document.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <bit>

static_assert(std::endian::native == std::endian::little, "evs binary encoding assumes a little-endian host");

namespace evs {

struct JsonWriter::Impl {
  explicit Impl(std::string& o) : out(o), writer(buffer) {}
  std::string& out;
  rapidjson::StringBuffer buffer;
  rapidjson::Writer<rapidjson::StringBuffer, rapidjson::UTF8<>, rapidjson::UTF8<>, rapidjson::CrtAllocator,
                    rapidjson::kWriteNanAndInfFlag>
      writer;
};

JsonWriter::JsonWriter(std::string& out) : impl_(std::make_unique<Impl>(out)) {}
JsonWriter::~JsonWriter() = default;
void JsonWriter::write_bool(bool v) { impl_->writer.Bool(v); }
void JsonWriter::write_uint(std::uint64_t v) { impl_->writer.Uint64(v); }
void JsonWriter::write_int(std::int64_t v) { impl_->writer.Int64(v); }
void JsonWriter::write_double(double v) { impl_->writer.Double(v); }
void JsonWriter::write_string(std::string_view s) {
  impl_->writer.String(s.data(), static_cast<rapidjson::SizeType>(s.size()), true);
}
void JsonWriter::write_enum(std::int64_t value, const char* name) {
  if (name) impl_->writer.String(name);
  else impl_->writer.Int64(value);
}
void JsonWriter::begin_object() { impl_->writer.StartObject(); }
void JsonWriter::field(const char* name) { impl_->writer.Key(name); }
void JsonWriter::end_object() { impl_->writer.EndObject(); }
void JsonWriter::begin_array(std::size_t) { impl_->writer.StartArray(); }
void JsonWriter::end_array() { impl_->writer.EndArray(); }
void JsonWriter::begin_map(std::size_t) { impl_->writer.StartObject(); }
void JsonWriter::map_key(std::string_view k) {
  impl_->writer.Key(k.data(), static_cast<rapidjson::SizeType>(k.size()), true);
}
void JsonWriter::end_map() { impl_->writer.EndObject(); }
void JsonWriter::begin_optional(bool present) {
  if (!present) impl_->writer.Null();
}
void JsonWriter::finish() { impl_->out.append(impl_->buffer.GetString(), impl_->buffer.GetSize()); }

namespace {

struct Frame {
  enum Kind { object, array, map } kind;
  const rapidjson::Value* value;
  rapidjson::SizeType index = 0;                        // arrays
  rapidjson::Value::ConstMemberIterator member{};       // maps
};

}  // namespace

struct JsonReader::Impl {
  rapidjson::Document doc;
  std::vector<Frame> stack;
  const rapidjson::Value* pending = nullptr;  // the value the next read consumes (object member / map value)
  bool root_taken = false;
  bool missing = false;                        // the last field() named a member that is not there
  std::string missing_name;

  const rapidjson::Value* peek() {
    if (stack.empty()) {
      if (root_taken) throw DecodeError("read past the end of the document");
      return &doc;
    }
    Frame& f = stack.back();
    if (f.kind == Frame::array) {
      if (f.index >= f.value->Size()) throw DecodeError("read past the end of an array");
      return &(*f.value)[f.index];
    }
    if (missing) throw DecodeError("missing member '" + missing_name + "'");
    if (!pending) throw DecodeError("value read without a member name");
    return pending;
  }
  const rapidjson::Value& take() {
    const rapidjson::Value* v = peek();
    if (stack.empty()) root_taken = true;
    else if (stack.back().kind == Frame::array) ++stack.back().index;
    else pending = nullptr;
    return *v;
  }
  void skip_absent() {
    if (!stack.empty() && stack.back().kind != Frame::array && missing) {
      missing = false;
      return;
    }
    take();
  }
};

JsonReader::JsonReader(std::string_view in) : impl_(std::make_unique<Impl>()) {
  if (std::string error = detail::parse_json(in, impl_->doc); !error.empty()) throw DecodeError(std::move(error));
}
JsonReader::~JsonReader() = default;

bool JsonReader::read_bool() {
  const auto& v = impl_->take();
  if (!v.IsBool()) throw DecodeError("expected a boolean");
  return v.GetBool();
}
std::uint64_t JsonReader::read_uint() {
  const auto& v = impl_->take();
  if (!v.IsUint64()) throw DecodeError("expected an unsigned integer");
  return v.GetUint64();
}
std::int64_t JsonReader::read_int() {
  const auto& v = impl_->take();
  if (!v.IsInt64()) throw DecodeError("expected an integer");
  return v.GetInt64();
}
double JsonReader::read_double() {
  const auto& v = impl_->take();
  if (!v.IsNumber()) throw DecodeError("expected a number");
  return v.GetDouble();
}
std::string_view JsonReader::read_string_view() {
  const auto& v = impl_->take();
  if (!v.IsString()) throw DecodeError("expected a string");
  return {v.GetString(), v.GetStringLength()};
}
std::string JsonReader::read_string() { return std::string(read_string_view()); }
std::int64_t JsonReader::read_enum(std::string* name) {
  const auto& v = impl_->take();
  if (v.IsString()) {
    name->assign(v.GetString(), v.GetStringLength());
    return 0;
  }
  if (!v.IsInt64()) throw DecodeError("expected an enumerator name or number");
  name->clear();
  return v.GetInt64();
}
void JsonReader::begin_object() {
  const auto& v = impl_->take();
  if (!v.IsObject()) throw DecodeError("expected an object");
  impl_->stack.push_back({Frame::object, &v});
}
void JsonReader::field(const char* name) {
  Frame& f = impl_->stack.back();
  auto it = f.value->FindMember(name);
  impl_->missing = it == f.value->MemberEnd();
  if (impl_->missing) {
    impl_->missing_name = name;
    impl_->pending = nullptr;
  } else {
    impl_->pending = &it->value;
  }
}
void JsonReader::end_object() { impl_->stack.pop_back(); }
std::size_t JsonReader::begin_array() {
  const auto& v = impl_->take();
  if (!v.IsArray()) throw DecodeError("expected an array");
  impl_->stack.push_back({Frame::array, &v});
  return v.Size();
}
void JsonReader::end_array() { impl_->stack.pop_back(); }
std::size_t JsonReader::begin_map() {
  const auto& v = impl_->take();
  if (!v.IsObject()) throw DecodeError("expected an object");
  impl_->stack.push_back({Frame::map, &v, 0, v.MemberBegin()});
  return v.MemberCount();
}
std::string JsonReader::map_key() {
  Frame& f = impl_->stack.back();
  std::string key(f.member->name.GetString(), f.member->name.GetStringLength());
  impl_->pending = &f.member->value;
  ++f.member;
  return key;
}
void JsonReader::end_map() { impl_->stack.pop_back(); }
bool JsonReader::read_optional() {
  if (!impl_->stack.empty() && impl_->stack.back().kind != Frame::array && impl_->missing) {
    impl_->skip_absent();
    return false;
  }
  if (impl_->peek()->IsNull()) {
    impl_->take();
    return false;
  }
  return true;
}

}  // namespace evs
