#include "harness/metrics/exposition.h"

#include <charconv>
#include <cmath>

namespace residency::metrics {
namespace {

void AppendDouble(std::string& out, double v) {
  if (std::isnan(v)) {
    out += "NaN";
  } else if (std::isinf(v)) {
    out += v > 0 ? "+Inf" : "-Inf";
  } else {
    char buf[32];
    const auto r = std::to_chars(buf, buf + sizeof buf, v);  // shortest round-trip form
    out.append(buf, r.ptr);
  }
}

void AppendUint(std::string& out, std::uint64_t v) {
  char buf[24];
  const auto r = std::to_chars(buf, buf + sizeof buf, v);
  out.append(buf, r.ptr);
}

// Label values escape backslash, double quote and newline; HELP text
// escapes backslash and newline.
void AppendEscaped(std::string& out, const std::string& s, bool quote) {
  for (char c : s) {
    if (c == '\\') {
      out += "\\\\";
    } else if (c == '\n') {
      out += "\\n";
    } else if (quote && c == '"') {
      out += "\\\"";
    } else {
      out += c;
    }
  }
}

void AppendSeries(std::string& out, const std::string& name, const char* suffix,
                  const std::vector<prometheus::ClientMetric::Label>& labels, const char* extra_name,
                  double extra_value, bool has_extra) {
  out += name;
  out += suffix;
  if (!labels.empty() || has_extra) {
    out += '{';
    bool first = true;
    for (const auto& l : labels) {
      if (!first) out += ',';
      first = false;
      out += l.name;
      out += "=\"";
      AppendEscaped(out, l.value, true);
      out += '"';
    }
    if (has_extra) {
      if (!first) out += ',';
      out += extra_name;
      out += "=\"";
      AppendDouble(out, extra_value);
      out += '"';
    }
    out += '}';
  }
  out += ' ';
}

void AppendSumAndCount(std::string& out, const std::string& name,
                       const std::vector<prometheus::ClientMetric::Label>& labels, double sum, std::uint64_t count) {
  AppendSeries(out, name, "_sum", labels, nullptr, 0, false);
  AppendDouble(out, sum);
  out += '\n';
  AppendSeries(out, name, "_count", labels, nullptr, 0, false);
  AppendUint(out, count);
  out += '\n';
}

const char* TypeName(prometheus::MetricType t) {
  switch (t) {
    case prometheus::MetricType::Counter: return "counter";
    case prometheus::MetricType::Gauge: return "gauge";
    case prometheus::MetricType::Histogram: return "histogram";
    case prometheus::MetricType::Summary: return "summary";
    default: return "untyped";
  }
}

}  // namespace

std::string ExpositionText(const std::vector<prometheus::MetricFamily>& families) {
  std::string out;
  out.reserve(64 * 1024);
  for (const prometheus::MetricFamily& f : families) {
    if (f.metric.empty()) continue;
    out += "# HELP ";
    out += f.name;
    out += ' ';
    AppendEscaped(out, f.help, false);
    out += "\n# TYPE ";
    out += f.name;
    out += ' ';
    out += TypeName(f.type);
    out += '\n';
    for (const prometheus::ClientMetric& m : f.metric) {
      switch (f.type) {
        case prometheus::MetricType::Counter:
          AppendSeries(out, f.name, "", m.label, nullptr, 0, false);
          AppendDouble(out, m.counter.value);
          out += '\n';
          break;
        case prometheus::MetricType::Gauge:
          AppendSeries(out, f.name, "", m.label, nullptr, 0, false);
          AppendDouble(out, m.gauge.value);
          out += '\n';
          break;
        case prometheus::MetricType::Histogram: {
          bool have_inf = false;
          for (const auto& b : m.histogram.bucket) {
            AppendSeries(out, f.name, "_bucket", m.label, "le", b.upper_bound, true);
            AppendUint(out, b.cumulative_count);
            out += '\n';
            have_inf = have_inf || std::isinf(b.upper_bound);
          }
          if (!have_inf) {
            AppendSeries(out, f.name, "_bucket", m.label, "le", INFINITY, true);
            AppendUint(out, m.histogram.sample_count);
            out += '\n';
          }
          AppendSumAndCount(out, f.name, m.label, m.histogram.sample_sum, m.histogram.sample_count);
          break;
        }
        case prometheus::MetricType::Summary:
          for (const auto& q : m.summary.quantile) {
            AppendSeries(out, f.name, "", m.label, "quantile", q.quantile, true);
            AppendDouble(out, q.value);
            out += '\n';
          }
          AppendSumAndCount(out, f.name, m.label, m.summary.sample_sum, m.summary.sample_count);
          break;
        default:
          AppendSeries(out, f.name, "", m.label, nullptr, 0, false);
          AppendDouble(out, m.untyped.value);
          out += '\n';
      }
    }
  }
  return out;
}

}  // namespace residency::metrics
