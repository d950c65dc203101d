// `residency report --html`: one self-contained page (inline CSS and SVG, no
// scripts, no network) with every stored run, per profile, and a bar chart
// of makespan per trace and policy.
#pragma once

#include <string>
#include <vector>

#include "harness/store/results_store.h"

namespace residency::harness {

std::string HtmlEscape(const std::string& s);
// Keeps the newest run per (trace, profile, policy, seed).
// `preface_html`, when given, goes after the title (the gate's verdict table).
std::string HtmlReport(const std::vector<store::RunRow>& runs, const std::string& title,
                       const std::string& preface_html = "");

}  // namespace residency::harness
