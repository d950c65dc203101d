// A parsed, validated safetensors header. The format: an 8-byte little-endian
// header length N, N bytes of JSON, then the data buffer. Every rule the
// parser enforces is listed in ParseHeader's comment; a header that passes
// describes tensors that tile the data buffer exactly.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "runtime/base/status.h"
#include "runtime/safetensors/dtype.h"

namespace residency::safetensors {

// Headers above this are rejected before any allocation (the reference
// implementation's own cap).
inline constexpr std::uint64_t kMaxHeaderBytes = 100ull << 20;
inline constexpr std::uint64_t kLengthPrefixBytes = 8;

struct TensorInfo {
  std::string name;
  DType dtype = DType::kU8;
  std::vector<std::uint64_t> shape;
  std::uint64_t begin = 0;  // offsets relative to the data buffer
  std::uint64_t end = 0;
  std::uint64_t bytes() const { return end - begin; }
};

struct Header {
  std::uint64_t header_bytes = 0;  // N, the JSON length
  std::uint64_t data_offset = 0;   // 8 + N: where the data buffer starts in the file
  std::uint64_t data_bytes = 0;    // file size - data_offset
  std::vector<TensorInfo> tensors;  // sorted by data offset
  std::map<std::string, std::string> metadata;
};

// Decodes the 8-byte prefix and checks it against the cap and the file size.
// `origin` (a file name) starts every message.
Result<std::uint64_t> ParseHeaderLength(const unsigned char prefix[8], std::uint64_t file_bytes,
                                        std::string_view origin);

// Parses and validates the JSON header of a file of `file_bytes` bytes whose
// header length is json.size(). Rules, each named in its error message:
//  - the JSON is one strict object; top-level keys are tensor names or
//    "__metadata__"; no key appears twice at any level;
//  - "__metadata__" maps strings to strings;
//  - a tensor has exactly "dtype" (from the table in dtype.h), "shape" (array
//    of non-negative integers) and "data_offsets" ([begin, end], begin <= end);
//  - shape product x item size == end - begin, with no overflow;
//  - sorted by offset, tensors start at 0, each begins where the previous
//    ended (no holes, no overlaps), and the last ends at the end of the file
//    (a shorter file is truncated).
Result<Header> ParseHeader(std::string_view json, std::uint64_t file_bytes,
                           std::string_view origin);

// Parses a whole in-memory file image (prefix + JSON + data); for fuzzing
// and tests.
Result<Header> ParseFileImage(std::string_view image, std::string_view origin);

// Reads and parses the header of the file at `path` (two preads).
Result<Header> ReadHeader(const std::string& path);

}  // namespace residency::safetensors
