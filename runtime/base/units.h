// Integer units everywhere: nanoseconds of (virtual or real) time and bytes.
// Below the engine, so io, devices and parsers share them without it.
#pragma once

#include <cstdint>

namespace residency {

using Nanos = std::int64_t;
using Bytes = std::int64_t;

inline constexpr Bytes kKiB = 1024;
inline constexpr Bytes kMiB = 1024 * kKiB;
inline constexpr Bytes kGiB = 1024 * kMiB;
inline constexpr Nanos kNanosPerSecond = 1'000'000'000;

}  // namespace residency
