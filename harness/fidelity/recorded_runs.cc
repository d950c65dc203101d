#include "harness/fidelity/recorded_runs.h"

#include <cmath>
#include <limits>

#include <nlohmann/json.hpp>

#include "traces/json_fields.h"

namespace residency::harness {
namespace {

constexpr const char* kFormat = "residency-fidelity-real-runs";
constexpr int kVersion = 1;
constexpr int kMaxRuns = 100;  // fidelity's --repeat limit
constexpr int kMaxPrompt = 1'000'000;

Result<engine::CommandKind> CommandKindNamed(const std::string& name, const std::string& where) {
  for (int k = 0; k <= static_cast<int>(engine::CommandKind::kAdoptHost); ++k) {
    const auto kind = static_cast<engine::CommandKind>(k);
    if (engine::ToString(kind) == name) return kind;
  }
  return InvalidArgument(where + ": unknown command kind '" + name + "'");
}

Result<std::int64_t> NonNegative(const nlohmann::json& v, const std::string& where) {
  if (v.is_number_unsigned()) {
    if (v.get<std::uint64_t>() > static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max()))
      return InvalidArgument(where + " is too large");
    return static_cast<std::int64_t>(v.get<std::uint64_t>());
  }
  if (v.is_number_integer() && v.get<std::int64_t>() >= 0) return v.get<std::int64_t>();
  return InvalidArgument(where + " must be a non-negative integer");
}

// A required non-negative integer field.
Result<std::int64_t> RequiredNonNegative(const traces::JsonFields& f, const char* key) {
  if (!f.Has(key)) return InvalidArgument(f.Where(key) + " is missing");
  return NonNegative(f.at(key), f.Where(key));
}

Result<int> PromptNumber(const std::string& key, const std::string& where) {
  int n = 0;
  if (key.empty() || key.size() > 7) return InvalidArgument(where + ": prompt '" + key + "' is not a prompt number");
  for (char c : key) {
    if (c < '0' || c > '9') return InvalidArgument(where + ": prompt '" + key + "' is not a prompt number");
    n = n * 10 + (c - '0');
  }
  if (n > kMaxPrompt) return InvalidArgument(where + ": prompt " + key + " is out of range");
  return n;
}

Status ParseCommands(const nlohmann::json& a, const std::string& where, engine::CommandTimesByPrompt& out) {
  if (!a.is_array()) return InvalidArgument(where + " must be an array");
  for (std::size_t i = 0; i < a.size(); ++i) {
    const std::string at = where + "[" + std::to_string(i) + "]";
    if (!a[i].is_object()) return InvalidArgument(at + " must be an object");
    traces::JsonFields f(a[i], at);
    RESIDENCY_RETURN_IF_ERROR(f.Allow({"prompt", "command", "count", "bytes", "busy_ns"}));
    int prompt = -1;
    std::string name;
    RESIDENCY_RETURN_IF_ERROR(f.Int("prompt", prompt, 0, kMaxPrompt));
    if (prompt < 0) return InvalidArgument(f.Where("prompt") + " is missing");
    RESIDENCY_RETURN_IF_ERROR(f.String("command", name, true));
    RESIDENCY_ASSIGN_OR_RETURN(engine::CommandKind kind, CommandKindNamed(name, f.Where("command")));
    engine::CommandTime t;
    RESIDENCY_ASSIGN_OR_RETURN(t.count, RequiredNonNegative(f, "count"));
    RESIDENCY_ASSIGN_OR_RETURN(t.bytes, RequiredNonNegative(f, "bytes"));
    RESIDENCY_ASSIGN_OR_RETURN(t.busy_ns, RequiredNonNegative(f, "busy_ns"));
    if (out[prompt].count(kind))
      return InvalidArgument(at + ": prompt " + std::to_string(prompt) + " lists '" + name + "' twice");
    out[prompt][kind] = t;
  }
  return Status::Ok();
}

Result<RecordedRun> ParseRun(const nlohmann::json& j, const std::string& where) {
  if (!j.is_object()) return InvalidArgument(where + " must be an object");
  traces::JsonFields f(j, where);
  RESIDENCY_RETURN_IF_ERROR(f.Allow({"wall_ns", "prompts", "commands"}));
  RecordedRun run;
  RESIDENCY_ASSIGN_OR_RETURN(run.wall_ns, RequiredNonNegative(f, "wall_ns"));
  for (const char* key : {"prompts", "commands"})
    if (!f.Has(key)) return InvalidArgument(f.Where(key) + " is missing");
  const nlohmann::json& prompts = f.at("prompts");
  if (!prompts.is_object() || prompts.empty())
    return InvalidArgument(f.Where("prompts") + " must be a non-empty object of prompt -> wall ns");
  for (const auto& [key, value] : prompts.items()) {
    RESIDENCY_ASSIGN_OR_RETURN(int prompt, PromptNumber(key, f.Where("prompts")));
    RESIDENCY_ASSIGN_OR_RETURN(run.prompt_walls[prompt], NonNegative(value, f.Where("prompts") + "['" + key + "']"));
  }
  RESIDENCY_RETURN_IF_ERROR(ParseCommands(f.at("commands"), where + ".commands", run.command_times));
  return run;
}

}  // namespace

