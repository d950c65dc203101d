// The real side of `residency fidelity`, kept in a file: each real run's
// per-prompt wall times and per-command-kind times. `fidelity
// --save-real-runs` writes one; `fidelity --real-runs` simulates against it
// instead of running the trace again, so two simulator versions or two
// profiles can be compared against the same real runs, free of the
// machine's run-to-run noise.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "runtime/engine/commands.h"
#include "runtime/base/status.h"

namespace residency::harness {

struct RecordedRun {
  engine::Nanos wall_ns = 0;
  std::map<int, engine::Nanos> prompt_walls;  // prompt (pass 2 adds 1000) -> wall time
  engine::CommandTimesByPrompt command_times;
};

struct RecordedRuns {
  std::string trace, policy;
  double scale = 0;
  std::uint64_t device_bytes = 0;
  int warmup = 0;  // real runs before these, not recorded
  std::vector<RecordedRun> runs;
  std::string origin;  // the file it was read from, for errors (not written)
};

std::string WriteRecordedRuns(const RecordedRuns& r);
// Errors name `origin` and the field, e.g. "runs.json: runs[1].prompts: ...".
Result<RecordedRuns> ParseRecordedRuns(const std::string& text, const std::string& origin);

}  // namespace residency::harness
