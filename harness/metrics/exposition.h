// The Prometheus text exposition format (0.0.4) for what prometheus-cpp's
// Registry::Collect() returns. prometheus-cpp's TextSerializer formats
// through an ostringstream; with a few thousand series this writer is
// several times faster, which keeps /metrics p99 low under scrape load
// (docs/BENCHMARKS.md). Output is checked by `promtool check metrics`.
#pragma once

#include <prometheus/metric_family.h>

#include <string>
#include <vector>

namespace residency::metrics {

std::string ExpositionText(const std::vector<prometheus::MetricFamily>& families);

}  // namespace residency::metrics
