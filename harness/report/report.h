// Presenting a simulated run: the human report, the --json object, the
// Chrome Trace Event timeline (opens in Perfetto) and the SVG memory picture.
#pragma once

#include <nlohmann/json.hpp>
#include <string>

#include "sim/sim_result.h"

namespace residency::harness {

std::string FormatReport(const sim::SimResult& r);
// Two runs of one trace and profile side by side (the demo).
std::string FormatComparison(const sim::SimResult& a, const sim::SimResult& b);
nlohmann::ordered_json ResultJson(const sim::SimResult& r);
std::string TimelineJson(const sim::SimResult& r);
std::string MemorySvg(const sim::SimResult& r);

// Human-readable sizes and durations ("6.94 GB", "12.3 s").
std::string HumanBytes(engine::Bytes b);
std::string HumanDuration(engine::Nanos ns);
// Text for XML and HTML: & < > " ' as entities (names come from users' files).
std::string XmlEscape(const std::string& s);
// A round axis step (1, 2 or 5 times a power of ten) giving at most `ticks` steps up to `max`.
double RoundStep(double max, int ticks);

}  // namespace residency::harness
