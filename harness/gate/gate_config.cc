#include "harness/gate/gate_config.h"

#include <set>

#include "harness/report/compare.h"
#include "harness/store/results_store.h"
#include "runtime/base/input_text.h"
#include "runtime/io/whole_file.h"
#include "traces/bundled.h"
#include "traces/captured_profile.h"
#include "traces/json_fields.h"

namespace residency::gate {
namespace {

using nlohmann::json;

// Names end up in metric labels, verdicts and URLs: kept plain.
bool IsPlainName(const std::string& s) {
  if (s.empty() || s.size() > 64 || s[0] == '.' || s[0] == '-') return false;
  return s.find_first_not_of("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._:-") == std::string::npos;
}

bool IsCapturedProfileName(const std::string& s) { return s == "captured" || s.rfind("captured:", 0) == 0; }

Result<PolicyChoice> ParseChoice(const json& v, const std::string& where) {
  PolicyChoice c;
  if (v.is_string()) {
    c.policy = v.get<std::string>();
  } else if (v.is_object()) {
    traces::JsonFields f(v, where);
    RESIDENCY_RETURN_IF_ERROR(f.Allow({"name", "policy", "flags"}));
    RESIDENCY_RETURN_IF_ERROR(f.String("name", c.name, true));
    RESIDENCY_RETURN_IF_ERROR(f.String("policy", c.policy, false));
    if (c.policy.empty()) c.policy = "captured";
    if (f.Has("flags")) {
      const json& flags = v["flags"];
      if (!flags.is_array() || flags.size() > 32) return InvalidArgument(where + ": 'flags' must be an array of at most 32 strings");
      for (const json& t : flags) {
        if (!t.is_string() || t.get<std::string>().empty() || t.get<std::string>().size() > 64)
          return InvalidArgument(where + ": 'flags' must hold strings of 1-64 characters");
        c.flags.push_back(t.get<std::string>());
      }
      if (!c.flags.empty() && !traces::IsCapturedPolicyName(c.policy))
        return InvalidArgument(where + ": 'flags' change a captured server's settings; 'policy' must be captured "
                               "(or captured:PRESET), not '" + Printable(c.policy, 64) + "'");
    }
  } else {
    return InvalidArgument(where + ": a policy is a name (\"ram-lru\", \"captured\") or an object "
                           "{\"name\", \"flags\", \"policy\"}");
  }
  if (c.policy.empty()) return InvalidArgument(where + ": empty policy name");
  if (!traces::IsCapturedPolicyName(c.policy)) {
    auto p = traces::LoadPolicy(c.policy);
    if (!p.ok()) return InvalidArgument(where + ": " + p.status().message());
    if (c.name.empty()) c.name = p->name;
  } else if (c.policy != "captured") {
    // captured:PRESET: the preset must exist.
    auto p = traces::LoadPolicy(c.policy.substr(9));
    if (!p.ok()) return InvalidArgument(where + ": " + p.status().message());
  }
  if (c.name.empty()) c.name = c.policy;
  if (!IsPlainName(c.name))
    return InvalidArgument(where + ": name '" + Printable(c.name, 64) + "' must be 1-64 of [A-Za-z0-9._:-]");
  return c;
}

}  // namespace

Result<GateConfig> ParseGateConfig(const std::string& text, const std::string& origin) {
  RESIDENCY_ASSIGN_OR_RETURN(json j, traces::ParseJsonObject(text, origin));
  traces::JsonFields f(j, origin);
  RESIDENCY_RETURN_IF_ERROR(f.Allow({"profiles", "baseline", "candidates", "metric", "threshold", "description"}));
  GateConfig g;
  g.origin = origin;
  g.hash = store::ContentHash(text);
  if (!j.contains("profiles") || !j["profiles"].is_array() || j["profiles"].empty() ||
      j["profiles"].size() > kMaxGateProfiles)
    return InvalidArgument(f.Where("profiles") + " must be an array of 1-" + std::to_string(kMaxGateProfiles) +
                           " profile names");
  std::set<std::string> seen;
  for (const json& p : j["profiles"]) {
    if (!p.is_string()) return InvalidArgument(f.Where("profiles") + " must hold strings");
    const std::string name = p.get<std::string>();
    if (!seen.insert(name).second) return InvalidArgument(f.Where("profiles") + ": '" + Printable(name, 64) + "' twice");
    if (IsCapturedProfileName(name)) {
      if (name != "captured") {
        auto base = traces::LoadProfile(name.substr(9));
        if (!base.ok()) return InvalidArgument(f.Where("profiles") + ": " + base.status().message());
      }
    } else {
      auto loaded = traces::LoadProfile(name);
      if (!loaded.ok()) return InvalidArgument(f.Where("profiles") + ": " + loaded.status().message());
    }
    g.profiles.push_back(name);
  }
  if (!j.contains("baseline")) return InvalidArgument(f.Where("baseline") + " is required (e.g. \"captured\")");
  RESIDENCY_ASSIGN_OR_RETURN(g.baseline, ParseChoice(j["baseline"], f.Where("baseline")));
  if (!j.contains("candidates") || !j["candidates"].is_array() || j["candidates"].empty() ||
      j["candidates"].size() > kMaxGateCandidates)
    return InvalidArgument(f.Where("candidates") + " must be an array of 1-" + std::to_string(kMaxGateCandidates) +
                           " policies");
  std::set<std::string> names = {g.baseline.name};
  for (std::size_t i = 0; i < j["candidates"].size(); ++i) {
    RESIDENCY_ASSIGN_OR_RETURN(PolicyChoice c,
                               ParseChoice(j["candidates"][i], f.Where("candidates") + "[" + std::to_string(i) + "]"));
    if (!names.insert(c.name).second)
      return InvalidArgument(f.Where("candidates") + ": two policies are named '" + c.name +
                             "' (the baseline counts); give each a distinct \"name\"");
    g.candidates.push_back(std::move(c));
  }
  if (f.Has("metric")) RESIDENCY_RETURN_IF_ERROR(f.String("metric", g.metric, true));
  auto column = harness::MetricColumn(g.metric);
  if (!column.ok()) return InvalidArgument(f.Where("metric") + ": " + column.status().message());
  g.column = *column;
  if (f.Has("threshold")) {
    if (!j["threshold"].is_number() || j["threshold"].get<double>() < 0 || j["threshold"].get<double>() > 1000)
      return InvalidArgument(f.Where("threshold") + " must be a percentage in [0, 1000]");
    g.threshold_pct = j["threshold"].get<double>();
  }
  std::string description;
  RESIDENCY_RETURN_IF_ERROR(f.String("description", description, false));
  return g;
}

Result<GateConfig> ReadGateConfig(const std::string& path) {
  RESIDENCY_ASSIGN_OR_RETURN(std::string text, io::ReadWholeFile(path));
  return ParseGateConfig(text, path);
}

Result<traces::DerivedPolicy> ResolvePolicy(const PolicyChoice& choice, const traces::Trace& trace,
                                            const std::string& origin) {
  traces::DerivedPolicy d;
  if (!choice.PerTrace()) {
    RESIDENCY_ASSIGN_OR_RETURN(d, traces::LoadPolicyForTrace(choice.policy, trace, origin));
  } else {
    if (!trace.header.machine)
      return InvalidArgument(origin + ": policy '" + choice.name +
                             "' derives from the server's settings, and this trace has no machine record");
    const std::string preset = choice.policy.rfind("captured:", 0) == 0 ? choice.policy.substr(9) : "";
    RESIDENCY_ASSIGN_OR_RETURN(d, traces::PolicyFromMachine(*trace.header.machine, preset, choice.flags));
  }
  d.policy.name = choice.name;
  return d;
}

}  // namespace residency::gate
