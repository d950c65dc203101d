// `residency replay`: trace + profile + policy -> a simulated run.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "runtime/base/status.h"
#include "sim/sim_result.h"

namespace residency::harness {

struct ReplayRequest {
  std::string trace_path;
  std::string profile = "rtx4090-64g";  // bundled name or file
  // Bundled name or file; "captured" (or "captured:PRESET") derives one from
  // a captured trace's server version, device and flags; "auto" is
  // "captured" for a captured trace and ram-lru otherwise.
  std::string policy = "auto";
  std::uint64_t seed = 1;
  bool keep_event_log = false;
  bool record_timeline = true;  // samples and slices (--timeline, --svg, explain)
  double max_wall_seconds = 0;  // wall time per run; 0: none (the CLI sets one)
};

// `warnings`, when given, receives what deriving a captured policy found
// (an unknown server flag, a flag with no effect on this server).
Result<sim::SimResult> Replay(const ReplayRequest& request, std::vector<std::string>* warnings = nullptr);

}  // namespace residency::harness
