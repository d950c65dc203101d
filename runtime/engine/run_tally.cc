#include "runtime/engine/run_tally.h"

namespace residency::engine {

void RunTally::Observe(const Outbox& out) {
  for (const Notice& n : out.notices) {
    ++notices[n.kind];
    switch (n.kind) {
      case NoticeKind::kEvicted: {
        EvictionStat& s = evictions[std::string(ToString(n.tier)) + "/" + std::string(ToString(n.reason))];
        ++s.count;
        s.bytes += n.bytes;
        break;
      }
      case NoticeKind::kRamCacheHit: ++ram_cache_hits; break;
      case NoticeKind::kDeviceHit: ++device_hits; break;
      case NoticeKind::kDiskLoad: ++disk_loads; break;
      case NoticeKind::kSpillLoad: ++spill_loads; break;
      case NoticeKind::kPinFallback: ++pin_fallbacks; break;
      case NoticeKind::kFinalized: ++finalizers; break;
      default: break;
    }
  }
  for (const OpResult& r : out.finished)
    if (!r.status.ok()) failed_ops.push_back(DescribeFailedOp(r));
}

void RunTally::ServedByPageCache() {
  --disk_loads;
  ++page_cache_loads;
}

std::int64_t RunTally::Notices(NoticeKind kind) const {
  auto it = notices.find(kind);
  return it == notices.end() ? 0 : it->second;
}

std::string DescribeFailedOp(const OpResult& r) {
  return "op " + std::to_string(r.op) + " (" + std::string(ToString(r.kind)) + "): " + r.status.ToString();
}

}  // namespace residency::engine
