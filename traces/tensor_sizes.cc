// Deterministic expansion of "count + distribution" into tensor sizes.
#include <algorithm>
#include <cmath>

#include "runtime/base/splitmix64.h"
#include "traces/trace.h"

namespace residency::traces {

Result<std::vector<Bytes>> ExpandTensorSizes(Bytes bytes, const TensorDistribution& dist) {
  if (dist.count <= 0) return InvalidArgument("tensor count must be > 0");
  if (dist.count > bytes)
    return InvalidArgument("tensor count " + std::to_string(dist.count) + " exceeds file bytes " +
                           std::to_string(bytes));
  if (dist.count > 10'000'000) return InvalidArgument("tensor count must be <= 10000000");
  if (dist.kind != "uniform" && dist.kind != "skewed")
    return InvalidArgument("unknown tensor distribution '" + dist.kind +
                           "' (known: uniform, skewed)");
  // Integer weights: uniform draws from [1024, 2048); skewed spans four
  // decades (a few huge linear layers, many small norms and biases).
  std::uint64_t state = dist.seed;
  std::vector<std::uint64_t> weights(static_cast<std::size_t>(dist.count));
  for (auto& w : weights) {
    const std::uint64_t r = SplitMix64(state);
    if (dist.kind == "uniform") {
      w = 1024 + (r % 1024);
    } else {
      const int decade = static_cast<int>(r % 4);
      std::uint64_t scale = 1;
      for (int i = 0; i < decade; ++i) scale *= 10;
      w = scale * (100 + (r >> 8) % 900);
    }
  }
  long double total = 0;
  for (auto w : weights) total += static_cast<long double>(w);
  std::vector<Bytes> sizes(weights.size());
  const Bytes spare = bytes - dist.count;  // every tensor gets at least one byte
  Bytes assigned = 0;
  for (std::size_t i = 0; i < weights.size(); ++i) {
    const Bytes extra = static_cast<Bytes>(std::floor(static_cast<long double>(spare) *
                                                      static_cast<long double>(weights[i]) / total));
    sizes[i] = 1 + extra;
    assigned += sizes[i];
  }
  // Rounding leaves a remainder smaller than the count; the first tensors take it.
  Bytes rest = bytes - assigned;
  for (std::size_t i = 0; rest > 0; i = (i + 1) % sizes.size(), --rest) ++sizes[i];
  return sizes;
}

}  // namespace residency::traces
