// An SVG picture of memory per tier over time, prompt boundaries dashed.
// Self-contained: opens in any browser.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <sstream>

#include "harness/report/report.h"

namespace residency::harness {

std::string MemorySvg(const sim::SimResult& r) {
  const double width = 960, height = 420, left = 70, right = 170, top = 40, bottom = 50;
  const double plot_w = width - left - right, plot_h = height - top - bottom;
  const engine::Nanos t_end = std::max<engine::Nanos>(1, r.makespan_ns);
  engine::Bytes y_max = std::max(r.ram_bytes, r.device_bytes);  // the capacity lines stay in the picture
  for (const sim::TierSample& s : r.samples)
    y_max = std::max({y_max, s.pageable_bytes, s.pinned_bytes, s.device_bytes, s.page_cache_bytes});
  // Round ticks: a GB step of 1, 2 or 5 times a power of ten, and the same in seconds.
  const double gb_step = RoundStep(static_cast<double>(std::max<engine::Bytes>(y_max, 1)) / 1e9, 5);
  const double gb_max = gb_step * std::ceil(static_cast<double>(y_max) / 1e9 / gb_step * 1.02);
  const double s_step = RoundStep(static_cast<double>(t_end) / 1e9, 6);
  auto x = [&](engine::Nanos t) { return left + plot_w * static_cast<double>(t) / static_cast<double>(t_end); };
  auto y = [&](engine::Bytes b) { return top + plot_h * (1.0 - static_cast<double>(b) / 1e9 / gb_max); };
  std::ostringstream o;
  char buf[512];
  o << "<svg xmlns='http://www.w3.org/2000/svg' width='" << width << "' height='" << height
    << "' font-family='sans-serif' font-size='12'>\n";
  o << "<rect width='100%' height='100%' fill='white'/>\n";
  o << "<text x='" << left << "' y='22' font-size='14' font-weight='bold'>Memory per tier: "
    << XmlEscape(r.trace) << " on " << XmlEscape(r.profile) << " / " << XmlEscape(r.policy) << "</text>\n";
  for (double gb = 0; gb <= gb_max * 1.0001; gb += gb_step) {
    const double yy = top + plot_h * (1.0 - gb / gb_max);
    std::snprintf(buf, sizeof buf,
                  "<line x1='%.1f' y1='%.1f' x2='%.1f' y2='%.1f' stroke='#ddd'/>"
                  "<text x='%.1f' y='%.1f' text-anchor='end'>%g GB</text>\n",
                  left, yy, left + plot_w, yy, left - 6, yy + 4, gb);
    o << buf;
  }
  for (double sec = 0; sec * 1e9 <= static_cast<double>(t_end) * 1.0001; sec += s_step) {
    std::snprintf(buf, sizeof buf, "<text x='%.1f' y='%.1f' text-anchor='middle'>%g s</text>\n",
                  x(static_cast<engine::Nanos>(sec * 1e9)), top + plot_h + 18, sec);
    o << buf;
  }
  // What the machine has: RAM and (unless unified) VRAM as labelled lines.
  auto capacity = [&](engine::Bytes b, const char* label) {
    if (b <= 0) return;
    std::snprintf(buf, sizeof buf,
                  "<line x1='%.1f' y1='%.1f' x2='%.1f' y2='%.1f' stroke='#444' stroke-width='1' "
                  "stroke-dasharray='1 3'/><text x='%.1f' y='%.1f' fill='#444' text-anchor='end'>%s %s</text>\n",
                  left, y(b), left + plot_w, y(b), left + plot_w - 4, y(b) - 4, label, HumanBytes(b).c_str());
    o << buf;
  };
  capacity(r.ram_bytes, r.unified ? "RAM (unified)" : "RAM");
  capacity(r.device_bytes, "VRAM");
  // Prompt boundaries.
  for (const sim::PromptTiming& p : r.prompts) {
    for (engine::Nanos t : {p.begin_ns, p.end_ns}) {
      std::snprintf(buf, sizeof buf,
                    "<line x1='%.1f' y1='%.1f' x2='%.1f' y2='%.1f' stroke='#999' stroke-dasharray='4 3'/>\n",
                    x(t), top, x(t), top + plot_h);
      o << buf;
    }
    std::snprintf(buf, sizeof buf, "<text x='%.1f' y='%.1f' fill='#666'>p%d</text>\n", x(p.begin_ns) + 3,
                  top + 12, p.prompt);
    o << buf;
  }
  struct Series {
    const char* name;
    const char* color;
    engine::Bytes sim::TierSample::*field;
  };
  // Pinned last, dashed, over pageable.
  const Series series[] = {{"device", "#d62728", &sim::TierSample::device_bytes},
                           {"host pageable", "#1f77b4", &sim::TierSample::pageable_bytes},
                           {"page cache", "#2ca02c", &sim::TierSample::page_cache_bytes},
                           {"pinned", "#9467bd", &sim::TierSample::pinned_bytes}};
  int legend = 0;
  for (const Series& s : series) {
    // Pinned is drawn dashed and thinner: where it equals pageable both stay visible.
    const bool pinned = s.field == &sim::TierSample::pinned_bytes;
    o << "<polyline fill='none' stroke='" << s.color << "' stroke-width='" << (pinned ? 1.5 : 2.5) << "'"
      << (pinned ? " stroke-dasharray='6 3'" : "") << " points='";
    engine::Bytes prev = 0;
    bool first = true;
    for (const sim::TierSample& p : r.samples) {
      const engine::Bytes v = p.*(s.field);
      if (!first) {  // step shape: hold the previous value until this moment
        std::snprintf(buf, sizeof buf, "%.1f,%.1f ", x(p.time_ns), y(prev));
        o << buf;
      }
      std::snprintf(buf, sizeof buf, "%.1f,%.1f ", x(p.time_ns), y(v));
      o << buf;
      prev = v;
      first = false;
    }
    o << "'/>\n";
    const double ly = top + 10 + 18 * legend++;
    std::snprintf(buf, sizeof buf,
                  "<rect x='%.1f' y='%.1f' width='14' height='4' fill='%s'/>"
                  "<text x='%.1f' y='%.1f'>%s</text>\n",
                  left + plot_w + 14, ly - 4, s.color, left + plot_w + 34, ly, s.name);
    o << buf;
  }
  if (r.oom.happened) {
    std::snprintf(buf, sizeof buf,
                  "<line x1='%.1f' y1='%.1f' x2='%.1f' y2='%.1f' stroke='black' stroke-width='2'/>"
                  "<text x='%.1f' y='%.1f' font-weight='bold'>OOM</text>\n",
                  x(r.oom.time_ns), top, x(r.oom.time_ns), top + plot_h, x(r.oom.time_ns) + 4, top + 28);
    o << buf;
  }
  o << "</svg>\n";
  return o.str();
}

}  // namespace residency::harness
