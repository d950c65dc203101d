// Sizes, rates and durations in JSON: an integer (bytes, bytes/s, ns) or a
// string with a unit, such as "6.94 GB", "2 MiB", "7 GB/s", "120 ms".
// Decimal units are powers of 1000, binary ones powers of 1024.
#pragma once

#include <nlohmann/json.hpp>
#include <string>

#include "runtime/base/status.h"
#include "runtime/engine/types.h"

namespace residency::traces {

// `what` names the field in error messages.
inline constexpr std::int64_t kMaxDeclaredBytes = 1LL << 50;        // one size or rate; also a trace's total
inline constexpr std::int64_t kMaxDurationNs = 1'000'000'000'000'000;  // one duration

Result<engine::Bytes> ParseBytes(const nlohmann::json& v, const std::string& what);
Result<engine::Bytes> ParseRate(const nlohmann::json& v, const std::string& what);
Result<engine::Nanos> ParseDuration(const nlohmann::json& v, const std::string& what);

}  // namespace residency::traces
