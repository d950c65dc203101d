// `residency fidelity --captured TRACE`: a captured trace's own prompt times
// (measured_wall_ns, taken inside the real server) against the simulator's
// on the captured machine's profile. No real run is needed: the capture was it.
#pragma once

#include <string>
#include <vector>

#include "sim/sim_result.h"

namespace residency::harness {

struct CapturedPrompt {
  int prompt = 0;
  engine::Nanos captured_ns = -1;  // -1: the trace gives no time for it
  engine::Nanos simulated_ns = 0;
  // ok; failed or interrupted (the server's own status: its time is not a
  // finished prompt's); simulated-failed (the replay failed it). Only ok
  // prompts with a captured time are compared.
  std::string status = "ok";
  bool compared = false;
  double error = 0;  // (simulated - captured) / captured, when compared
};

struct CapturedFidelity {
  std::string trace, profile, policy;
  std::vector<CapturedPrompt> prompts;
  int compared = 0;               // ok prompts with a captured time
  int not_finished = 0;           // prompts the server or the replay did not finish
  double median_abs_error = 0;    // over those
  double max_abs_error = 0;
};

CapturedFidelity CompareCaptured(const sim::SimResult& r);
std::string FormatCapturedFidelity(const CapturedFidelity& f);
std::string CapturedFidelityJson(const CapturedFidelity& f);

}  // namespace residency::harness
