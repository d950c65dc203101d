// Chrome Trace Event JSON (Perfetto opens it): counter tracks per memory
// tier, and slices per lane (loads, disk reads, copies, compute, prompts).
#include <map>

#include "harness/report/report.h"

namespace residency::harness {

std::string TimelineJson(const sim::SimResult& r) {
  using json = nlohmann::ordered_json;
  json events = json::array();
  auto us = [](engine::Nanos ns) { return static_cast<double>(ns) / 1000.0; };
  events.push_back({{"ph", "M"}, {"pid", 1}, {"name", "process_name"},
                    {"args", {{"name", "residency: " + r.trace + " on " + r.profile + " / " + r.policy}}}});
  std::map<std::string, int> lanes;
  const char* order[] = {"prompts", "loads", "disk reads", "h2d copies", "d2h copies",
                         "spill writes", "pin/prefault", "compute", "evictions"};
  for (const char* lane : order) {
    const int tid = static_cast<int>(lanes.size()) + 1;
    lanes[lane] = tid;
    events.push_back({{"ph", "M"}, {"pid", 1}, {"tid", tid}, {"name", "thread_name"},
                      {"args", {{"name", lane}}}});
  }
  for (const sim::Slice& s : r.slices) {
    auto it = lanes.find(s.lane);
    const int tid = it == lanes.end() ? 99 : it->second;
    if (s.end_ns == s.begin_ns) {
      events.push_back({{"ph", "i"}, {"pid", 1}, {"tid", tid}, {"s", "t"}, {"name", s.name},
                        {"ts", us(s.begin_ns)}, {"args", {{"bytes", s.bytes}}}});
    } else {
      events.push_back({{"ph", "X"}, {"pid", 1}, {"tid", tid}, {"name", s.name},
                        {"ts", us(s.begin_ns)}, {"dur", us(s.end_ns - s.begin_ns)},
                        {"args", {{"bytes", s.bytes}}}});
    }
  }
  for (const sim::TierSample& s : r.samples) {
    const std::pair<const char*, engine::Bytes> tiers[] = {
        {"host pageable (MB)", s.pageable_bytes}, {"pinned (MB)", s.pinned_bytes},
        {"device (MB)", s.device_bytes}, {"page cache (MB)", s.page_cache_bytes}};
    for (const auto& [name, bytes] : tiers) {
      events.push_back({{"ph", "C"}, {"pid", 1}, {"name", name}, {"ts", us(s.time_ns)},
                        {"args", {{"MB", static_cast<double>(bytes) / 1e6}}}});
    }
  }
  json doc;
  doc["traceEvents"] = events;
  doc["displayTimeUnit"] = "ms";
  return doc.dump() + "\n";
}

}  // namespace residency::harness
