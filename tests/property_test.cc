// Property tests over generated cases (harness/proof/case_gen.h): traces x
// profiles x policies, shrunk to a minimal counterexample on failure. Every
// failure prints the RapidCheck seed (RC_PARAMS="reproduce=...") and the case
// as a trace, profile and policy, with the command that replays it.
#include <gtest/gtest.h>
#include <rapidcheck/gtest.h>

#include <sstream>

#include "harness/proof/case_check.h"
#include "traces/policy_file.h"

namespace residency::proof {
namespace {

// The case in full, for the failure message: paste the three parts into
// files and `residency replay` reproduces it.
std::string Dump(const Case& c, const std::vector<std::string>& problems) {
  std::ostringstream s;
  s << Describe(c) << "\nproblems:\n";
  for (const std::string& p : problems) s << "  " << p << "\n";
  s << "trace:\n" << traces::WriteTrace(c.trace) << "profile:\n" << traces::WriteProfile(c.profile)
    << "policy:\n" << traces::WritePolicy(c.policy)
    << "replay: residency replay case.jsonl --profile case.profile.json --policy case.policy.json\n";
  return s.str();
}

RC_GTEST_PROP(Properties, SimulatorRunsKeepEveryInvariantAndNeverOom, ()) {
  const Case c = *GenCase();
  const auto seed = *rc::gen::inRange<std::uint64_t>(1, 1'000'000);
  const CaseResult r = CheckInSimulator(c, seed);
  if (!r.problems.empty()) RC_FAIL(Dump(c, r.problems));
}

RC_GTEST_PROP(Properties, EngineKeepsEveryInvariantWhateverTheCompletionOrder, ()) {
  const Case c = *GenCase();
  const auto seed = *rc::gen::inRange<std::uint64_t>(1, 1'000'000);
  const CaseResult r = CheckEngineAlone(c, seed);
  if (!r.problems.empty()) RC_FAIL(Dump(c, r.problems));
}

// Determinism: a sample of cases, each run twice with the same seed, must
// give the same event log; on a mismatch, the first divergent event.
RC_GTEST_PROP(Properties, SameSeedSameEventLog, ()) {
  const Case c = *GenCase();
  const auto seed = *rc::gen::inRange<std::uint64_t>(1, 1'000'000);
  const CaseResult a = CheckInSimulator(c, seed, true);
  const CaseResult b = CheckInSimulator(c, seed, true);
  if (a.event_log_hash == b.event_log_hash && a.event_log == b.event_log) return;
  std::string where = "logs differ in length";
  for (std::size_t i = 0; i < std::min(a.event_log.size(), b.event_log.size()); ++i)
    if (a.event_log[i] != b.event_log[i]) {
      where = "first divergent event #" + std::to_string(i) + ":\n  run 1: " + a.event_log[i] +
              "\n  run 2: " + b.event_log[i];
      break;
    }
  RC_FAIL("seed " + std::to_string(seed) + ": " + where + "\n" + Dump(c, {}));
}

}  // namespace
}  // namespace residency::proof
