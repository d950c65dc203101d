#include "harness/report/gate_report.h"

#include <cmath>
#include <cstdio>
#include <map>

#include "harness/report/compare.h"
#include "harness/report/html_report.h"
#include "harness/report/report.h"

namespace residency::harness {
namespace {

bool IsFailing(const std::string& label) {
  for (Verdict v : AllVerdicts())
    if (Label(v) == label) return Fails(v);
  return true;  // a verdict this build does not know is not a pass
}

std::string Value(const std::string& metric_column, const std::string& outcome, const std::optional<std::int64_t>& v) {
  if (outcome == "oom") return "OOM";
  if (outcome == "infeasible") return "infeasible";
  if (!v) return outcome;
  return metric_column.size() > 3 && metric_column.substr(metric_column.size() - 3) == "_ns" ? HumanDuration(*v)
                                                                                             : HumanBytes(*v);
}

std::string Column(const std::string& metric) {
  auto c = MetricColumn(metric);
  return c.ok() ? *c : "makespan_ns";
}

std::string Delta(const store::VerdictRow& v) {
  if (!v.delta_pct) return "-";
  char buf[32];
  std::snprintf(buf, sizeof buf, "%+.1f%%", *v.delta_pct);
  return buf;
}

std::string Counts(const std::vector<store::VerdictRow>& verdicts) {
  std::map<std::string, int> n;
  for (const store::VerdictRow& v : verdicts) ++n[v.verdict];
  std::string s;
  for (const auto& [verdict, count] : n) s += (s.empty() ? "" : ", ") + std::to_string(count) + " " + verdict;
  return s.empty() ? "none" : s;
}

std::string QueueLine(const store::QueueCounts& q) {
  char buf[200];
  std::snprintf(buf, sizeof buf, "captured traces: %lld queued, %lld replaying, %lld done, %lld failed",
                static_cast<long long>(q.queued), static_cast<long long>(q.running), static_cast<long long>(q.done),
                static_cast<long long>(q.failed));
  return buf;
}

}  // namespace

int FailingVerdicts(const std::vector<store::VerdictRow>& verdicts) {
  int n = 0;
  for (const store::VerdictRow& v : verdicts) n += IsFailing(v.verdict);
  return n;
}

std::string FormatVerdictTable(const GateSummary& s, const std::vector<store::VerdictRow>& verdicts) {
  std::string out;
  char line[512];
  std::snprintf(line, sizeof line, "gate %s on %s: baseline %s, metric %s, threshold %.1f %%\n%s\n\n", s.gate.c_str(),
                s.agent.c_str(), s.baseline.c_str(), s.metric.c_str(), s.threshold_pct, QueueLine(s.queue).c_str());
  out += line;
  std::snprintf(line, sizeof line, "%-34s %-16s %-18s %12s %12s %9s  %s\n", "trace", "profile", "candidate", "baseline",
                "candidate", "delta", "verdict");
  out += line;
  const std::string column = Column(s.metric);
  for (const store::VerdictRow& v : verdicts) {
    std::snprintf(line, sizeof line, "%-34s %-16s %-18s %12s %12s %9s  %s\n", v.trace.substr(0, 34).c_str(),
                  v.profile.substr(0, 16).c_str(), v.candidate.substr(0, 18).c_str(),
                  Value(column, v.baseline_outcome, v.baseline_value).c_str(),
                  Value(column, v.candidate_outcome, v.candidate_value).c_str(), Delta(v).c_str(),
                  (IsFailing(v.verdict) ? v.verdict + " (fails)" : v.verdict).c_str());
    out += line;
  }
  std::snprintf(line, sizeof line, "\n%zu verdicts: %s; %d failing\n", verdicts.size(), Counts(verdicts).c_str(),
                FailingVerdicts(verdicts));
  out += line;
  if (s.queue.queued + s.queue.running > 0)
    out += "replays are still running: more verdicts will come\n";
  return out;
}

std::string VerdictHtml(const GateSummary& s, const std::vector<store::VerdictRow>& verdicts) {
  std::string h = "<h2>Gate verdicts on captured traffic</h2>\n<p>Agent " + HtmlEscape(s.agent) + ", gate " +
                  HtmlEscape(s.gate) + ": baseline <b>" + HtmlEscape(s.baseline) + "</b>, metric " +
                  HtmlEscape(s.metric) + ", threshold ";
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.1f %%", s.threshold_pct);
  h += std::string(buf) + ". " + HtmlEscape(QueueLine(s.queue)) + ". " + std::to_string(verdicts.size()) +
       " verdicts: " + HtmlEscape(Counts(verdicts)) + ".</p>\n";
  h += "<table><tr><th>trace</th><th>profile</th><th>candidate</th><th>baseline</th><th>candidate</th><th>delta</th>"
       "<th>verdict</th></tr>\n";
  const std::string column = Column(s.metric);
  for (const store::VerdictRow& v : verdicts) {
    const std::string cls = IsFailing(v.verdict) ? " class='error'" : "";
    h += "<tr><td>" + HtmlEscape(v.trace) + "</td><td>" + HtmlEscape(v.profile) + "</td><td>" +
         HtmlEscape(v.candidate) + "</td><td>" + HtmlEscape(Value(column, v.baseline_outcome, v.baseline_value)) +
         "</td><td>" + HtmlEscape(Value(column, v.candidate_outcome, v.candidate_value)) + "</td><td>" +
         HtmlEscape(Delta(v)) + "</td><td" + cls + ">" + HtmlEscape(v.verdict) + "</td></tr>\n";
  }
  return h + "</table>\n";
}

}  // namespace residency::harness
