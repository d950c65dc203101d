#include "harness/report/html_report.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <map>
#include <set>
#include <tuple>

#include "harness/report/report.h"

namespace residency::harness {
namespace {

std::int64_t Figure(const store::RunRow& r, const std::string& name) {
  const auto it = r.figures.find(name);
  return it == r.figures.end() ? 0 : it->second;
}

// A run that reached its end (a violation is reported, not fatal): it has a makespan.
bool Finished(const store::RunRow& r) { return r.outcome == "ok" || r.outcome == "violation"; }

const char* kPalette[] = {"#4e79a7", "#f28e2b", "#59a14f", "#e15759", "#76b7b2", "#edc948", "#b07aa1", "#9c755f"};

// Text width in px at the charts' 11 px sans-serif: an estimate that errs
// wide, so labels and legends get room rather than being cut off.
int TextWidth(const std::string& s) { return static_cast<int>(s.size()) * 7 + 4; }

// An axis value: round ticks read "800 s", not "800.00 s".
std::string TickLabel(engine::Nanos ns) {
  if (ns == 0) return "0";
  std::string s = HumanDuration(ns);
  const auto dot = s.find('.');
  const auto space = s.find(' ');
  if (dot != std::string::npos && space != std::string::npos &&
      s.find_first_not_of('0', dot + 1) == space)
    s.erase(dot, space - dot);
  return s;
}

// Grouped bars: one group per trace, one bar per policy; OOM and failed
// runs are drawn as red crosses at the baseline. At least 640 px wide, the
// legend wraps within that width, and the canvas makes room for the slanted
// trace names, so nothing is cut off.
std::string MakespanChart(const std::vector<const store::RunRow*>& runs) {
  std::vector<std::string> traces, policies;
  for (const auto* r : runs) {
    if (std::find(traces.begin(), traces.end(), r->trace) == traces.end()) traces.push_back(r->trace);
    if (std::find(policies.begin(), policies.end(), r->policy) == policies.end()) policies.push_back(r->policy);
  }
  std::map<std::pair<std::string, std::string>, const store::RunRow*> cell;
  std::int64_t max_ns = 0;
  for (const auto* r : runs) {
    cell[{r->trace, r->policy}] = r;  // the last seed shown
    if (Finished(*r)) max_ns = std::max(max_ns, Figure(*r, "makespan_ns"));
  }
  constexpr int kMinWidth = 640, kLeft = 70, kRight = 20, kHeight = 220;
  const int bar = std::clamp(480 / std::max<int>(1, static_cast<int>(traces.size() * policies.size())), 10, 36);
  const int gap = bar;
  const int group = static_cast<int>(policies.size()) * bar + gap;
  int longest_trace = 0;
  for (const std::string& t : traces) longest_trace = std::max(longest_trace, TextWidth(t));
  longest_trace = std::min(longest_trace, 400);  // names are cut at 56 characters below
  // Slanted 35 degrees: a name reaches cos 35 to the right and sin 35 down.
  const int width = std::max(kMinWidth, kLeft + static_cast<int>(traces.size()) * group + kRight +
                                            longest_trace * 82 / 100);
  // The legend: one row after another, each item as wide as its name.
  std::string legend;
  char buf[768];
  int lx = kLeft, ly = 4;
  for (std::size_t p = 0; p < policies.size(); ++p) {
    const int item = 18 + TextWidth(policies[p]) + 12;
    if (lx > kLeft && lx + item > width - kRight) {
      lx = kLeft;
      ly += 16;
    }
    std::snprintf(buf, sizeof buf,
                  "<rect x='%d' y='%d' width='10' height='10' fill='%s'/><text x='%d' y='%d'>%s</text>\n", lx, ly,
                  kPalette[p % 8], lx + 14, ly + 9, HtmlEscape(policies[p]).c_str());
    legend += buf;
    lx += item;
  }
  const int top = ly + 26;
  const int bottom = top + kHeight;
  const int total_height = bottom + 16 + longest_trace * 58 / 100;
  std::string svg;
  std::snprintf(buf, sizeof buf,
                "<svg xmlns='http://www.w3.org/2000/svg' width='%d' height='%d' viewBox='0 0 %d %d' "
                "font-family='sans-serif' font-size='11'>\n",
                width, total_height, width, total_height);
  svg += buf;
  svg += legend;
  double axis_max = 0;  // the top tick: bars are drawn against it
  if (max_ns <= 0) {
    // Every run failed: no axis to label (a scale of zeros says nothing).
    std::snprintf(buf, sizeof buf,
                  "<text x='%d' y='%d' fill='#900'>No run on this profile finished: no makespan to chart "
                  "(see the table).</text>\n",
                  kLeft, top + kHeight / 2);
    svg += buf;
  } else {
    const double step = RoundStep(static_cast<double>(max_ns), 5);
    axis_max = std::ceil(static_cast<double>(max_ns) / step) * step;
    for (double v = 0; v <= axis_max + step / 2; v += step) {
      const int y = bottom - static_cast<int>(v / axis_max * kHeight);
      std::snprintf(buf, sizeof buf,
                    "<line x1='%d' x2='%d' y1='%d' y2='%d' stroke='#ddd'/><text x='%d' y='%d' "
                    "text-anchor='end'>%s</text>\n",
                    kLeft, width - kRight, y, y, kLeft - 4, y + 4,
                    TickLabel(static_cast<engine::Nanos>(v)).c_str());
      svg += buf;
    }
  }
  for (std::size_t t = 0; t < traces.size(); ++t) {
    const int x0 = kLeft + static_cast<int>(t) * group + gap / 2;
    for (std::size_t p = 0; p < policies.size(); ++p) {
      const auto it = cell.find({traces[t], policies[p]});
      if (it == cell.end()) continue;
      const store::RunRow& r = *it->second;
      const int x = x0 + static_cast<int>(p) * bar;
      if (!Finished(r)) {
        std::snprintf(buf, sizeof buf,
                      "<text x='%d' y='%d' fill='#c00' text-anchor='middle' font-weight='bold'>&#x2715;<title>%s "
                      "%s: %s</title></text>\n",
                      x + bar / 2, bottom - 3, HtmlEscape(r.trace).c_str(), HtmlEscape(r.policy).c_str(),
                      r.outcome.c_str());
      } else {
        const int h = axis_max > 0
                          ? static_cast<int>(static_cast<double>(Figure(r, "makespan_ns")) / axis_max * kHeight)
                          : 0;
        std::snprintf(buf, sizeof buf,
                      "<rect x='%d' y='%d' width='%d' height='%d' fill='%s'><title>%s, %s: %s</title></rect>\n",
                      x, bottom - h, bar - 2, h, kPalette[p % 8], HtmlEscape(r.trace).c_str(),
                      HtmlEscape(r.policy).c_str(), HtmlEscape(HumanDuration(Figure(r, "makespan_ns"))).c_str());
      }
      svg += buf;
    }
    const std::string name = traces[t].size() > 56 ? traces[t].substr(0, 55) + "~" : traces[t];
    std::snprintf(buf, sizeof buf, "<text transform='translate(%d,%d) rotate(35)'>%s<title>%s</title></text>\n", x0,
                  bottom + 12, HtmlEscape(name).c_str(), HtmlEscape(traces[t]).c_str());
    svg += buf;
  }
  svg += "</svg>\n";
  return svg;
}

// A run's failed ops and violations, folded: a report of many failed runs
// was mostly red lists. The summary line says how many; the first few open.
std::string ProblemList(const store::RunRow& r, int columns) {
  if (r.violations.empty()) return "";
  constexpr std::size_t kShown = 20;
  std::string h = "<tr><td colspan='" + std::to_string(columns) +
                  "' class='problems'><details><summary>" + std::to_string(r.violations.size()) +
                  (r.violations.size() == 1 ? " problem" : " problems") + " in this run</summary><ul>\n";
  for (std::size_t i = 0; i < r.violations.size() && i < kShown; ++i)
    h += "<li>" + HtmlEscape(r.violations[i]) + "</li>\n";
  if (r.violations.size() > kShown)
    h += "<li>and " + std::to_string(r.violations.size() - kShown) + " more (`residency replay` lists them all)</li>\n";
  return h + "</ul></details></td></tr>\n";
}

}  // namespace

std::string HtmlEscape(const std::string& s) { return XmlEscape(s); }

std::string HtmlReport(const std::vector<store::RunRow>& all, const std::string& title, const std::string& preface_html) {
  std::map<std::tuple<std::string, std::string, std::string, std::uint64_t>, const store::RunRow*> newest;
  for (const store::RunRow& r : all) newest[{r.profile, r.trace, r.policy, r.seed}] = &r;
  std::map<std::string, std::vector<const store::RunRow*>> by_profile;
  int ooms = 0, violations = 0, errors = 0, infeasible = 0;
  for (const auto& [key, r] : newest) {
    by_profile[r->profile].push_back(r);
    ooms += r->outcome == "oom";
    violations += r->outcome == "violation";
    errors += r->outcome == "error";
    infeasible += r->outcome == "infeasible";
  }
  std::string h;
  h += "<!DOCTYPE html>\n<html lang='en'><head><meta charset='utf-8'><title>" + HtmlEscape(title) +
       "</title>\n<style>body{font-family:sans-serif;margin:2em;color:#222}table{border-collapse:collapse;"
       "margin:1em 0}td,th{border:1px solid #ccc;padding:3px 8px;text-align:right}td:first-child,"
       "td:nth-child(2){text-align:left}th{background:#f3f3f3}.oom,.error,.violation,.infeasible{background:#fdd;"
       "color:#900;font-weight:bold}td.problems{text-align:left;color:#900;background:#fff8f8}"
       "td.problems ul{margin:4px 0}svg{display:block;max-width:100%;height:auto}</style></head><body>\n";
  h += "<h1>" + HtmlEscape(title) + "</h1>\n";
  h += preface_html;
  char buf[512];
  std::snprintf(buf, sizeof buf, "<p>%zu runs (newest per input), %zu profiles: %d OOM, %d infeasible, %d with violations, %d "
                "failed.</p>\n",
                newest.size(), by_profile.size(), ooms, infeasible, violations, errors);
  h += buf;
  for (const auto& [profile, runs] : by_profile) {
    h += "<h2>" + HtmlEscape(profile) + "</h2>\n";
    h += MakespanChart(runs);
    h += "<table><tr><th>trace</th><th>policy</th><th>seed</th><th>outcome</th><th>makespan</th><th>load</th>"
         "<th>disk read</th><th>RAM-cache hits</th><th>peak RAM</th><th>peak host</th><th>peak pinned</th>"
         "<th>peak device</th></tr>\n";
    for (const store::RunRow* r : runs) {
      const std::string cls = r->outcome == "ok" ? "" : " class='" + r->outcome + "'";
      const auto duration = [&](const char* figure) {
        return Finished(*r) ? HumanDuration(Figure(*r, figure)) : std::string("-");
      };
      const auto peak_ram = r->figures.find("peak_ram_bytes");
      h += "<tr><td>" + HtmlEscape(r->trace) + "</td><td>" + HtmlEscape(r->policy) + "</td><td>" +
           std::to_string(r->seed) + "</td><td" + cls + ">" + HtmlEscape(r->outcome) + "</td><td>" +
           duration("makespan_ns") + "</td><td>" + duration("load_ns") + "</td><td>" +
           HumanBytes(Figure(*r, "disk_read_bytes")) + "</td><td>" + std::to_string(Figure(*r, "ram_cache_hits")) +
           "</td><td>" + (peak_ram == r->figures.end() ? std::string("-") : HumanBytes(peak_ram->second)) +
           "</td><td>" + HumanBytes(Figure(*r, "peak_host_bytes")) + "</td><td>" +
           HumanBytes(Figure(*r, "peak_pinned_bytes")) + "</td><td>" + HumanBytes(Figure(*r, "peak_device_bytes")) +
           "</td></tr>\n";
      h += ProblemList(*r, 12);
    }
    h += "</table>\n";
  }
  h += "</body></html>\n";
  return h;
}

}  // namespace residency::harness
