// Runs one generated or recorded case with every check on, in two ways: in
// the simulator (the engine's own invariants, the simulator's memory and OOM
// model, liveness) and on the engine alone with completions delivered in a
// seeded random order, as real threads deliver them, watched from outside by
// the ResidencyChecker. Any problem is a line of text; none means the case
// passed. Also reads and writes cases as files (a regression corpus entry).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "harness/proof/case_gen.h"

namespace residency::proof {

struct CaseResult {
  std::vector<std::string> problems;
  std::uint64_t event_log_hash = 0;  // simulator runs
  std::vector<std::string> event_log;  // with keep_log
};

CaseResult CheckInSimulator(const Case& c, std::uint64_t seed, bool keep_log = false);
CaseResult CheckEngineAlone(const Case& c, std::uint64_t seed);
// Both of the above; problems prefixed "sim: " / "engine: ".
CaseResult CheckCase(const Case& c, std::uint64_t seed);

// NAME.jsonl (the trace), NAME.profile.json, NAME.policy.json in `dir`.
Status WriteCase(const std::string& dir, const std::string& name, const Case& c);
Result<Case> ReadCase(const std::string& dir, const std::string& name);

}  // namespace residency::proof
