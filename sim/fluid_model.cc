#include "sim/fluid_model.h"

#include <algorithm>
#include <cmath>
#include <limits>

namespace residency::sim {
namespace {

constexpr double kDoneBytes = 0.5;  // below half a byte an activity is finished

}  // namespace

std::uint64_t FluidModel::Start(const ActivitySpec& spec, Nanos now) {
  Progress(now);
  const std::uint64_t id = next_id_++;
  acts_.push_back({id, spec, std::max(0.0, spec.bytes)});
  Recompute();
  return id;
}

double FluidModel::rate(std::uint64_t id) const {
  for (const Act& a : acts_)
    if (a.id == id) return a.rate;
  return 0;
}

void FluidModel::Progress(Nanos now) {
  if (now <= now_) return;
  const double dt = static_cast<double>(now - now_) / 1e9;
  for (Act& a : acts_) a.remaining -= a.rate * dt;
  now_ = now;
}

Nanos FluidModel::NextCompletion() const {
  Nanos best = -1;
  for (const Act& a : acts_) {
    Nanos t;
    if (a.remaining <= kDoneBytes) {
      t = now_;
    } else if (a.rate <= 0) {
      continue;
    } else {
      const double ns = std::ceil(a.remaining / a.rate * 1e9);
      // Clamped far past any run's time limit: 1 B/s rates must not overflow.
      t = now_ + static_cast<Nanos>(std::clamp(ns, 1.0, 1e18));
    }
    if (best < 0 || t < best) best = t;
  }
  return best;
}

std::vector<std::uint64_t> FluidModel::AdvanceTo(Nanos now) {
  Progress(now);
  std::vector<std::uint64_t> done;
  for (const Act& a : acts_) {
    // Activities whose finish rounds to this instant count as finished.
    const bool finished =
        a.remaining <= kDoneBytes || (a.rate > 0 && a.remaining / a.rate * 1e9 < 1.0);
    if (finished) done.push_back(a.id);
  }
  if (!done.empty()) {
    acts_.erase(std::remove_if(acts_.begin(), acts_.end(),
                               [&](const Act& a) {
                                 return std::binary_search(done.begin(), done.end(), a.id);
                               }),
                acts_.end());
    Recompute();
  }
  return done;
}

void FluidModel::Recompute() {
  // Progressive filling: raise every unfixed rate together until a resource
  // saturates or an activity hits its cap; fix those; repeat.
  const std::size_t n = acts_.size();
  std::vector<bool> fixed(n, false);
  std::array<double, kResourceCount> cap{}, used{};
  std::array<int, kResourceCount> users{};
  for (const Act& a : acts_)
    for (int r = 0; r < kResourceCount; ++r)
      if (a.spec.weight[r] > 0) ++users[r];
  for (int r = 0; r < kResourceCount; ++r)
    cap[r] = users[r] > 0 && capacity_[r] ? capacity_[r](users[r])
                                          : std::numeric_limits<double>::infinity();
  std::size_t remaining = n;
  for (Act& a : acts_) a.rate = 0;
  while (remaining > 0) {
    double level = std::numeric_limits<double>::infinity();
    for (int r = 0; r < kResourceCount; ++r) {
      double w = 0;
      for (std::size_t i = 0; i < n; ++i)
        if (!fixed[i]) w += acts_[i].spec.weight[r];
      if (w > 0) level = std::min(level, std::max(0.0, cap[r] - used[r]) / w);
    }
    for (std::size_t i = 0; i < n; ++i)
      if (!fixed[i]) level = std::min(level, acts_[i].spec.cap_bytes_per_second);
    // Fix every activity that is capped at this level or uses a saturated resource.
    std::array<bool, kResourceCount> saturated{};
    for (int r = 0; r < kResourceCount; ++r) {
      double w = 0;
      for (std::size_t i = 0; i < n; ++i)
        if (!fixed[i]) w += acts_[i].spec.weight[r];
      saturated[r] = w > 0 && std::max(0.0, cap[r] - used[r]) / w <= level * (1 + 1e-12);
    }
    bool progressed = false;
    for (std::size_t i = 0; i < n; ++i) {
      if (fixed[i]) continue;
      bool fix = acts_[i].spec.cap_bytes_per_second <= level * (1 + 1e-12);
      for (int r = 0; r < kResourceCount && !fix; ++r)
        fix = saturated[r] && acts_[i].spec.weight[r] > 0;
      if (!fix) continue;
      acts_[i].rate = level;
      fixed[i] = true;
      --remaining;
      progressed = true;
      for (int r = 0; r < kResourceCount; ++r) used[r] += acts_[i].spec.weight[r] * level;
    }
    if (!progressed) break;  // unreachable with finite caps; guards the loop
  }
}

}  // namespace residency::sim
