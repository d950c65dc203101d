// The regression gate: a baseline policy against a candidate on every trace
// x profile x seed the results store holds for both, on one metric (all are
// lower-is-better). A regression beyond the threshold, a new OOM or
// infeasible working set, an invariant violation or a failed run in the candidate fails the gate.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "harness/store/results_store.h"

namespace residency::harness {

// "makespan" -> "makespan_ns", ...; the CLI's --metric names.
Result<std::string> MetricColumn(const std::string& metric);
const std::vector<std::string>& MetricNames();

struct CompareRow {
  std::string trace, profile;
  std::uint64_t seed = 0;
  std::optional<store::RunRow> baseline, candidate;
  double delta_pct = 0;  // (candidate - baseline) / baseline
  std::string verdict;   // ok better REGRESSION NEW-OOM NEW-INFEASIBLE VIOLATION ERROR
                         // oom-both infeasible-both missing-*
  bool fails = false;
};

struct Comparison {
  std::string baseline, candidate, metric, column;
  double threshold_pct = 0;
  std::vector<CompareRow> rows;
  int failures = 0;
  int missing = 0;
};

// Uses the newest run per (trace, profile, policy, seed).
Result<Comparison> Compare(const std::vector<store::RunRow>& runs, const std::string& baseline,
                           const std::string& candidate, const std::string& metric, double threshold_pct);
std::string FormatComparisonTable(const Comparison& c);

}  // namespace residency::harness
