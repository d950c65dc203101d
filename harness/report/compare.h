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

// One baseline run against one candidate run.
enum class Verdict { kSame, kImproved, kRegressed, kNewOom, kNewInfeasible, kOomBoth, kInfeasibleBoth, kViolation, kError };
// compare's table words: ok better REGRESSION NEW-OOM NEW-INFEASIBLE oom-both infeasible-both VIOLATION ERROR
std::string_view TableWord(Verdict v);
// Labels for JSON and metrics: same improved regressed new_oom new_infeasible oom_both infeasible_both violation error
std::string_view Label(Verdict v);
const std::vector<Verdict>& AllVerdicts();
bool Fails(Verdict v);  // regressed, a new OOM or infeasible working set, a violation or an error

struct Judgement {
  Verdict verdict = Verdict::kSame;
  double delta_pct = 0;  // (candidate - baseline) / baseline, in percent; +inf from a zero baseline
  std::optional<std::int64_t> baseline_value, candidate_value;  // the metric's column, where stored
};
Judgement Judge(const store::RunRow& baseline, const store::RunRow& candidate, const std::string& column,
                double threshold_pct);

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
