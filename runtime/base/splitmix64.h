// SplitMix64: the one small, seedable, platform-independent generator every
// deterministic part of the project draws from (tensor-size expansion, the
// simulator's latency jitter). Same seed, same sequence, on any machine.
#pragma once

#include <cstdint>

namespace residency {

inline std::uint64_t SplitMix64(std::uint64_t& state) {
  std::uint64_t z = (state += 0x9e3779b97f4a7c15ULL);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

}  // namespace residency
