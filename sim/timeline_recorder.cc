#include "sim/timeline_recorder.h"

#include <algorithm>
#include <cstdlib>

namespace residency::sim {
namespace {

// Two bars closer than this merge into one.
constexpr Nanos kMergeGapNs = 2'000'000;
// A new sample is kept when any tier moved by at least this much.
constexpr Bytes kSampleStepBytes = 64 * engine::kMiB;

}  // namespace

const char* TimelineRecorder::LaneOf(engine::CommandKind kind) {
  switch (kind) {
    case engine::CommandKind::kReadFile:
    case engine::CommandKind::kSpillRead: return "disk reads";
    case engine::CommandKind::kSpillWrite: return "spill writes";
    case engine::CommandKind::kCopyToDevice: return "h2d copies";
    case engine::CommandKind::kCopyToHost: return "d2h copies";
    case engine::CommandKind::kCompute: return "compute";
    case engine::CommandKind::kPin:
    case engine::CommandKind::kPrefault: return "pin/prefault";
    default: return nullptr;
  }
}

void TimelineRecorder::Sample(Nanos t, Bytes pageable, Bytes pinned, Bytes device, Bytes cache) {
  if (!enabled_) return;
  TierSample s{t, pageable, pinned, device, cache};
  if (!samples_.empty()) {
    TierSample& last = samples_.back();
    const bool small = std::llabs(last.pageable_bytes - pageable) < kSampleStepBytes &&
                       std::llabs(last.pinned_bytes - pinned) < kSampleStepBytes &&
                       std::llabs(last.device_bytes - device) < kSampleStepBytes &&
                       std::llabs(last.page_cache_bytes - cache) < kSampleStepBytes;
    if (last.time_ns == t) {
      last = s;
      return;
    }
    if (small) return;  // below the picture's resolution
  }
  samples_.push_back(s);
}

void TimelineRecorder::CommandDone(const engine::Command& c, Nanos start, Nanos end) {
  if (!enabled_) return;
  const char* lane = LaneOf(c.kind);
  if (!lane) return;
  Open& o = merged_[lane];
  if (o.open && start <= o.end + kMergeGapNs) {
    o.end = std::max(o.end, end);
    o.begin = std::min(o.begin, start);
    o.bytes += c.bytes;
    if (c.model && std::find(o.models.begin(), o.models.end(), c.model) == o.models.end()) o.models.push_back(c.model);
    return;
  }
  if (o.open) slices_.push_back(Close(lane, o));
  o = {start, end, c.bytes, true, {}};
  if (c.model) o.models.push_back(c.model);
}

Slice TimelineRecorder::Close(const std::string& lane, const Open& o) const {
  std::string name = lane;
  if (o.models.size() > 3) {
    name += ": " + std::to_string(o.models.size()) + " models";
  } else {
    for (std::size_t i = 0; i < o.models.size(); ++i) name += (i ? ", " : ": ") + ModelName(o.models[i]);
  }
  return {name, lane, o.begin, o.end, o.bytes};
}

void TimelineRecorder::Span(std::string name, std::string lane, Nanos begin, Nanos end,
                            Bytes bytes) {
  if (enabled_) slices_.push_back({std::move(name), std::move(lane), begin, end, bytes});
}

void TimelineRecorder::Instant(std::string name, std::string lane, Nanos t, Bytes bytes) {
  if (enabled_) slices_.push_back({std::move(name), std::move(lane), t, t, bytes});
}

void TimelineRecorder::PromptBoundary(int prompt, Nanos begin, Nanos end) {
  Span("prompt " + std::to_string(prompt), "prompts", begin, end, 0);
}

void TimelineRecorder::Notice(Nanos t, const engine::Notice& n) {
  if (!enabled_) return;
  switch (n.kind) {
    case engine::NoticeKind::kEvicted:
      Instant("evict " + ModelName(n.model) + " from " + std::string(engine::ToString(n.tier)) + " (" +
                  std::string(engine::ToString(n.reason)) + ")",
              "evictions", t, n.bytes);
      break;
    case engine::NoticeKind::kLoadStarted: load_begin_[n.model] = t; break;
    case engine::NoticeKind::kLoadFinished: {
      const auto it = load_begin_.find(n.model);
      if (it == load_begin_.end()) break;
      Span("load " + ModelName(n.model), "loads", it->second, t, n.bytes);
      load_begin_.erase(it);
      break;
    }
    default: break;
  }
}

std::string TimelineRecorder::ModelName(engine::ModelId id) const {
  auto it = names_.find(id);
  return it == names_.end() ? "model " + std::to_string(id) : it->second;
}

void TimelineRecorder::Finish(Nanos end, SimResult& result) {
  if (!enabled_) return;
  for (auto& [lane, o] : merged_)
    if (o.open) slices_.push_back(Close(lane, o));
  if (!samples_.empty() && samples_.back().time_ns < end) {
    TierSample last = samples_.back();
    last.time_ns = end;
    samples_.push_back(last);
  }
  std::stable_sort(slices_.begin(), slices_.end(),
                   [](const Slice& a, const Slice& b) { return a.begin_ns < b.begin_ns; });
  result.samples = std::move(samples_);
  result.slices = std::move(slices_);
}

}  // namespace residency::sim
