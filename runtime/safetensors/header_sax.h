// A SAX handler for nlohmann::json that reads a safetensors header straight
// into TensorInfo records. Streaming keeps memory bounded by the header, lets
// it reject duplicate keys (a DOM parse would silently keep the last one) and
// stops at the first rule broken.
#pragma once

#include <set>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "runtime/safetensors/header.h"

namespace residency::safetensors {

class HeaderSax {
 public:
  using json = nlohmann::json;

  bool null() { return Fail("null is not allowed here"); }
  bool boolean(bool) { return Fail("a boolean is not allowed here"); }
  bool number_integer(json::number_integer_t v);
  bool number_unsigned(json::number_unsigned_t v);
  bool number_float(json::number_float_t, const json::string_t&) {
    return Fail("a non-integer number is not allowed here");
  }
  bool string(json::string_t& value);
  bool binary(json::binary_t&) { return Fail("binary values are not allowed"); }
  bool start_object(std::size_t);
  bool end_object();
  bool start_array(std::size_t);
  bool end_array();
  bool key(json::string_t& key);
  bool parse_error(std::size_t position, const std::string&, const nlohmann::detail::exception&);

  // After a successful parse: the tensors in header order, and metadata.
  std::vector<TensorInfo>& tensors() { return tensors_; }
  std::map<std::string, std::string>& metadata() { return metadata_; }
  const std::string& error() const { return error_; }

 private:
  enum class Where { kStart, kTop, kTensor, kMetadata, kShape, kOffsets, kEnd };
  bool Fail(std::string why);
  std::string Context() const;

  Where where_ = Where::kStart;
  std::string top_key_;    // the tensor name (or __metadata__) being read
  std::string field_;      // the tensor field being read
  std::set<std::string> top_keys_;
  std::set<std::string> fields_;
  TensorInfo current_;
  std::vector<std::uint64_t> offsets_;
  bool has_dtype_ = false;
  std::vector<TensorInfo> tensors_;
  std::map<std::string, std::string> metadata_;
  std::string error_;
};

}  // namespace residency::safetensors
