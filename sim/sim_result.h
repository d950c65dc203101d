// What one simulated run produced: the figures a report shows, the OOM
// report, invariant violations, per-prompt timings and the timeline.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "runtime/engine/commands.h"
#include "runtime/engine/run_tally.h"
#include "runtime/engine/types.h"

namespace residency::sim {

using engine::Bytes;
using engine::Nanos;

struct PromptTiming {
  int prompt = 0;
  Nanos begin_ns = 0;
  Nanos end_ns = 0;
  Nanos measured_wall_ns = -1;
  engine::PromptOutcome measured_outcome = engine::PromptOutcome::kOk;  // how the captured server ended it
  Bytes disk_read_bytes = 0;  // read from disk (not the page cache) while this prompt was the latest begun
  int failed_ops = 0;         // ops that failed inside it: its time is not a finished prompt's
  bool ended = false;         // its prompt_end was reached
  Nanos wall_ns() const { return end_ns - begin_ns; }
  bool failed() const { return failed_ops > 0; }
  // Its prompt_end was reached with no op failed: wall_ns() is its time. Else
  // wall_ns() runs to the failure's end or the end of the run (an OOM, a
  // trace that stops inside it).
  bool finished() const { return ended && !failed(); }
};

struct TierSample {
  Nanos time_ns = 0;
  Bytes pageable_bytes = 0;
  Bytes pinned_bytes = 0;
  Bytes device_bytes = 0;
  Bytes page_cache_bytes = 0;
};

struct Slice {
  std::string name;
  std::string lane;  // "loads", "compute", "disk", "h2d", "d2h", "evictions"
  Nanos begin_ns = 0;
  Nanos end_ns = 0;
  Bytes bytes = 0;
};

struct OomReport {
  bool happened = false;
  Nanos time_ns = 0;
  std::string message;
  std::vector<std::string> holders;  // "who held what" at the moment of death
};

using engine::EvictionStat;

struct SimResult {
  std::string trace;
  std::string profile;
  std::string policy;
  std::string policy_detail;  // what a derived policy is made of ("comfy-classic + --lowvram"), else ""
  Bytes ram_bytes = 0;     // the profile's RAM and VRAM, for pictures
  Bytes device_bytes = 0;  // (a unified machine's device is its RAM)
  std::uint64_t seed = 0;
  Nanos makespan_ns = 0;
  Nanos load_ns = 0;
  // Hits, loads, evictions, notices, failed ops, command times, budgets,
  // bytes moved and the host, pinned and device peaks: one tally, as a real
  // run keeps it.
  engine::RunTally tally;
  Bytes peak_page_cache_bytes = 0;
  // Pageable + pinned + page cache at one instant: all the RAM a run takes,
  // however it holds its weights (mmap'd weights are page cache, not host).
  Bytes peak_ram_bytes = 0;
  bool unified = false;
  Bytes peak_unified_bytes = 0;  // unified: host + device out of the one pool (page cache apart)
  OomReport oom;
  std::vector<std::string> violations;
  std::vector<PromptTiming> prompts;
  std::uint64_t event_log_hash = 0;
  // engine::AppendDecisions lines, when SimOptions::record_decisions.
  std::vector<std::string> decisions;
  std::uint64_t events = 0;    // simulator events processed
  std::vector<TierSample> samples;
  std::vector<Slice> slices;
  std::vector<std::string> event_log;  // only with SimOptions::keep_event_log
  std::string limit_exceeded;          // the SimOptions bound the run crossed ("" if none)
};

}  // namespace residency::sim
