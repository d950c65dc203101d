#include "runtime/safetensors/dtype.h"

#include <array>

namespace residency::safetensors {
namespace {

struct Row {
  DType dtype;
  std::string_view name;
  std::uint64_t size;
};

constexpr std::array kTable = {
    Row{DType::kF64, "F64", 8},        Row{DType::kF32, "F32", 4},
    Row{DType::kF16, "F16", 2},        Row{DType::kBF16, "BF16", 2},
    Row{DType::kI64, "I64", 8},        Row{DType::kI32, "I32", 4},
    Row{DType::kI16, "I16", 2},        Row{DType::kI8, "I8", 1},
    Row{DType::kU8, "U8", 1},          Row{DType::kBool, "BOOL", 1},
    Row{DType::kF8E4M3, "F8_E4M3", 1}, Row{DType::kF8E5M2, "F8_E5M2", 1},
    Row{DType::kU16, "U16", 2},        Row{DType::kU32, "U32", 4},
    Row{DType::kU64, "U64", 8},        Row{DType::kC64, "C64", 8},
};

const Row& Lookup(DType dtype) { return kTable[static_cast<std::size_t>(dtype)]; }

}  // namespace

std::optional<DType> ParseDType(std::string_view name) {
  for (const Row& row : kTable)
    if (row.name == name) return row.dtype;
  return std::nullopt;
}

std::string_view ToString(DType dtype) { return Lookup(dtype).name; }
std::uint64_t ItemSize(DType dtype) { return Lookup(dtype).size; }

}  // namespace residency::safetensors