std::string WriteRecordedRuns(const RecordedRuns& r) {
  nlohmann::ordered_json j;
  j["format"] = kFormat;
  j["version"] = kVersion;
  j["trace"] = r.trace;
  j["policy"] = r.policy;
  j["scale"] = r.scale;
  j["device_capacity"] = r.device_bytes;
  j["warmup_runs"] = r.warmup;
  j["runs"] = nlohmann::ordered_json::array();
  for (const RecordedRun& run : r.runs) {
    nlohmann::ordered_json prompts = nlohmann::ordered_json::object();
    for (const auto& [prompt, wall] : run.prompt_walls) prompts[std::to_string(prompt)] = wall;
    nlohmann::ordered_json commands = nlohmann::ordered_json::array();
    for (const auto& [prompt, times] : run.command_times)
      for (const auto& [kind, t] : times)
        commands.push_back({{"prompt", prompt}, {"command", std::string(engine::ToString(kind))},
                            {"count", t.count}, {"bytes", t.bytes}, {"busy_ns", t.busy_ns}});
    j["runs"].push_back({{"wall_ns", run.wall_ns}, {"prompts", prompts}, {"commands", commands}});
  }
  return j.dump(1) + "\n";
}

Result<RecordedRuns> ParseRecordedRuns(const std::string& text, const std::string& origin) {
  RESIDENCY_ASSIGN_OR_RETURN(nlohmann::json j, traces::ParseJsonObject(text, origin));
  traces::JsonFields f(j, origin);
  RESIDENCY_RETURN_IF_ERROR(f.Allow({"format", "version", "trace", "policy", "scale", "device_capacity", "warmup_runs", "runs"}));
  std::string format;
  RESIDENCY_RETURN_IF_ERROR(f.String("format", format, true));
  if (format != kFormat)
    return InvalidArgument(f.Where("format") + " is '" + format + "', not '" + kFormat +
                           "' (a file written by `residency fidelity --save-real-runs`)");
  int version = 0;
  if (!f.Has("version")) return InvalidArgument(f.Where("version") + " is missing");
  RESIDENCY_RETURN_IF_ERROR(f.Int("version", version, 1, 1000));
  if (version != kVersion)
    return InvalidArgument(f.Where("version") + " is " + std::to_string(version) + "; this build reads " +
                           std::to_string(kVersion));
  RecordedRuns r;
  r.origin = origin;
  RESIDENCY_RETURN_IF_ERROR(f.String("trace", r.trace, true));
  RESIDENCY_RETURN_IF_ERROR(f.String("policy", r.policy, true));
  for (const char* key : {"scale", "runs"})
    if (!f.Has(key)) return InvalidArgument(f.Where(key) + " is missing");
  const nlohmann::json& scale = f.at("scale");
  if (!scale.is_number() || !std::isfinite(scale.get<double>()) || !(scale.get<double>() > 0 && scale.get<double>() <= 1))
    return InvalidArgument(f.Where("scale") + " must be a number in (0, 1]");
  r.scale = scale.get<double>();
  RESIDENCY_ASSIGN_OR_RETURN(std::int64_t device, RequiredNonNegative(f, "device_capacity"));
  r.device_bytes = static_cast<std::uint64_t>(device);
  RESIDENCY_RETURN_IF_ERROR(f.Int("warmup_runs", r.warmup, 0, kMaxRuns));
  const nlohmann::json& runs = f.at("runs");
  if (!runs.is_array() || runs.empty() || runs.size() > kMaxRuns)
    return InvalidArgument(f.Where("runs") + " must be an array of 1 to " + std::to_string(kMaxRuns) + " runs");
  for (std::size_t i = 0; i < runs.size(); ++i) {
    RESIDENCY_ASSIGN_OR_RETURN(RecordedRun run, ParseRun(runs[i], origin + ": runs[" + std::to_string(i) + "]"));
    r.runs.push_back(std::move(run));
  }
  return r;
}

}  // namespace residency::harness
