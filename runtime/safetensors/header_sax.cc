#include "runtime/safetensors/header_sax.h"

#include "runtime/base/input_text.h"

namespace residency::safetensors {

bool HeaderSax::Fail(std::string why) {
  if (error_.empty()) error_ = Context() + why;
  return false;
}

std::string HeaderSax::Context() const {
  switch (where_) {
    case Where::kStart:
    case Where::kTop:
    case Where::kEnd:
      return "";
    case Where::kMetadata:
      return "__metadata__: ";
    case Where::kTensor:
    case Where::kShape:
    case Where::kOffsets:
      return "tensor '" + Printable(top_key_) + "'" + (field_.empty() ? "" : " field '" + Printable(field_) + "'") + ": ";
  }
  return "";
}

bool HeaderSax::number_integer(json::number_integer_t v) {
  if (v >= 0) return number_unsigned(static_cast<json::number_unsigned_t>(v));
  return Fail("negative number " + std::to_string(v));
}

bool HeaderSax::number_unsigned(json::number_unsigned_t v) {
  if (where_ == Where::kShape) {
    current_.shape.push_back(v);
    return true;
  }
  if (where_ == Where::kOffsets) {
    if (offsets_.size() == 2) return Fail("data_offsets must have exactly 2 entries");
    offsets_.push_back(v);
    return true;
  }
  return Fail("a number is not allowed here");
}

bool HeaderSax::string(json::string_t& value) {
  if (where_ == Where::kMetadata) {
    metadata_[field_] = value;
    field_.clear();
    return true;
  }
  if (where_ == Where::kTensor && field_ == "dtype") {
    const auto dtype = ParseDType(value);
    if (!dtype) return Fail("unknown dtype \"" + Printable(value) + "\"");
    current_.dtype = *dtype;
    has_dtype_ = true;
    field_.clear();
    return true;
  }
  return Fail("a string is not allowed here");
}

bool HeaderSax::start_object(std::size_t) {
  if (where_ == Where::kStart) {
    where_ = Where::kTop;
    return true;
  }
  if (where_ == Where::kTop && !top_key_.empty()) {
    fields_.clear();
    field_.clear();
    if (top_key_ == "__metadata__") {
      where_ = Where::kMetadata;
      return true;
    }
    where_ = Where::kTensor;
    current_ = TensorInfo{};
    current_.name = top_key_;
    offsets_.clear();
    has_dtype_ = false;
    return true;
  }
  if (where_ == Where::kEnd) return Fail("the header has trailing data after its object");
  return Fail("an object is not allowed here");
}

bool HeaderSax::end_object() {
  switch (where_) {
    case Where::kTop:
      where_ = Where::kEnd;
      return true;
    case Where::kMetadata:
      where_ = Where::kTop;
      top_key_.clear();
      return true;
    case Where::kTensor:
      field_.clear();
      if (!has_dtype_) return Fail("missing field 'dtype'");
      if (!fields_.count("shape")) return Fail("missing field 'shape'");
      if (!fields_.count("data_offsets")) return Fail("missing field 'data_offsets'");
      current_.begin = offsets_[0];
      current_.end = offsets_[1];
      tensors_.push_back(std::move(current_));
      where_ = Where::kTop;
      top_key_.clear();
      return true;
    default:
      return Fail("unexpected end of object");
  }
}

bool HeaderSax::start_array(std::size_t) {
  if (where_ == Where::kTensor && field_ == "shape") {
    where_ = Where::kShape;
    return true;
  }
  if (where_ == Where::kTensor && field_ == "data_offsets") {
    where_ = Where::kOffsets;
    return true;
  }
  if (where_ == Where::kStart) return Fail("the header must be a JSON object, not an array");
  return Fail("an array is not allowed here");
}

bool HeaderSax::end_array() {
  if (where_ == Where::kShape) {
    where_ = Where::kTensor;
    field_.clear();
    return true;
  }
  if (where_ == Where::kOffsets) {
    if (offsets_.size() != 2) return Fail("data_offsets must have exactly 2 entries");
    where_ = Where::kTensor;
    field_.clear();
    return true;
  }
  return Fail("unexpected end of array");
}

bool HeaderSax::key(json::string_t& key) {
  if (where_ == Where::kTop) {
    if (key.empty()) return Fail("a tensor name must not be empty");
    if (!top_keys_.insert(key).second)
      return Fail(key == "__metadata__" ? "duplicate key '__metadata__'"
                                        : "duplicate tensor name '" + Printable(key) + "'");
    top_key_ = key;
    return true;
  }
  if (where_ == Where::kMetadata) {
    if (!fields_.insert(key).second) return Fail("duplicate metadata key '" + Printable(key) + "'");
    field_ = key;
    return true;
  }
  if (where_ == Where::kTensor) {
    if (key != "dtype" && key != "shape" && key != "data_offsets")
      return Fail("unknown field '" + Printable(key) + "' (expected dtype, shape, data_offsets)");
    if (!fields_.insert(key).second) return Fail("duplicate field '" + Printable(key) + "'");
    field_ = key;
    return true;
  }
  return Fail("a key is not allowed here");
}

bool HeaderSax::parse_error(std::size_t position, const std::string&,
                            const nlohmann::detail::exception& ex) {
  if (!error_.empty()) return false;  // our own rule stopped the parse first
  std::string what = ex.what();
  // nlohmann's messages start with "[json.exception.parse_error.101] "; keep the rest.
  if (const auto pos = what.find("] "); pos != std::string::npos) what = what.substr(pos + 2);
  error_ = "invalid JSON at byte " + std::to_string(position) + ": " + what;
  return false;
}

}  // namespace residency::safetensors
