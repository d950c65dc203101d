// libFuzzer target: any bytes as a safetensors file image. The parser must
// return a Status, never crash or hang; what it accepts must tile the data
// buffer exactly.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "runtime/safetensors/header.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace residency::safetensors;
  const std::string_view image(reinterpret_cast<const char*>(data), size);
  auto header = ParseFileImage(image, "fuzz.safetensors");
  if (!header.ok()) {
    if (header.status().message().rfind("fuzz.safetensors", 0) != 0) __builtin_trap();  // must name the file
    return 0;
  }
  std::uint64_t cursor = 0;
  for (const TensorInfo& t : header->tensors) {
    if (t.begin != cursor || t.end < t.begin) __builtin_trap();
    std::uint64_t bytes = ItemSize(t.dtype);
    for (std::uint64_t d : t.shape) bytes *= d;
    if (bytes != t.bytes()) __builtin_trap();
    cursor = t.end;
  }
  if (cursor != header->data_bytes || header->data_offset + header->data_bytes != size) __builtin_trap();
  return 0;
}
