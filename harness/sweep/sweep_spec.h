// What a sweep runs: traces x profiles x policies x seeds, read and
// validated before the first run, and split deterministically into shards.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "runtime/engine/policy.h"
#include "runtime/base/status.h"
#include "runtime/engine/ops.h"
#include "traces/profile.h"
#include "traces/trace.h"

namespace residency::sweep {

// One input as stored: its name, the bytes it was read from, where from.
struct Input {
  std::string name;
  std::string origin;  // file path or "agent:<hash>"
  std::string provenance;
  std::string body;
  // A profile or policy derived from one trace's machine record ("captured"):
  // it runs with that trace only.
  std::optional<std::size_t> for_trace;
};

struct TraceInput : Input {
  engine::Workload workload;
  bool captured = false;     // it carries a machine record (a capture hook wrote it)
  std::string captured_host;  // that record's host, "" when not given
};
struct ProfileInput : Input {
  traces::Profile profile;
  traces::Profile& value() { return profile; }
};
struct PolicyInput : Input {
  engine::Policy policy;
  engine::Policy& value() { return policy; }
};

struct SweepSpec {
  std::vector<TraceInput> traces;
  std::vector<ProfileInput> profiles;
  std::vector<PolicyInput> policies;
  std::vector<std::uint64_t> seeds = {1};
};

// A trace given as text (fetched from an agent) rather than as a file.
struct TraceText {
  std::string name, origin, body;
};

// Trace arguments are files or folders (every *.jsonl inside, sorted), plus
// `texts`; profiles and policies are bundled names or JSON files, or
// "captured" / "captured:BASE" (profiles) and "captured" / "captured:PRESET"
// (policies): each captured trace's own machine and server settings, which
// run with that trace only (a trace without a machine record gets no runs
// there). Every input is parsed here, so a bad one stops the sweep before it
// starts, naming it.
Result<SweepSpec> LoadSweepSpec(const std::vector<std::string>& traces,
                                const std::vector<std::string>& profiles,
                                const std::vector<std::string>& policies,
                                const std::vector<std::uint64_t>& seeds,
                                const std::vector<TraceText>& texts = {});
Result<ProfileInput> LoadProfileInput(const std::string& name_or_path);
Result<PolicyInput> LoadPolicyInput(const std::string& name_or_path);
// `parsed`, when given, receives the trace as read (the agent's metrics read its events).
Result<TraceInput> TraceFromText(const std::string& name, const std::string& origin, const std::string& body,
                                 traces::Trace* parsed = nullptr);

struct Shard {
  int index = 0;
  int count = 1;
};
// "i/N" with 0 <= i < N.
Result<Shard> ParseShard(const std::string& text);

struct PlannedRun {
  std::size_t trace = 0, profile = 0, policy = 0;
  std::uint64_t seed = 1;
};
// The cross product in a canonical order (by names and content, not by
// argument order), keeping every run whose position modulo N is the shard's
// index: the same inputs give the same partition on every machine.
std::vector<PlannedRun> PlanRuns(const SweepSpec& spec, const Shard& shard);

}  // namespace residency::sweep
