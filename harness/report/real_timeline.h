// A timeline of a real run in the simulator's lanes, slice names and memory
// tracks, so `run --timeline` opens in Perfetto like `replay --timeline`, and
// `fidelity --timeline DIR` can put a real and a simulated run one above the
// other and show where they part.
#pragma once

#include <string>

#include "runtime/engine/ops.h"
#include "runtime/executor/real_executor.h"
#include "sim/sim_result.h"

namespace residency::harness {

// The real run as a picture: slices (commands merged per lane, loads,
// evictions, prompts) and memory samples. Needs RunOptions::record_timeline.
sim::SimResult RealRunPicture(const executor::RunResult& run, const engine::Workload& workload,
                              const std::string& profile, const std::string& policy);

// Two Chrome trace files as one, each its own process track ("real", then
// "simulated"), on one time axis from each run's start.
std::string TimelinesSideBySide(const std::string& real_json, const std::string& simulated_json);

}  // namespace residency::harness
