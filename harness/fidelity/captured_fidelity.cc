#include "harness/fidelity/captured_fidelity.h"

#include <cmath>
#include <cstdio>
#include <sstream>

#include <nlohmann/json.hpp>

#include "harness/calibrate/median.h"
#include "harness/report/report.h"

namespace residency::harness {

CapturedFidelity CompareCaptured(const sim::SimResult& r) {
  CapturedFidelity f;
  f.trace = r.trace;
  f.profile = r.profile;
  f.policy = r.policy;
  std::vector<double> errors;
  for (const sim::PromptTiming& p : r.prompts) {
    CapturedPrompt c;
    c.prompt = p.prompt;
    c.simulated_ns = p.wall_ns();
    c.captured_ns = p.measured_wall_ns;
    if (p.measured_outcome != engine::PromptOutcome::kOk) {
      c.status = std::string(engine::ToString(p.measured_outcome));
    } else if (!p.finished()) {
      c.status = "simulated-failed";
    }
    if (c.status != "ok") ++f.not_finished;
    c.compared = c.status == "ok" && c.captured_ns > 0;
    if (c.compared) {
      c.error = (static_cast<double>(c.simulated_ns) - static_cast<double>(c.captured_ns)) /
                static_cast<double>(c.captured_ns);
      errors.push_back(std::fabs(c.error));
      f.max_abs_error = std::max(f.max_abs_error, std::fabs(c.error));
    }
    f.prompts.push_back(c);
  }
  f.compared = static_cast<int>(errors.size());
  if (!errors.empty()) f.median_abs_error = Median(errors);
  return f;
}

std::string FormatCapturedFidelity(const CapturedFidelity& f) {
  std::ostringstream o;
  o << "Captured '" << f.trace << "' against the simulator on profile '" << f.profile << "', policy '"
    << f.policy << "'\n\n";
  char line[160];
  std::snprintf(line, sizeof line, "  %-8s %14s %14s %9s\n", "prompt", "captured", "simulated", "error");
  o << line;
  for (const CapturedPrompt& p : f.prompts) {
    if (p.compared) {
      std::snprintf(line, sizeof line, "  %-8d %14s %14s %+8.1f%%\n", p.prompt, HumanDuration(p.captured_ns).c_str(),
                    HumanDuration(p.simulated_ns).c_str(), 100.0 * p.error);
    } else if (p.status != "ok") {
      std::snprintf(line, sizeof line, "  %-8d %14s %14s %9s  %s\n", p.prompt,
                    p.captured_ns > 0 ? HumanDuration(p.captured_ns).c_str() : "(none)",
                    HumanDuration(p.simulated_ns).c_str(), "-", p.status.c_str());
    } else {
      std::snprintf(line, sizeof line, "  %-8d %14s %14s %9s\n", p.prompt, "(none)",
                    HumanDuration(p.simulated_ns).c_str(), "-");
    }
    o << line;
  }
  o << "\n";
  if (f.not_finished > 0)
    o << f.not_finished << " prompt" << (f.not_finished == 1 ? "" : "s")
      << " not compared: the server failed or interrupted them, or the replay failed them\n";
  if (f.compared == 0) {
    o << "no prompt in the trace has a captured time (prompt_end's measured_wall_ns): nothing to compare\n";
  } else {
    std::snprintf(line, sizeof line, "%d of %zu prompts compared: median |error| %.1f %%, max %.1f %%\n",
                  f.compared, f.prompts.size(), 100.0 * f.median_abs_error, 100.0 * f.max_abs_error);
    o << line;
  }
  return o.str();
}

std::string CapturedFidelityJson(const CapturedFidelity& f) {
  nlohmann::ordered_json j;
  j["trace"] = f.trace;
  j["profile"] = f.profile;
  j["policy"] = f.policy;
  j["compared"] = f.compared;
  j["not_finished"] = f.not_finished;
  j["median_abs_error"] = f.median_abs_error;
  j["max_abs_error"] = f.max_abs_error;
  j["prompts"] = nlohmann::ordered_json::array();
  for (const CapturedPrompt& p : f.prompts) {
    nlohmann::ordered_json jp;
    jp["prompt"] = p.prompt;
    jp["simulated_ns"] = p.simulated_ns;
    jp["status"] = p.status;
    if (p.captured_ns > 0) jp["captured_ns"] = p.captured_ns;
    if (p.compared) jp["error"] = p.error;
    j["prompts"].push_back(jp);
  }
  return j.dump(2) + "\n";
}

}  // namespace residency::harness
