#include "harness/sweep/sweep_spec.h"
#include "runtime/io/whole_file.h"

#include <algorithm>
#include <filesystem>
#include <tuple>

#include "harness/store/results_store.h"
#include "traces/bundled.h"
#include "traces/captured_policy.h"
#include "traces/captured_profile.h"
#include "traces/json_fields.h"
#include "traces/policy_file.h"
#include "traces/trace.h"

namespace residency::sweep {
namespace fs = std::filesystem;

namespace {

Result<std::vector<std::string>> ExpandTracePaths(const std::vector<std::string>& args) {
  std::vector<std::string> out;
  for (const std::string& arg : args) {
    std::error_code ec;
    if (fs::is_directory(arg, ec)) {
      std::vector<std::string> found;
      for (const auto& e : fs::directory_iterator(arg, ec)) {
        if (e.path().extension() == ".jsonl") found.push_back(e.path().string());
      }
      if (ec) return NotFound(arg + ": cannot list: " + ec.message());
      if (found.empty()) return NotFound(arg + ": no *.jsonl traces in this folder");
      std::sort(found.begin(), found.end());
      out.insert(out.end(), found.begin(), found.end());
    } else if (fs::is_regular_file(arg, ec)) {
      out.push_back(arg);
    } else {
      return NotFound(arg + ": no such trace file or folder");
    }
  }
  return out;
}

template <typename T>
Status NoDuplicateNames(const std::vector<T>& inputs, const std::string& kind) {
  for (std::size_t i = 0; i < inputs.size(); ++i)
    for (std::size_t j = i + 1; j < inputs.size(); ++j)
      if (!inputs[i].for_trace && !inputs[j].for_trace && inputs[i].name == inputs[j].name &&
          inputs[i].body != inputs[j].body)
        return InvalidArgument("two different " + kind + " are both named '" + inputs[i].name + "' (" +
                               inputs[i].origin + ", " + inputs[j].origin + "); rename one");
  return Status::Ok();
}

}  // namespace

Result<TraceInput> TraceFromText(const std::string& name, const std::string& origin, const std::string& body,
                                 traces::Trace* parsed) {
  RESIDENCY_ASSIGN_OR_RETURN(traces::Trace trace, traces::ParseTrace(body, origin));
  RESIDENCY_ASSIGN_OR_RETURN(engine::Workload workload, traces::ToWorkload(trace, origin));
  TraceInput in;
  in.name = name.empty() ? trace.header.name : name;
  in.origin = origin;
  in.provenance = trace.header.source;
  in.body = body;
  in.workload = std::move(workload);
  if (trace.header.machine) {
    in.captured = true;
    in.captured_host = trace.header.machine->host;
  }
  if (parsed) *parsed = std::move(trace);
  return in;
}

namespace {

// A bundled name or JSON file, read and parsed by `parse`; the input is named
// by the parsed object's name, else by the file's stem.
template <typename Input, typename Parse>
Result<Input> LoadNamedInput(const std::string& arg, const std::string& kind, Parse parse) {
  RESIDENCY_ASSIGN_OR_RETURN(std::string path, traces::ResolveBundledPath(arg, kind));
  RESIDENCY_ASSIGN_OR_RETURN(std::string body, io::ReadWholeFile(path));
  auto parsed = parse(body, path);
  if (!parsed.ok()) return parsed.status();
  Input in;
  in.name = parsed->name.empty() ? fs::path(path).stem().string() : parsed->name;
  in.origin = path;
  in.body = std::move(body);
  in.value() = std::move(parsed).value();
  return in;
}

}  // namespace

Result<ProfileInput> LoadProfileInput(const std::string& arg) {
  return LoadNamedInput<ProfileInput>(arg, "profiles", traces::ParseProfile);
}

Result<PolicyInput> LoadPolicyInput(const std::string& arg) {
  return LoadNamedInput<PolicyInput>(arg, "policies", traces::ParsePolicy);
}

Result<SweepSpec> LoadSweepSpec(const std::vector<std::string>& trace_args,
                                const std::vector<std::string>& profile_args,
                                const std::vector<std::string>& policy_args,
                                const std::vector<std::uint64_t>& seeds,
                                const std::vector<TraceText>& texts) {
  if ((trace_args.empty() && texts.empty()) || profile_args.empty() || policy_args.empty())
    return InvalidArgument("a sweep needs at least one trace, one profile and one policy");
  if (seeds.empty()) return InvalidArgument("a sweep needs at least one seed");
  SweepSpec spec;
  spec.seeds = seeds;
  std::vector<traces::Trace> parsed;  // each trace as read, for captured profiles and policies
  std::vector<std::string> trace_paths;
  if (!trace_args.empty()) {
    RESIDENCY_ASSIGN_OR_RETURN(trace_paths, ExpandTracePaths(trace_args));
  }
  for (const std::string& path : trace_paths) {
    RESIDENCY_ASSIGN_OR_RETURN(std::string body, io::ReadWholeFile(path));
    traces::Trace trace;
    RESIDENCY_ASSIGN_OR_RETURN(TraceInput in, TraceFromText(fs::path(path).stem().string(), path, body, &trace));
    spec.traces.push_back(std::move(in));
    parsed.push_back(std::move(trace));
  }
  for (const TraceText& t : texts) {
    traces::Trace trace;
    RESIDENCY_ASSIGN_OR_RETURN(TraceInput in, TraceFromText(t.name, t.origin, t.body, &trace));
    spec.traces.push_back(std::move(in));
    parsed.push_back(std::move(trace));
  }
  for (const std::string& arg : profile_args) {
    if (arg == "captured" || arg.rfind("captured:", 0) == 0) {
      for (std::size_t t = 0; t < parsed.size(); ++t) {
        if (!parsed[t].header.machine) continue;
        RESIDENCY_ASSIGN_OR_RETURN(traces::Profile p,
                                   traces::LoadProfileForTrace(arg, parsed[t], spec.traces[t].origin));
        p.name = arg;
        ProfileInput in;
        in.name = arg;
        in.origin = spec.traces[t].origin + " (machine record)";
        in.body = traces::WriteProfile(p);
        in.profile = std::move(p);
        in.for_trace = t;
        spec.profiles.push_back(std::move(in));
      }
      continue;
    }
    RESIDENCY_ASSIGN_OR_RETURN(ProfileInput in, LoadProfileInput(arg));
    spec.profiles.push_back(std::move(in));
  }
  for (const std::string& arg : policy_args) {
    if (traces::IsCapturedPolicyName(arg)) {
      for (std::size_t t = 0; t < parsed.size(); ++t) {
        if (!parsed[t].header.machine) continue;
        RESIDENCY_ASSIGN_OR_RETURN(traces::DerivedPolicy d,
                                   traces::LoadPolicyForTrace(arg, parsed[t], spec.traces[t].origin));
        d.policy.name = arg;
        PolicyInput in;
        in.name = arg;
        in.origin = spec.traces[t].origin + " (machine record)";
        in.body = traces::WritePolicy(d.policy);
        in.policy = std::move(d.policy);
        in.for_trace = t;
        spec.policies.push_back(std::move(in));
      }
      continue;
    }
    RESIDENCY_ASSIGN_OR_RETURN(PolicyInput in, LoadPolicyInput(arg));
    spec.policies.push_back(std::move(in));
  }
  if (spec.profiles.empty() || spec.policies.empty())
    return InvalidArgument("no trace has a machine record, so 'captured' profiles and policies give nothing to run");
  RESIDENCY_RETURN_IF_ERROR(NoDuplicateNames(spec.traces, "traces"));
  RESIDENCY_RETURN_IF_ERROR(NoDuplicateNames(spec.profiles, "profiles"));
  RESIDENCY_RETURN_IF_ERROR(NoDuplicateNames(spec.policies, "policies"));
  return spec;
}

Result<Shard> ParseShard(const std::string& text) {
  const auto slash = text.find('/');
  const auto bad = [&] { return InvalidArgument("--shard '" + text + "': expected i/N with 0 <= i < N"); };
  if (slash == std::string::npos) return bad();
  try {
    std::size_t used_i = 0, used_n = 0;
    const std::string si = text.substr(0, slash), sn = text.substr(slash + 1);
    Shard s{std::stoi(si, &used_i), std::stoi(sn, &used_n)};
    if (used_i != si.size() || used_n != sn.size() || s.count < 1 || s.index < 0 || s.index >= s.count) return bad();
    return s;
  } catch (const std::exception&) {
    return bad();
  }
}

std::vector<PlannedRun> PlanRuns(const SweepSpec& spec, const Shard& shard) {
  // Canonical order of each input list: by name, then content hash.
  const auto order = [](const auto& inputs) {
    std::vector<std::size_t> idx(inputs.size());
    for (std::size_t i = 0; i < idx.size(); ++i) idx[i] = i;
    std::vector<std::string> hashes;
    for (const auto& in : inputs) hashes.push_back(store::ContentHash(in.body));
    std::sort(idx.begin(), idx.end(), [&](std::size_t a, std::size_t b) {
      return std::tie(inputs[a].name, hashes[a]) < std::tie(inputs[b].name, hashes[b]);
    });
    return idx;
  };
  std::vector<std::uint64_t> seeds = spec.seeds;
  std::sort(seeds.begin(), seeds.end());
  seeds.erase(std::unique(seeds.begin(), seeds.end()), seeds.end());
  std::vector<PlannedRun> out;
  std::size_t position = 0;
  // A captured profile or policy runs with its own trace only.
  const auto fits = [](const Input& in, std::size_t t) { return !in.for_trace || *in.for_trace == t; };
  for (std::size_t t : order(spec.traces))
    for (std::size_t p : order(spec.profiles))
      for (std::size_t q : order(spec.policies))
        for (std::uint64_t seed : seeds) {
          if (!fits(spec.profiles[p], t) || !fits(spec.policies[q], t)) continue;
          if (static_cast<int>(position++ % static_cast<std::size_t>(shard.count)) == shard.index)
            out.push_back(PlannedRun{t, p, q, seed});
        }
  return out;
}

}  // namespace residency::sweep
