#include "harness/report/compare.h"

#include <cmath>
#include <cstdio>
#include <limits>
#include <map>
#include <tuple>

#include "harness/report/report.h"

namespace residency::harness {
namespace {

const std::vector<std::pair<std::string, std::string>>& Metrics() {
  static const std::vector<std::pair<std::string, std::string>> kMetrics = {
      {"makespan", "makespan_ns"},          {"load", "load_ns"},
      {"peak-host", "peak_host_bytes"},     {"peak-device", "peak_device_bytes"},
      {"peak-ram", "peak_ram_bytes"},
      {"disk-read", "disk_read_bytes"},
  };
  return kMetrics;
}

std::string FormatValue(const std::string& column, std::int64_t v) {
  return column.size() > 3 && column.substr(column.size() - 3) == "_ns" ? HumanDuration(v) : HumanBytes(v);
}

}  // namespace

const std::vector<std::string>& MetricNames() {
  static const std::vector<std::string> kNames = [] {
    std::vector<std::string> n;
    for (const auto& [name, column] : Metrics()) n.push_back(name);
    return n;
  }();
  return kNames;
}

Result<std::string> MetricColumn(const std::string& metric) {
  for (const auto& [name, column] : Metrics())
    if (name == metric) return column;
  std::string known;
  for (const std::string& n : MetricNames()) known += (known.empty() ? "" : ", ") + n;
  return InvalidArgument("unknown metric '" + metric + "' (known: " + known + ")");
}

std::string_view TableWord(Verdict v) {
  switch (v) {
    case Verdict::kSame: return "ok";
    case Verdict::kImproved: return "better";
    case Verdict::kRegressed: return "REGRESSION";
    case Verdict::kNewOom: return "NEW-OOM";
    case Verdict::kNewInfeasible: return "NEW-INFEASIBLE";
    case Verdict::kOomBoth: return "oom-both";
    case Verdict::kInfeasibleBoth: return "infeasible-both";
    case Verdict::kViolation: return "VIOLATION";
    case Verdict::kError: return "ERROR";
  }
  return "?";
}

std::string_view Label(Verdict v) {
  switch (v) {
    case Verdict::kSame: return "same";
    case Verdict::kImproved: return "improved";
    case Verdict::kRegressed: return "regressed";
    case Verdict::kNewOom: return "new_oom";
    case Verdict::kNewInfeasible: return "new_infeasible";
    case Verdict::kOomBoth: return "oom_both";
    case Verdict::kInfeasibleBoth: return "infeasible_both";
    case Verdict::kViolation: return "violation";
    case Verdict::kError: return "error";
  }
  return "?";
}

const std::vector<Verdict>& AllVerdicts() {
  static const std::vector<Verdict> kAll = {Verdict::kSame,          Verdict::kImproved,      Verdict::kRegressed,
                                            Verdict::kNewOom,        Verdict::kNewInfeasible, Verdict::kOomBoth,
                                            Verdict::kInfeasibleBoth, Verdict::kViolation,    Verdict::kError};
  return kAll;
}

bool Fails(Verdict v) {
  return v == Verdict::kError || v == Verdict::kViolation || v == Verdict::kNewOom || v == Verdict::kNewInfeasible ||
         v == Verdict::kRegressed;
}

Judgement Judge(const store::RunRow& b, const store::RunRow& k, const std::string& column, double threshold_pct) {
  Judgement j;
  const auto bv = b.figures.find(column), kv = k.figures.find(column);
  if (bv != b.figures.end()) j.baseline_value = bv->second;
  if (kv != k.figures.end()) j.candidate_value = kv->second;
  if (j.baseline_value && j.candidate_value) {
    j.delta_pct = *j.baseline_value == 0 ? (*j.candidate_value == 0 ? 0 : std::numeric_limits<double>::infinity())
                                         : 100.0 * static_cast<double>(*j.candidate_value - *j.baseline_value) /
                                               static_cast<double>(*j.baseline_value);
  }
  if (k.outcome == "error") {
    j.verdict = Verdict::kError;
  } else if (k.outcome == "violation") {
    j.verdict = Verdict::kViolation;
  } else if (k.outcome == "oom") {
    j.verdict = b.outcome != "oom" ? Verdict::kNewOom : Verdict::kOomBoth;
  } else if (k.outcome == "infeasible") {
    j.verdict = b.outcome != "infeasible" ? Verdict::kNewInfeasible : Verdict::kInfeasibleBoth;
  } else if (j.delta_pct > threshold_pct) {
    j.verdict = Verdict::kRegressed;
  } else if (j.delta_pct < -threshold_pct) {
    j.verdict = Verdict::kImproved;
  } else {
    j.verdict = Verdict::kSame;
  }
  return j;
}

Result<Comparison> Compare(const std::vector<store::RunRow>& runs, const std::string& baseline,
                           const std::string& candidate, const std::string& metric, double threshold_pct) {
  RESIDENCY_ASSIGN_OR_RETURN(std::string column, MetricColumn(metric));
  if (threshold_pct < 0) return InvalidArgument("--threshold must be >= 0 (a percentage)");
  Comparison c{baseline, candidate, metric, column, threshold_pct, {}, 0, 0};
  using Key = std::tuple<std::string, std::string, std::uint64_t>;
  std::map<Key, CompareRow> rows;
  bool any_baseline = false, any_candidate = false;
  for (const store::RunRow& r : runs) {  // ordered by id: later rows replace earlier
    if (r.policy != baseline && r.policy != candidate) continue;
    CompareRow& row = rows[Key{r.trace, r.profile, r.seed}];
    row.trace = r.trace;
    row.profile = r.profile;
    row.seed = r.seed;
    if (r.policy == baseline) {
      row.baseline = r;
      any_baseline = true;
    }
    if (r.policy == candidate) {
      row.candidate = r;
      any_candidate = true;
    }
  }
  if (!any_baseline) return NotFound("no runs of baseline policy '" + baseline + "' in the database");
  if (!any_candidate) return NotFound("no runs of candidate policy '" + candidate + "' in the database");
  for (auto& [key, row] : rows) {
    if (!row.baseline || !row.candidate) {
      row.verdict = row.baseline ? "missing-candidate" : "missing-baseline";
      ++c.missing;
    } else {
      const Judgement j = Judge(*row.baseline, *row.candidate, column, threshold_pct);
      row.delta_pct = j.delta_pct;
      row.verdict = std::string(TableWord(j.verdict));
      row.fails = Fails(j.verdict);
      if (row.fails) ++c.failures;
    }
    c.rows.push_back(std::move(row));
  }
  return c;
}

std::string FormatComparisonTable(const Comparison& c) {
  std::string out;
  char line[512];
  std::snprintf(line, sizeof line, "%s: %s (baseline) vs %s (candidate), threshold %.1f %%\n\n", c.metric.c_str(),
                c.baseline.c_str(), c.candidate.c_str(), c.threshold_pct);
  out += line;
  std::snprintf(line, sizeof line, "%-28s %-16s %5s %12s %12s %9s  %s\n", "trace", "profile", "seed", "baseline",
                "candidate", "delta", "verdict");
  out += line;
  for (const CompareRow& r : c.rows) {
    const auto value = [&](const std::optional<store::RunRow>& run) -> std::string {
      if (!run) return "-";
      if (run->outcome == "oom") return "OOM";
      if (run->outcome == "infeasible") return "infeasible";
      const auto it = run->figures.find(c.column);
      return it == run->figures.end() ? run->outcome : FormatValue(c.column, it->second);
    };
    char delta[32] = "-";
    // Between two runs that did not finish, a percentage means nothing.
    const auto finished = [](const store::RunRow& run) { return run.outcome != "oom" && run.outcome != "infeasible"; };
    if (r.baseline && r.candidate && finished(*r.baseline) && finished(*r.candidate)) {
      if (std::isinf(r.delta_pct)) {
        std::snprintf(delta, sizeof delta, "+inf");
      } else {
        std::snprintf(delta, sizeof delta, "%+.1f%%", r.delta_pct);
      }
    }
    std::snprintf(line, sizeof line, "%-28s %-16s %5llu %12s %12s %9s  %s\n", r.trace.c_str(), r.profile.c_str(),
                  static_cast<unsigned long long>(r.seed), value(r.baseline).c_str(), value(r.candidate).c_str(),
                  delta, r.verdict.c_str());
    out += line;
  }
  std::snprintf(line, sizeof line, "\n%zu comparisons, %d failing, %d without a pair\n", c.rows.size(), c.failures,
                c.missing);
  out += line;
  if (c.column == "peak_host_bytes")
    out += "peak-host counts anonymous and pinned memory only: weights a policy maps with mmap are page cache\n"
           "and do not show here. peak-ram counts host and page cache together.\n";
  return out;
}

}  // namespace residency::harness
