// `residency explain`: where a workflow's time goes on a machine, prompt by
// prompt, and which policy change would help most.
//
// Time in a prompt is split by what the simulated machine was doing, in this
// order of precedence: compute (loads hidden behind it cost nothing), reads
// from disk, host->device copies, page-locking and prefaulting, spill I/O,
// and stalls (nothing busy: waiting on staging buffers, allocation, or the
// engine's bookkeeping). Reloads are loads of a model that was loaded before
// in an earlier prompt (it was evicted in between).
#pragma once

#include <string>
#include <vector>

#include "runtime/base/status.h"
#include "sim/sim_result.h"

namespace residency::harness {

struct TimeShare {
  std::string what;
  engine::Nanos ns = 0;
};

struct PromptExplanation {
  int prompt = 0;
  engine::Nanos wall_ns = 0;
  engine::Bytes disk_read_bytes = 0;
  std::vector<TimeShare> shares;  // in the order above; sums to wall_ns
  std::vector<std::string> reloads;  // "wan-high: 28.6 GB in 12.1 s"
  engine::Nanos reload_ns = 0;
};

std::vector<PromptExplanation> ExplainPrompts(const sim::SimResult& r);

struct Alternative {
  std::string policy;
  sim::SimResult result;
};
// The report: per prompt, then the alternatives ranked by makespan.
std::string FormatExplanation(const sim::SimResult& r, const std::vector<PromptExplanation>& prompts,
                              std::vector<Alternative> alternatives);

}  // namespace residency::harness
