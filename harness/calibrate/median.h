// The middle figure of timed runs (the upper one of an even count): timings
// on a VM scatter, and one slow outlier should not move a measured figure.
#pragma once

#include <algorithm>
#include <vector>

namespace residency::harness {

inline double Median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

}  // namespace residency::harness
