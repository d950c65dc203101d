// The gate's verdicts on captured traffic as a person reads them: a text
// table (`residency gate --agent URL`) and an HTML table that goes in front
// of the runs' report (`--html`).
#pragma once

#include <string>
#include <vector>

#include "harness/store/results_store.h"

namespace residency::harness {

struct GateSummary {
  std::string agent, gate, baseline, metric;
  double threshold_pct = 0;
  store::QueueCounts queue;
};

std::string FormatVerdictTable(const GateSummary& s, const std::vector<store::VerdictRow>& verdicts);
std::string VerdictHtml(const GateSummary& s, const std::vector<store::VerdictRow>& verdicts);
// Verdicts that fail the gate (regressed, new_oom, new_infeasible, violation, error).
int FailingVerdicts(const std::vector<store::VerdictRow>& verdicts);

}  // namespace residency::harness
