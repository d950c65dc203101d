#include "harness/report/explain.h"

#include <algorithm>
#include <cstdio>
#include <map>
#include <set>

#include "harness/report/report.h"

namespace residency::harness {
namespace {

using engine::Nanos;

// Lanes in precedence order, and the name each share is reported under.
const std::vector<std::pair<std::string, std::string>>& Lanes() {
  static const std::vector<std::pair<std::string, std::string>> kLanes = {
      {"compute", "compute"},
      {"disk reads", "disk-bound reads"},
      {"h2d copies", "host->device copies"},
      {"pin/prefault", "page-locking and prefault"},
      {"spill writes", "spill I/O"},
      {"d2h copies", "device->host copies"},
  };
  return kLanes;
}

std::string Pct(Nanos part, Nanos whole) {
  char b[16];
  std::snprintf(b, sizeof b, "%5.1f%%", whole > 0 ? 100.0 * static_cast<double>(part) / static_cast<double>(whole) : 0.0);
  return b;
}

}  // namespace

std::vector<PromptExplanation> ExplainPrompts(const sim::SimResult& r) {
  std::vector<PromptExplanation> out;
  std::map<std::string, Nanos> first_load_end;  // model -> end of its first load
  std::vector<const sim::Slice*> loads;
  for (const sim::Slice& s : r.slices)
    if (s.lane == "loads") loads.push_back(&s);
  std::sort(loads.begin(), loads.end(), [](auto* a, auto* b) { return a->begin_ns < b->begin_ns; });

  for (const sim::PromptTiming& p : r.prompts) {
    PromptExplanation e;
    e.prompt = p.prompt;
    e.wall_ns = p.wall_ns();
    e.disk_read_bytes = p.disk_read_bytes;
    // Elementary segments between every slice boundary inside the prompt.
    std::set<Nanos> cuts = {p.begin_ns, p.end_ns};
    for (const sim::Slice& s : r.slices) {
      if (s.end_ns <= p.begin_ns || s.begin_ns >= p.end_ns) continue;
      cuts.insert(std::max(s.begin_ns, p.begin_ns));
      cuts.insert(std::min(s.end_ns, p.end_ns));
    }
    std::map<std::string, Nanos> share;
    Nanos stalls = 0;
    for (auto it = cuts.begin(); std::next(it) != cuts.end(); ++it) {
      const Nanos a = *it, b = *std::next(it);
      std::string owner;
      for (const auto& [lane, name] : Lanes()) {
        for (const sim::Slice& s : r.slices) {
          if (s.lane == lane && s.begin_ns <= a && s.end_ns >= b && s.end_ns > s.begin_ns) {
            owner = name;
            break;
          }
        }
        if (!owner.empty()) break;
      }
      if (owner.empty()) {
        stalls += b - a;
      } else {
        share[owner] += b - a;
      }
    }
    for (const auto& [lane, name] : Lanes())
      if (share[name] > 0) e.shares.push_back({name, share[name]});
    if (stalls > 0) e.shares.push_back({"stalls (staging, allocation, bookkeeping)", stalls});
    std::map<std::string, std::pair<engine::Bytes, Nanos>> reloaded;  // model -> bytes, time
    for (const sim::Slice* s : loads) {
      if (s->begin_ns < p.begin_ns || s->begin_ns >= p.end_ns) continue;
      const std::string model = s->name.substr(5);  // "load X"
      const auto first = first_load_end.find(model);
      if (first == first_load_end.end()) {
        first_load_end[model] = s->end_ns;
      } else if (first->second <= p.begin_ns) {
        e.reload_ns += s->end_ns - s->begin_ns;
        reloaded[model].first += s->bytes;
        reloaded[model].second += s->end_ns - s->begin_ns;
      }
    }
    for (const auto& [model, bt] : reloaded)
      e.reloads.push_back(model + ": " + HumanBytes(bt.first) + " in " + HumanDuration(bt.second));
    out.push_back(std::move(e));
  }
  return out;
}

std::string FormatExplanation(const sim::SimResult& r, const std::vector<PromptExplanation>& prompts,
                              std::vector<Alternative> alternatives) {
  std::string out = "Where the time goes: '" + r.trace + "' on " + r.profile + " with " + r.policy + " (" +
                    HumanDuration(r.makespan_ns) + ")\n";
  if (r.oom.happened) out += "  OUT OF MEMORY at " + HumanDuration(r.oom.time_ns) + ": " + r.oom.message + "\n";
  for (const std::string& f : r.tally.failed_ops) out += "  REFUSED " + f + "\n";
  std::map<std::string, Nanos> total;
  for (const PromptExplanation& p : prompts) {
    char head[160];
    std::snprintf(head, sizeof head, "\nprompt %d: %s, %s read from disk\n", p.prompt, HumanDuration(p.wall_ns).c_str(),
                  HumanBytes(p.disk_read_bytes).c_str());
    out += head;
    for (const TimeShare& s : p.shares) {
      char line[160];
      std::snprintf(line, sizeof line, "  %-44s %10s  %s\n", s.what.c_str(), HumanDuration(s.ns).c_str(),
                    Pct(s.ns, p.wall_ns).c_str());
      out += line;
      total[s.what] += s.ns;
    }
    if (!p.reloads.empty()) {
      out += "  reloads of evicted models (" + HumanDuration(p.reload_ns) + "):";
      for (const std::string& x : p.reloads) out += " " + x + ";";
      out.back() = '\n';
    }
  }
  // The largest non-compute share across the run.
  std::string worst;
  Nanos worst_ns = 0;
  for (const auto& [what, ns] : total)
    if (what != "compute" && ns > worst_ns) worst = what, worst_ns = ns;
  if (!worst.empty())
    out += "\nBiggest cost besides compute: " + worst + ", " + HumanDuration(worst_ns) + " (" +
           Pct(worst_ns, r.makespan_ns).substr(Pct(worst_ns, r.makespan_ns).find_first_not_of(' ')) +
           " of the run).\n";

  std::sort(alternatives.begin(), alternatives.end(), [](const Alternative& a, const Alternative& b) {
    const bool ok_a = !a.result.oom.happened && a.result.tally.failed_ops.empty();
    const bool ok_b = !b.result.oom.happened && b.result.tally.failed_ops.empty();
    if (ok_a != ok_b) return ok_a;
    return a.result.makespan_ns < b.result.makespan_ns;
  });
  out += "\nEvery bundled policy on the same trace and profile (best first):\n";
  for (const Alternative& a : alternatives) {
    char line[256];
    const double delta = 100.0 * static_cast<double>(a.result.makespan_ns - r.makespan_ns) /
                         static_cast<double>(std::max<Nanos>(1, r.makespan_ns));
    const std::string state = a.result.oom.happened          ? "OOM"
                              : !a.result.tally.failed_ops.empty() ? "refused"
                                                             : "";
    std::snprintf(line, sizeof line, "  %-24s %10s %+7.1f%%  disk %10s  RAM-cache hits %3lld  %s%s\n",
                  a.policy.c_str(), HumanDuration(a.result.makespan_ns).c_str(), delta,
                  HumanBytes(a.result.tally.disk_read_bytes).c_str(), static_cast<long long>(a.result.tally.ram_cache_hits),
                  state.c_str(), a.policy == r.policy ? "  (this run)" : "");
    out += line;
  }
  const bool any_clean = std::any_of(alternatives.begin(), alternatives.end(), [](const Alternative& a) {
    return !a.result.oom.happened && a.result.tally.failed_ops.empty();
  });
  if (!any_clean)
    out += "\nEvery bundled policy runs out of memory or is refused here: the working set does not fit this "
           "machine (see the REFUSED lines); a smaller quantization or a larger machine is the change that helps.\n";
  for (const Alternative& a : alternatives) {
    if (a.policy == r.policy || a.result.oom.happened || !a.result.tally.failed_ops.empty()) continue;
    if (a.result.makespan_ns < r.makespan_ns) {
      char line[256];
      std::snprintf(line, sizeof line,
                    "\nWhat would help most: --policy %s, %s faster (%s instead of %s; %s read from disk instead of "
                    "%s).\n",
                    a.policy.c_str(), HumanDuration(r.makespan_ns - a.result.makespan_ns).c_str(),
                    HumanDuration(a.result.makespan_ns).c_str(), HumanDuration(r.makespan_ns).c_str(),
                    HumanBytes(a.result.tally.disk_read_bytes).c_str(), HumanBytes(r.tally.disk_read_bytes).c_str());
      out += line;
    } else {
      out += "\nNo bundled policy beats " + r.policy + " here.\n";
    }
    break;
  }
  return out;
}

}  // namespace residency::harness
