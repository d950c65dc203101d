#include "harness/html_report.h"

#include <algorithm>
#include <cstdio>
#include <map>
#include <set>
#include <tuple>

#include "harness/report.h"

namespace residency::harness {
namespace {

std::int64_t Figure(const store::RunRow& r, const std::string& name) {
  const auto it = r.figures.find(name);
  return it == r.figures.end() ? 0 : it->second;
}

const char* kPalette[] = {"#4e79a7", "#f28e2b", "#59a14f", "#e15759", "#76b7b2", "#edc948", "#b07aa1", "#9c755f"};

// Grouped bars: one group per trace, one bar per policy; OOM and failed
// runs are drawn as red crosses at the baseline.
std::string MakespanChart(const std::vector<const store::RunRow*>& runs) {
  std::vector<std::string> traces, policies;
  for (const auto* r : runs) {
    if (std::find(traces.begin(), traces.end(), r->trace) == traces.end()) traces.push_back(r->trace);
    if (std::find(policies.begin(), policies.end(), r->policy) == policies.end()) policies.push_back(r->policy);
  }
  std::map<std::pair<std::string, std::string>, const store::RunRow*> cell;
  std::int64_t max_ns = 1;
  for (const auto* r : runs) {
    cell[{r->trace, r->policy}] = r;  // the last seed shown
    if (r->outcome == "ok" || r->outcome == "violation") max_ns = std::max(max_ns, Figure(*r, "makespan_ns"));
  }
  const int bar = 18, gap = 14, left = 60, top = 20, height = 200;
  const int group = static_cast<int>(policies.size()) * bar + gap;
  const int width = left + static_cast<int>(traces.size()) * group + 20;
  std::string svg;
  char buf[512];
  std::snprintf(buf, sizeof buf,
                "<svg xmlns='http://www.w3.org/2000/svg' width='%d' height='%d' font-family='sans-serif' "
                "font-size='11'>\n",
                width, top + height + 110);
  svg += buf;
  for (int tick = 0; tick <= 4; ++tick) {
    const int y = top + height - tick * height / 4;
    std::snprintf(buf, sizeof buf,
                  "<line x1='%d' x2='%d' y1='%d' y2='%d' stroke='#ddd'/><text x='%d' y='%d' "
                  "text-anchor='end'>%s</text>\n",
                  left, width - 10, y, y, left - 4, y + 4, HtmlEscape(HumanDuration(max_ns * tick / 4)).c_str());
    svg += buf;
  }
  for (std::size_t t = 0; t < traces.size(); ++t) {
    const int x0 = left + static_cast<int>(t) * group + gap / 2;
    for (std::size_t p = 0; p < policies.size(); ++p) {
      const auto it = cell.find({traces[t], policies[p]});
      if (it == cell.end()) continue;
      const store::RunRow& r = *it->second;
      const int x = x0 + static_cast<int>(p) * bar;
      if (r.outcome != "ok" && r.outcome != "violation") {
        std::snprintf(buf, sizeof buf,
                      "<text x='%d' y='%d' fill='#c00' text-anchor='middle' font-weight='bold'>&#x2715;<title>%s "
                      "%s: %s</title></text>\n",
                      x + bar / 2, top + height - 3, HtmlEscape(r.trace).c_str(), HtmlEscape(r.policy).c_str(),
                      r.outcome.c_str());
      } else {
        const int h = static_cast<int>(static_cast<double>(Figure(r, "makespan_ns")) / static_cast<double>(max_ns) *
                                       height);
        std::snprintf(buf, sizeof buf,
                      "<rect x='%d' y='%d' width='%d' height='%d' fill='%s'><title>%s, %s: %s</title></rect>\n",
                      x, top + height - h, bar - 2, h, kPalette[p % 8], HtmlEscape(r.trace).c_str(),
                      HtmlEscape(r.policy).c_str(), HtmlEscape(HumanDuration(Figure(r, "makespan_ns"))).c_str());
      }
      svg += buf;
    }
    std::snprintf(buf, sizeof buf,
                  "<text transform='translate(%d,%d) rotate(35)'>%s</text>\n", x0, top + height + 12,
                  HtmlEscape(traces[t]).c_str());
    svg += buf;
  }
  for (std::size_t p = 0; p < policies.size(); ++p) {
    std::snprintf(buf, sizeof buf,
                  "<rect x='%d' y='4' width='10' height='10' fill='%s'/><text x='%d' y='13'>%s</text>\n",
                  left + static_cast<int>(p) * 130, kPalette[p % 8], left + static_cast<int>(p) * 130 + 14,
                  HtmlEscape(policies[p]).c_str());
    svg += buf;
  }
  svg += "</svg>\n";
  return svg;
}

}  // namespace

std::string HtmlEscape(const std::string& s) { return XmlEscape(s); }

std::string HtmlReport(const std::vector<store::RunRow>& all, const std::string& title) {
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
       "color:#900;font-weight:bold}</style></head><body>\n";
  h += "<h1>" + HtmlEscape(title) + "</h1>\n";
  char buf[512];
  std::snprintf(buf, sizeof buf, "<p>%zu runs (newest per input), %zu profiles: %d OOM, %d infeasible, %d with violations, %d "
                "failed.</p>\n",
                newest.size(), by_profile.size(), ooms, infeasible, violations, errors);
  h += buf;
  for (const auto& [profile, runs] : by_profile) {
    h += "<h2>" + HtmlEscape(profile) + "</h2>\n";
    h += MakespanChart(runs);
    h += "<table><tr><th>trace</th><th>policy</th><th>seed</th><th>outcome</th><th>makespan</th><th>load</th>"
         "<th>disk read</th><th>RAM-cache hits</th><th>peak host</th><th>peak pinned</th><th>peak device</th></tr>\n";
    for (const store::RunRow* r : runs) {
      const std::string cls = r->outcome == "ok" ? "" : " class='" + r->outcome + "'";
      h += "<tr><td>" + HtmlEscape(r->trace) + "</td><td>" + HtmlEscape(r->policy) + "</td><td>" +
           std::to_string(r->seed) + "</td><td" + cls + ">" + HtmlEscape(r->outcome) + "</td><td>" +
           HumanDuration(Figure(*r, "makespan_ns")) + "</td><td>" + HumanDuration(Figure(*r, "load_ns")) +
           "</td><td>" + HumanBytes(Figure(*r, "disk_read_bytes")) + "</td><td>" +
           std::to_string(Figure(*r, "ram_cache_hits")) + "</td><td>" + HumanBytes(Figure(*r, "peak_host_bytes")) +
           "</td><td>" + HumanBytes(Figure(*r, "peak_pinned_bytes")) + "</td><td>" +
           HumanBytes(Figure(*r, "peak_device_bytes")) + "</td></tr>\n";
      for (const std::string& v : r->violations) {
        h += "<tr><td colspan='11' class='violation' style='text-align:left'>" + HtmlEscape(v) + "</td></tr>\n";
      }
    }
    h += "</table>\n";
  }
  h += "</body></html>\n";
  return h;
}

}  // namespace residency::harness
