// Collects what a timeline and a memory picture need: tier samples when
// memory changes, and slices merged per lane so a 30 GB load in 2 MiB reads
// becomes a handful of bars, not fifteen thousand.
#pragma once

#include <map>
#include <string>
#include <vector>

#include "runtime/engine/commands.h"
#include "sim/sim_result.h"

namespace residency::sim {

class TimelineRecorder {
 public:
  explicit TimelineRecorder(bool enabled) : enabled_(enabled) {}

  void Sample(Nanos t, Bytes pageable, Bytes pinned, Bytes device, Bytes page_cache);
  void CommandDone(const engine::Command& c, Nanos start, Nanos end);
  void Span(std::string name, std::string lane, Nanos begin, Nanos end, Bytes bytes);
  void Instant(std::string name, std::string lane, Nanos t, Bytes bytes);
  void PromptBoundary(int prompt, Nanos begin, Nanos end);
  // An engine notice at time t: evictions become marks that say what, from
  // where and why; a load's start and finish become its span. The simulator
  // and a recorded real run both feed their notices here.
  void Notice(Nanos t, const engine::Notice& n);
  // A load that failed never finishes: its open span is dropped.
  void LoadFailed(engine::ModelId id) { load_begin_.erase(id); }
  void NameModel(engine::ModelId id, const std::string& name) { names_[id] = name; }
  std::string ModelName(engine::ModelId id) const;
  void Finish(Nanos end, SimResult& result);

 private:
  struct Open {
    Nanos begin = 0;
    Nanos end = 0;
    Bytes bytes = 0;
    bool open = false;
    std::vector<engine::ModelId> models;  // whose commands the bar holds, first seen first
  };
  static const char* LaneOf(engine::CommandKind kind);
  // "h2d copies: flux-dev", "disk reads: clip, vae", "compute: 4 models".
  Slice Close(const std::string& lane, const Open& o) const;

  bool enabled_;
  std::map<std::string, Open> merged_;  // lane -> slice being extended
  std::vector<Slice> slices_;
  std::vector<TierSample> samples_;
  std::map<engine::ModelId, std::string> names_;
  std::map<engine::ModelId, Nanos> load_begin_;  // loads under way
};

}  // namespace residency::sim
