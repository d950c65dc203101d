// Reading a configuration file, trace or log whole, with a size bound
// (docs/LIMITS.md) and a refusal of anything that is not a regular file.
#pragma once

#include <cstdint>
#include <string>

#include "runtime/base/status.h"

namespace residency::io {

// Size bounds on what is read whole (docs/LIMITS.md).
inline constexpr std::int64_t kMaxConfigFileBytes = 16LL << 20;  // profiles, policies, specs, tokens
inline constexpr std::int64_t kMaxTraceFileBytes = 1LL << 30;    // traces, logs to import
// Reads a regular file of at most `max_bytes`; a FIFO, a device or a
// directory is refused at once (never waited on), naming the file.
Result<std::string> ReadWholeFile(const std::string& path, std::int64_t max_bytes = kMaxConfigFileBytes);

}  // namespace residency::io
