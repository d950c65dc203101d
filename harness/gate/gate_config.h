// The agent's gate (`residency serve --gate gate.json`): the profiles every
// captured trace is replayed on, a baseline policy and the candidate policies
// judged against it, and the metric and threshold of the judgement. Policies
// may be bundled names or files, "captured" (the server's own settings from
// the trace header), or a change of the server's flags:
//
//   {"profiles": ["captured", "rtx5060-16g"], "baseline": "captured",
//    "candidates": ["comfy-aug2026", {"name": "cache-ram-32", "flags": ["--cache-ram", "4", "32"]}],
//    "metric": "makespan", "threshold": 5}
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "runtime/base/status.h"
#include "traces/captured_policy.h"
#include "traces/profile.h"

namespace residency::gate {

// A policy as the gate names it.
struct PolicyChoice {
  std::string name;                // its name in verdicts, runs and metrics
  std::string policy;              // bundled name, file, "captured" or "captured:PRESET"
  std::vector<std::string> flags;  // applied to the captured server's flags ("!--flag" removes one)
  bool PerTrace() const { return traces::IsCapturedPolicyName(policy) || !flags.empty(); }
};

struct GateConfig {
  std::string origin;  // the file it was read from
  std::string hash;    // content hash of its bytes: verdicts of another gate are kept apart
  std::vector<std::string> profiles;  // bundled names, files, "captured" or "captured:BASE"
  PolicyChoice baseline;
  std::vector<PolicyChoice> candidates;
  std::string metric = "makespan";
  std::string column = "makespan_ns";
  double threshold_pct = 5;
};

// Limits on what one gate may ask per trace (docs/LIMITS.md).
inline constexpr std::size_t kMaxGateProfiles = 16;
inline constexpr std::size_t kMaxGateCandidates = 16;

// Every name is checked here (bundled profiles and policies exist, files
// parse), so a bad gate stops the agent at start-up, naming the field.
Result<GateConfig> ParseGateConfig(const std::string& text, const std::string& origin);
Result<GateConfig> ReadGateConfig(const std::string& path);

// A policy choice for one trace: fixed policies as they are, captured ones
// derived from its machine record (errors name the trace).
Result<traces::DerivedPolicy> ResolvePolicy(const PolicyChoice& choice, const traces::Trace& trace,
                                            const std::string& origin);

}  // namespace residency::gate
