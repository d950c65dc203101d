// Writes well-formed safetensors files with deterministic content: for
// `residency gen-model`, tests and benchmarks. Not a general serializer.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "runtime/base/status.h"
#include "runtime/safetensors/dtype.h"

namespace residency::safetensors {

struct TensorSpec {
  std::string name;
  DType dtype = DType::kU8;
  std::vector<std::uint64_t> shape;
};

// A tensor of exactly `bytes` bytes: BF16 when the size is even, else U8.
TensorSpec TensorOfBytes(std::string name, std::uint64_t bytes);

// Writes `tensors` in order, data contiguous from 0, the header padded with
// spaces to a multiple of 8. Content: the splitmix64 sequence
// from `seed`, one value per 8-byte word.
// `progress`, when given, is called with (data bytes written, data bytes in
// all) every 64 MiB and at the end.
Status WriteFile(const std::string& path, const std::vector<TensorSpec>& tensors,
                 std::uint64_t seed,
                 const std::function<void(std::uint64_t, std::uint64_t)>& progress = {});

// Tensor specs whose file (header included) is exactly `file_bytes` long:
// the given sizes (one tensor if none), the largest shrunk by the header's
// size. Errors name `origin` when the file is too small for its header.
Result<std::vector<TensorSpec>> FitToFileSize(const std::string& origin,
                                              const std::vector<std::int64_t>& tensor_bytes,
                                              std::int64_t file_bytes);

// The serialized header JSON that WriteFile would use (unpadded); tests build
// malformed variants from it.
std::string HeaderJson(const std::vector<TensorSpec>& tensors);

}  // namespace residency::safetensors
