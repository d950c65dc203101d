// What the agent does with each captured trace it stores: replay it on its
// own machine under the server's own settings (fidelity: per prompt, the
// simulator's time against the captured one), then under the gate's profiles
// and policies (a verdict per profile and candidate). Every run is stored in
// the results store like a sweep's, so a replay cut short resumes and
// `residency compare` reads the same runs.
#pragma once

#include <string>
#include <vector>

#include "harness/gate/gate_config.h"
#include "harness/store/results_store.h"
#include "sim/sim_result.h"

namespace residency::gate {

struct ReplaySettings {
  std::string code_version, host;
  double max_wall_seconds = 120;  // per simulated run
};

// A run simulated by this replay (one found stored is not repeated), for metrics.
struct ReplayedRun {
  std::string profile, policy, outcome;
  sim::SimResult result;
};

struct CapturedReplay {
  std::string host;  // the captured machine's host
  std::vector<store::FidelityRow> fidelity;
  std::vector<store::VerdictRow> verdicts;
  std::vector<ReplayedRun> runs;
  std::vector<std::string> warnings;  // unknown server flags and the like
};

// Replays and stores the runs; the caller stores the fidelity rows and
// verdicts it returns. `gate` may be null (fidelity only).
Result<CapturedReplay> ReplayCaptured(store::ResultsStore& store, const store::StoredTrace& stored,
                                      const GateConfig* gate, const ReplaySettings& settings);

}  // namespace residency::gate
