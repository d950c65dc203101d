// The human report: what a person reads after `residency replay`.
#include <cmath>
#include <cstdio>
#include <sstream>

#include "harness/report/report.h"

namespace residency::harness {

std::string HumanBytes(engine::Bytes b) {
  char buf[32];
  const double v = static_cast<double>(b);
  if (b >= 1'000'000'000) std::snprintf(buf, sizeof buf, "%.2f GB", v / 1e9);
  else if (b >= 1'000'000) std::snprintf(buf, sizeof buf, "%.1f MB", v / 1e6);
  else if (b >= 1'000) std::snprintf(buf, sizeof buf, "%.1f kB", v / 1e3);
  else std::snprintf(buf, sizeof buf, "%lld B", static_cast<long long>(b));
  return buf;
}

std::string HumanDuration(engine::Nanos ns) {
  char buf[32];
  const double v = static_cast<double>(ns);
  if (ns >= 1'000'000'000) std::snprintf(buf, sizeof buf, "%.2f s", v / 1e9);
  else if (ns >= 1'000'000) std::snprintf(buf, sizeof buf, "%.1f ms", v / 1e6);
  else std::snprintf(buf, sizeof buf, "%.1f us", v / 1e3);
  return buf;
}

std::string XmlEscape(const std::string& s) {
  std::string out;
  for (char c : s) {
    switch (c) {
      case '&': out += "&amp;"; break;
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '"': out += "&quot;"; break;
      case '\'': out += "&#39;"; break;
      default: out += c;
    }
  }
  return out;
}

double RoundStep(double max, int ticks) {
  if (!(max > 0) || ticks < 1) return 1;
  const double raw = max / ticks;
  const double power = std::pow(10.0, std::floor(std::log10(raw)));
  for (double m : {1.0, 2.0, 5.0, 10.0})
    if (m * power >= raw) return m * power;
  return 10 * power;
}

namespace {

void Row(std::ostringstream& o, const char* label, const std::string& value) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "  %-26s", label);
  o << buf << value << "\n";
}

// A prompt's time, or what kept it from having one.
std::string PromptCell(const sim::PromptTiming& p) {
  if (p.failed()) return "FAILED";
  if (!p.ended) return "unfinished";
  return HumanDuration(p.wall_ns());
}

}  // namespace

std::string FormatReport(const sim::SimResult& r) {
  std::ostringstream o;
  o << "Replay of '" << r.trace << "' on profile '" << r.profile << "' with policy '" << r.policy
    << "' (seed " << r.seed << ")\n";
  if (!r.policy_detail.empty()) o << "  policy " << r.policy << " = " << r.policy_detail << "\n";
  o << "\nPrompts\n";
  for (const sim::PromptTiming& p : r.prompts) {
    o << "  prompt " << p.prompt << ": ";
    if (p.failed())
      o << "FAILED (" << p.failed_ops << " op" << (p.failed_ops == 1 ? "" : "s") << " failed, below; stopped after "
        << HumanDuration(p.wall_ns()) << ")";
    else if (!p.ended)
      o << "UNFINISHED (" << (r.oom.happened ? "the run died of OOM" : "the trace ends inside it") << " after "
        << HumanDuration(p.wall_ns()) << ")";
    else
      o << HumanDuration(p.wall_ns());
    if (p.measured_wall_ns >= 0) {
      o << "   (measured " << HumanDuration(p.measured_wall_ns);
      // The server's own ending: its time is not a finished prompt's.
      if (p.measured_outcome != engine::PromptOutcome::kOk)
        o << "; the server " << (p.measured_outcome == engine::PromptOutcome::kFailed ? "failed" : "interrupted")
          << " it";
      o << ")";
    }
    o << "\n";
  }
  if (r.prompts.empty()) o << "  (no prompt markers in the trace)\n";
  o << "\nTotals\n";
  Row(o, "makespan", HumanDuration(r.makespan_ns));
  Row(o, "time loading", HumanDuration(r.load_ns));
  Row(o, "read from disk", HumanBytes(r.tally.disk_read_bytes));
  Row(o, "read from page cache", HumanBytes(r.tally.page_cache_read_bytes));
  Row(o, "host -> device", HumanBytes(r.tally.h2d_bytes));
  Row(o, "loads: disk / page cache", std::to_string(r.tally.disk_loads) + " / " + std::to_string(r.tally.page_cache_loads));
  Row(o, "loads from a RAM cache", std::to_string(r.tally.ram_cache_hits));
  Row(o, "loads already on device", std::to_string(r.tally.device_hits));
  if (r.tally.spill_loads || r.tally.spill_write_bytes)
    Row(o, "spill: written / loads", HumanBytes(r.tally.spill_write_bytes) + " / " + std::to_string(r.tally.spill_loads));
  if (r.tally.pin_fallbacks) Row(o, "pin budget fallbacks", std::to_string(r.tally.pin_fallbacks));
  o << "\nPeaks\n";
  Row(o, "host (pageable + pinned)", HumanBytes(r.tally.peak_host_bytes));
  Row(o, "pinned", HumanBytes(r.tally.peak_pinned_bytes));
  Row(o, "device", HumanBytes(r.tally.peak_device_bytes));
  Row(o, "page cache", HumanBytes(r.peak_page_cache_bytes));
  Row(o, "RAM (host + page cache)", HumanBytes(r.peak_ram_bytes));
  if (r.unified) Row(o, "unified (host + device)", HumanBytes(r.peak_unified_bytes));
  o << "\nEvictions\n";
  if (r.tally.evictions.empty()) o << "  none\n";
  for (const auto& [key, s] : r.tally.evictions)
    Row(o, key.c_str(), std::to_string(s.count) + " (" + HumanBytes(s.bytes) + ")");
  o << "\nOOM: " << (r.oom.happened ? "YES at " + HumanDuration(r.oom.time_ns) : std::string("no")) << "\n";
  if (r.oom.happened) {
    o << "  " << r.oom.message << "\n  held at that moment:\n";
    for (const std::string& h : r.oom.holders) o << "    " << h << "\n";
  }
  if (!r.tally.failed_ops.empty()) {
    o << "\nFailed ops (" << r.tally.failed_ops.size() << ")\n";
    for (std::size_t i = 0; i < r.tally.failed_ops.size() && i < 10; ++i) o << "  " << r.tally.failed_ops[i] << "\n";
  }
  o << "\nInvariant violations: " << r.violations.size() << "\n";
  for (const std::string& v : r.violations) o << "  " << v << "\n";
  char hash[32];
  std::snprintf(hash, sizeof hash, "%016llx", static_cast<unsigned long long>(r.event_log_hash));
  o << "\nevent log hash " << hash << " (" << r.events << " events, " << r.tally.commands << " commands)\n";
  return o.str();
}

std::string FormatComparison(const sim::SimResult& a, const sim::SimResult& b) {
  std::ostringstream o;
  char buf[160];
  o << "'" << a.trace << "' on '" << a.profile << "'\n\n";
  std::snprintf(buf, sizeof buf, "  %-24s %18s %18s\n", "", a.policy.c_str(), b.policy.c_str());
  o << buf;
  auto line = [&](const char* label, const std::string& x, const std::string& y) {
    std::snprintf(buf, sizeof buf, "  %-24s %18s %18s\n", label, x.c_str(), y.c_str());
    o << buf;
  };
  const std::size_t n = std::max(a.prompts.size(), b.prompts.size());
  for (std::size_t i = 0; i < n; ++i) {
    const std::string label = "prompt " + std::to_string(i + 1);
    line(label.c_str(), i < a.prompts.size() ? PromptCell(a.prompts[i]) : "-",
         i < b.prompts.size() ? PromptCell(b.prompts[i]) : "-");
  }
  line("makespan", HumanDuration(a.makespan_ns), HumanDuration(b.makespan_ns));
  line("time loading", HumanDuration(a.load_ns), HumanDuration(b.load_ns));
  line("read from disk", HumanBytes(a.tally.disk_read_bytes), HumanBytes(b.tally.disk_read_bytes));
  line("loads from disk", std::to_string(a.tally.disk_loads), std::to_string(b.tally.disk_loads));
  line("loads from page cache", std::to_string(a.tally.page_cache_loads), std::to_string(b.tally.page_cache_loads));
  line("RAM-cache hits", std::to_string(a.tally.ram_cache_hits), std::to_string(b.tally.ram_cache_hits));
  // mmap'd weights are page cache, not host memory: compare all RAM too.
  line("peak RAM (host + cache)", HumanBytes(a.peak_ram_bytes), HumanBytes(b.peak_ram_bytes));
  line("peak host (no cache)", HumanBytes(a.tally.peak_host_bytes), HumanBytes(b.tally.peak_host_bytes));
  line("peak page cache", HumanBytes(a.peak_page_cache_bytes), HumanBytes(b.peak_page_cache_bytes));
  line("peak pinned", HumanBytes(a.tally.peak_pinned_bytes), HumanBytes(b.tally.peak_pinned_bytes));
  line("peak device", HumanBytes(a.tally.peak_device_bytes), HumanBytes(b.tally.peak_device_bytes));
  line("OOM", a.oom.happened ? "YES" : "no", b.oom.happened ? "YES" : "no");
  line("violations", std::to_string(a.violations.size()), std::to_string(b.violations.size()));
  return o.str();
}

}  // namespace residency::harness
