// `residency replay`: trace + profile + policy -> a simulated run.
#pragma once

#include <cstdint>
#include <string>

#include "runtime/base/status.h"
#include "sim/sim_result.h"

namespace residency::harness {

struct ReplayRequest {
  std::string trace_path;
  std::string profile = "rtx4090-64g";  // bundled name or file
  std::string policy = "ram-lru";       // bundled name or file
  std::uint64_t seed = 1;
  bool keep_event_log = false;
  bool record_timeline = true;  // samples and slices (--timeline, --svg, explain)
  double max_wall_seconds = 0;  // wall time per run; 0: none (the CLI sets one)
};

Result<sim::SimResult> Replay(const ReplayRequest& request);

}  // namespace residency::harness
