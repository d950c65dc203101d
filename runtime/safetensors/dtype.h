// The safetensors dtype table: names as they appear in headers, and the
// size of one element.
#pragma once

#include <cstdint>
#include <optional>
#include <string_view>

namespace residency::safetensors {

enum class DType : std::uint8_t {
  kF64, kF32, kF16, kBF16, kI64, kI32, kI16, kI8, kU8, kBool,
  kF8E4M3, kF8E5M2, kU16, kU32, kU64, kC64,
};

std::optional<DType> ParseDType(std::string_view name);
std::string_view ToString(DType dtype);
std::uint64_t ItemSize(DType dtype);

}  // namespace residency::safetensors
