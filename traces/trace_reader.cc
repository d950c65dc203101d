// Trace reader: strict, line by line; every error names ORIGIN:LINE.
#include <fstream>
#include <set>
#include <sstream>

#include <nlohmann/json.hpp>

#include "traces/trace.h"
#include "traces/units.h"
#include "traces/json_fields.h"
#include "runtime/base/input_text.h"
#include "runtime/io/whole_file.h"

namespace residency::traces {
namespace {

using nlohmann::json;

std::string_view kTypeNames[] = {"model",  "load",  "compute",      "release",   "delete",
                                 "patch",  "prompt_begin", "prompt_end", "unload", "node"};

// Why a captured server freed device bytes (FORMAT.md, `unload`).
const std::set<std::string> kUnloadReasons = {"free_memory",   "unload_all_models", "cleanup_models",
                                              "model_unload",  "partially_unload",  "finalizer",
                                              "on_demand",     "other"};

class LineParser {
 public:
  LineParser(const json& j, std::string where) : j_(j), where_(std::move(where)) {}

  Status Allow(std::initializer_list<const char*> keys) const {
    std::set<std::string> allowed(keys.begin(), keys.end());
    for (auto it = j_.begin(); it != j_.end(); ++it)
      if (!allowed.count(it.key()))
        return InvalidArgument(where_ + ": unknown field '" + Printable(it.key()) + "'");
    return Status::Ok();
  }
  bool Has(const char* key) const { return j_.contains(key); }
  Result<std::string> String(const char* key) const {
    if (!j_.contains(key)) return InvalidArgument(where_ + ": missing field '" + key + "'");
    if (!j_[key].is_string() || j_[key].get<std::string>().empty())
      return InvalidArgument(where_ + ": field '" + key + "' must be a non-empty string");
    return j_[key].get<std::string>();
  }
  Result<std::int64_t> Int(const char* key, std::int64_t lo, std::int64_t hi) const {
    if (!j_.contains(key)) return InvalidArgument(where_ + ": missing field '" + key + "'");
    const json& v = j_[key];
    if (!v.is_number_integer())
      return InvalidArgument(where_ + ": field '" + key + "' must be an integer");
    const auto n = v.get<std::int64_t>();
    if (n < lo || n > hi)
      return InvalidArgument(where_ + ": field '" + key + "' must be in [" + std::to_string(lo) +
                             ", " + std::to_string(hi) + "], got " + std::to_string(n));
    return n;
  }
  Result<Bytes> Size(const char* key) const {
    if (!j_.contains(key)) return InvalidArgument(where_ + ": missing field '" + key + "'");
    return ParseBytes(j_[key], where_ + ": field '" + key + "'");
  }
  Result<Nanos> Duration(const char* key) const {
    if (!j_.contains(key)) return InvalidArgument(where_ + ": missing field '" + key + "'");
    return ParseDuration(j_[key], where_ + ": field '" + key + "'");
  }
  const json& at(const char* key) const { return j_[key]; }
  const std::string& where() const { return where_; }

 private:
  const json& j_;
  std::string where_;
};

#define ASSIGN_OR_RETURN RESIDENCY_ASSIGN_OR_RETURN

Status LimitError(const std::string& where, const char* name, std::int64_t limit, std::int64_t got) {
  return InvalidArgument(where + ": limit '" + name + "' (" + std::to_string(limit) + ") exceeded: " +
                         std::to_string(got) + " (docs/LIMITS.md)");
}

Status ParseFile(const json& jf, const std::string& where, TraceFile& f) {
  if (!jf.is_object()) return InvalidArgument(where + ": each file must be an object");
  LineParser p(jf, where);
  RESIDENCY_RETURN_IF_ERROR(p.Allow({"path", "bytes", "tensors", "tensor_count",
                                     "tensor_distribution", "tensor_seed"}));
  ASSIGN_OR_RETURN(f.path, p.String("path"));
  ASSIGN_OR_RETURN(f.bytes, p.Size("bytes"));
  if (f.bytes <= 0) return InvalidArgument(where + ": file '" + f.path + "' must have bytes > 0");
  if (p.Has("tensors") && p.Has("tensor_count"))
    return InvalidArgument(where + ": give either 'tensors' or 'tensor_count', not both");
  if (p.Has("tensors")) {
    const json& t = p.at("tensors");
    if (!t.is_array() || t.empty())
      return InvalidArgument(where + ": field 'tensors' must be a non-empty array of sizes");
    if (static_cast<std::int64_t>(t.size()) > kMaxTensorsPerFile)
      return LimitError(where, "tensors_per_file", kMaxTensorsPerFile, static_cast<std::int64_t>(t.size()));
    Bytes sum = 0;
    f.tensors.reserve(t.size());
    for (std::size_t i = 0; i < t.size(); ++i) {
      // Plain integers (the common case, up to millions per file) skip
      // building an error context; anything else gets the full parser.
      Bytes size = 0;
      if (t[i].is_number_unsigned() && t[i].get<std::uint64_t>() <= static_cast<std::uint64_t>(INT64_MAX / 2)) {
        size = static_cast<Bytes>(t[i].get<std::uint64_t>());
      } else {
        ASSIGN_OR_RETURN(size, ParseBytes(t[i], where + ": tensors[" + std::to_string(i) + "]"));
      }
      if (size <= 0) return InvalidArgument(where + ": tensors[" + std::to_string(i) + "] must be > 0");
      if (sum > f.bytes) break;
      sum += size;
      f.tensors.push_back(size);
    }
    if (sum != f.bytes)
      return InvalidArgument(where + ": tensors of '" + f.path + "' sum to " + std::to_string(sum) +
                             " bytes, but 'bytes' is " + std::to_string(f.bytes));
  } else if (p.Has("tensor_count")) {
    TensorDistribution d;
    ASSIGN_OR_RETURN(d.count, p.Int("tensor_count", 1, kMaxTensorsPerFile));
    if (p.Has("tensor_distribution")) { ASSIGN_OR_RETURN(d.kind, p.String("tensor_distribution")); }
    if (p.Has("tensor_seed")) {
      ASSIGN_OR_RETURN(std::int64_t seed, p.Int("tensor_seed", 0, INT64_MAX));
      d.seed = static_cast<std::uint64_t>(seed);
    }
    auto expanded = ExpandTensorSizes(f.bytes, d);
    if (!expanded.ok()) return InvalidArgument(where + ": " + expanded.status().message());
    f.distribution = d;
  } else if (p.Has("tensor_distribution") || p.Has("tensor_seed")) {
    return InvalidArgument(where + ": 'tensor_distribution' needs 'tensor_count'");
  }
  return Status::Ok();
}

// The header's machine record: sizes with units, a flag list of strings.
Result<MachineRecord> ParseMachine(const json& j, const std::string& where) {
  if (!j.is_object()) return InvalidArgument(where + ": must be an object");
  LineParser p(j, where);
  RESIDENCY_RETURN_IF_ERROR(
      p.Allow({"device", "vram", "ram", "unified", "cpu_cores", "torch", "server", "flags", "host"}));
  MachineRecord m;
  for (auto [key, out] : {std::pair{"device", &m.device}, {"torch", &m.torch}, {"server", &m.server},
                          {"host", &m.host}}) {
    if (!p.Has(key)) continue;
    if (!p.at(key).is_string()) return InvalidArgument(where + ": field '" + key + "' must be a string");
    *out = p.at(key).get<std::string>();
  }
  if (p.Has("unified")) {
    if (!p.at("unified").is_boolean()) return InvalidArgument(where + ": field 'unified' must be true or false");
    m.unified = p.at("unified").get<bool>();
  }
  ASSIGN_OR_RETURN(m.ram, p.Size("ram"));
  if (m.ram <= 0) return InvalidArgument(where + ": field 'ram' must be > 0");
  if (m.unified && p.Has("vram"))
    return InvalidArgument(where + ": a unified machine has no separate 'vram'; leave it out");
  if (!m.unified) {
    ASSIGN_OR_RETURN(m.vram, p.Size("vram"));
    if (m.vram <= 0) return InvalidArgument(where + ": field 'vram' must be > 0 (or set 'unified': true)");
  }
  if (p.Has("cpu_cores")) {
    ASSIGN_OR_RETURN(std::int64_t cores, p.Int("cpu_cores", 1, 65536));
    m.cpu_cores = static_cast<int>(cores);
  }
  if (p.Has("flags")) {
    const json& flags = p.at("flags");
    if (!flags.is_array() || flags.size() > 256)
      return InvalidArgument(where + ": field 'flags' must be an array of at most 256 strings");
    for (const json& f : flags) {
      if (!f.is_string()) return InvalidArgument(where + ": field 'flags' must hold strings");
      m.flags.push_back(f.get<std::string>());
    }
  }
  return m;
}

Result<TraceEvent> ParseEvent(const json& j, const std::string& where) {
  LineParser p(j, where);
  TraceEvent e;
  ASSIGN_OR_RETURN(std::string type, p.String("type"));
  bool known = false;
  for (std::size_t i = 0; i < std::size(kTypeNames); ++i) {
    if (kTypeNames[i] == type) {
      e.type = static_cast<EventType>(i);
      known = true;
    }
  }
  if (!known) return InvalidArgument(where + ": unknown event type '" + type + "'");
  if (p.Has("at_ns")) { ASSIGN_OR_RETURN(e.at_ns, p.Int("at_ns", 0, INT64_MAX)); }
  if (p.Has("inferred")) {
    const json& inf = p.at("inferred");
    if (!inf.is_array()) return InvalidArgument(where + ": field 'inferred' must be an array of field names");
    for (const json& f : inf) {
      if (!f.is_string() || f.get<std::string>().empty() || f.get<std::string>() == "type" ||
          f.get<std::string>() == "inferred")
        return InvalidArgument(where + ": field 'inferred' must name fields of this line");
      const std::string name = f.get<std::string>();
      // A model's sizes sit in its files; any other name must be on the line.
      const bool file_field = e.type == EventType::kModel && (name == "bytes" || name == "tensors");
      if (!file_field && !j.contains(name))
        return InvalidArgument(where + ": 'inferred' names '" + Printable(name) + "', which this line does not have");
      e.inferred.push_back(name);
    }
  }
  switch (e.type) {
    case EventType::kModel: {
      RESIDENCY_RETURN_IF_ERROR(p.Allow({"type", "at_ns", "inferred", "model", "files"}));
      ASSIGN_OR_RETURN(e.model, p.String("model"));
      if (!p.Has("files") || !p.at("files").is_array() || p.at("files").empty())
        return InvalidArgument(where + ": field 'files' must be a non-empty array");
      const json& files = p.at("files");
      if (static_cast<std::int64_t>(files.size()) > kMaxFilesPerModel)
        return LimitError(where, "files_per_model", kMaxFilesPerModel, static_cast<std::int64_t>(files.size()));
      for (std::size_t i = 0; i < files.size(); ++i) {
        TraceFile f;
        RESIDENCY_RETURN_IF_ERROR(ParseFile(files[i], where + ": files[" + std::to_string(i) + "]", f));
        e.files.push_back(std::move(f));
      }
      break;
    }
    case EventType::kLoad: {
      RESIDENCY_RETURN_IF_ERROR(p.Allow({"type", "at_ns", "inferred", "model", "mode", "device_bytes"}));
      ASSIGN_OR_RETURN(e.model, p.String("model"));
      if (p.Has("mode")) {
        ASSIGN_OR_RETURN(std::string mode, p.String("mode"));
        if (!engine::ParseLoadMode(mode, e.mode))
          return InvalidArgument(where + ": field 'mode' must be full, partial or dynamic, got '" +
                                 mode + "'");
      }
      if (e.mode == engine::LoadMode::kPartial) {
        ASSIGN_OR_RETURN(e.device_bytes, p.Size("device_bytes"));
        if (e.device_bytes <= 0)
          return InvalidArgument(where + ": a partial load needs 'device_bytes' > 0");
      } else if (p.Has("device_bytes")) {
        return InvalidArgument(where + ": 'device_bytes' applies to partial loads only");
      }
      break;
    }
    case EventType::kCompute: {
      RESIDENCY_RETURN_IF_ERROR(p.Allow({"type", "at_ns", "inferred", "models", "steps", "step_ns",
                                         "step_time", "activation_bytes", "step_includes_streaming"}));
      if (p.Has("step_includes_streaming")) {
        if (!p.at("step_includes_streaming").is_boolean())
          return InvalidArgument(where + ": field 'step_includes_streaming' must be true or false");
        e.step_includes_streaming = p.at("step_includes_streaming").get<bool>();
      }
      if (!p.Has("models") || !p.at("models").is_array())
        return InvalidArgument(where + ": field 'models' must be an array of model ids");
      for (const json& m : p.at("models")) {
        if (!m.is_string() || m.get<std::string>().empty())
          return InvalidArgument(where + ": field 'models' must hold non-empty strings");
        e.models.push_back(m.get<std::string>());
      }
      ASSIGN_OR_RETURN(std::int64_t steps, p.Int("steps", 0, 1'000'000));
      e.steps = static_cast<int>(steps);
      if (p.Has("step_ns") == p.Has("step_time"))
        return InvalidArgument(where + ": give exactly one of 'step_ns' or 'step_time'");
      if (p.Has("step_ns")) { ASSIGN_OR_RETURN(e.step_ns, p.Int("step_ns", 0, kMaxDurationNs)); }
      else { ASSIGN_OR_RETURN(e.step_ns, p.Duration("step_time")); }
      if (p.Has("activation_bytes")) { ASSIGN_OR_RETURN(e.activation_bytes, p.Size("activation_bytes")); }
      break;
    }
    case EventType::kRelease:
    case EventType::kDelete: {
      RESIDENCY_RETURN_IF_ERROR(p.Allow({"type", "at_ns", "inferred", "model"}));
      ASSIGN_OR_RETURN(e.model, p.String("model"));
      break;
    }
    case EventType::kPatch: {
      RESIDENCY_RETURN_IF_ERROR(p.Allow({"type", "at_ns", "inferred", "model", "patch", "patched_bytes"}));
      ASSIGN_OR_RETURN(e.model, p.String("model"));
      ASSIGN_OR_RETURN(e.patch, p.String("patch"));
      if (p.Has("patched_bytes")) { ASSIGN_OR_RETURN(e.patched_bytes, p.Size("patched_bytes")); }
      break;
    }
    case EventType::kUnload: {
      RESIDENCY_RETURN_IF_ERROR(
          p.Allow({"type", "at_ns", "inferred", "model", "freed_bytes", "remaining_bytes", "reason"}));
      ASSIGN_OR_RETURN(e.model, p.String("model"));
      ASSIGN_OR_RETURN(e.freed_bytes, p.Size("freed_bytes"));
      if (e.freed_bytes < 0) return InvalidArgument(where + ": field 'freed_bytes' must be >= 0");
      if (p.Has("remaining_bytes")) {
        ASSIGN_OR_RETURN(e.remaining_bytes, p.Size("remaining_bytes"));
        if (e.remaining_bytes < 0) return InvalidArgument(where + ": field 'remaining_bytes' must be >= 0");
      }
      ASSIGN_OR_RETURN(e.reason, p.String("reason"));
      if (!kUnloadReasons.count(e.reason))
        return InvalidArgument(where + ": field 'reason' must be one of free_memory, unload_all_models, "
                               "cleanup_models, model_unload, partially_unload, finalizer, on_demand, other; got '" +
                               Printable(e.reason) + "'");
      break;
    }
    case EventType::kNode: {
      RESIDENCY_RETURN_IF_ERROR(
          p.Allow({"type", "at_ns", "inferred", "prompt", "node", "class", "duration_ns", "cached"}));
      ASSIGN_OR_RETURN(std::int64_t prompt, p.Int("prompt", 0, 1'000'000'000));
      e.prompt = static_cast<int>(prompt);
      ASSIGN_OR_RETURN(e.node, p.String("node"));
      ASSIGN_OR_RETURN(e.node_class, p.String("class"));
      ASSIGN_OR_RETURN(e.duration_ns, p.Int("duration_ns", 0, INT64_MAX / 2));
      if (p.Has("cached")) {
        if (!p.at("cached").is_boolean()) return InvalidArgument(where + ": field 'cached' must be true or false");
        e.cached = p.at("cached").get<bool>();
      }
      break;
    }
    case EventType::kPromptBegin:
    case EventType::kPromptEnd: {
      RESIDENCY_RETURN_IF_ERROR(p.Allow({"type", "at_ns", "inferred", "prompt", "measured_wall_ns", "status"}));
      ASSIGN_OR_RETURN(std::int64_t prompt, p.Int("prompt", 0, 1'000'000'000));
      e.prompt = static_cast<int>(prompt);
      if (p.Has("status")) {
        if (e.type != EventType::kPromptEnd) return InvalidArgument(where + ": 'status' belongs on prompt_end");
        ASSIGN_OR_RETURN(std::string status, p.String("status"));
        if (!engine::ParsePromptOutcome(status, e.outcome))
          return InvalidArgument(where + ": field 'status' must be ok, failed or interrupted, got '" +
                                 Printable(status) + "'");
      }
      if (p.Has("measured_wall_ns")) {
        if (e.type != EventType::kPromptEnd)
          return InvalidArgument(where + ": 'measured_wall_ns' belongs on prompt_end");
        ASSIGN_OR_RETURN(e.measured_wall_ns, p.Int("measured_wall_ns", 0, INT64_MAX));
      }
      break;
    }
  }
  return e;
}

Result<TraceHeader> ParseHeader(const json& j, const std::string& where) {
  LineParser p(j, where);
  ASSIGN_OR_RETURN(std::string format, p.String("format"));
  RESIDENCY_RETURN_IF_ERROR(p.Allow({"format", "version", "name", "source", "description", "machine"}));
  if (format != "residency-trace")
    return InvalidArgument(where + ": field 'format' must be \"residency-trace\", got \"" + format + "\"");
  TraceHeader h;
  ASSIGN_OR_RETURN(std::int64_t version, p.Int("version", 1, 1'000'000));
  if (version != kTraceFormatVersion)
    return InvalidArgument(where + ": trace format version " + std::to_string(version) +
                           " is not supported (this build reads version " +
                           std::to_string(kTraceFormatVersion) + ")");
  h.version = static_cast<int>(version);
  ASSIGN_OR_RETURN(h.name, p.String("name"));
  if (p.Has("source")) { ASSIGN_OR_RETURN(h.source, p.String("source")); }
  if (p.Has("description")) {
    if (!p.at("description").is_string())
      return InvalidArgument(where + ": field 'description' must be a string");
    h.description = p.at("description").get<std::string>();
  }
  if (p.Has("machine")) {
    ASSIGN_OR_RETURN(MachineRecord m, ParseMachine(p.at("machine"), where + ": machine"));
    h.machine = std::move(m);
  }
  return h;
}

}  // namespace

std::string_view ToString(EventType type) { return kTypeNames[static_cast<int>(type)]; }

bool TraceEvent::SameContent(const TraceEvent& o) const {
  return type == o.type && model == o.model && files == o.files && mode == o.mode &&
         device_bytes == o.device_bytes && models == o.models && steps == o.steps &&
         step_ns == o.step_ns && activation_bytes == o.activation_bytes &&
         step_includes_streaming == o.step_includes_streaming && patch == o.patch &&
         patched_bytes == o.patched_bytes && prompt == o.prompt &&
         measured_wall_ns == o.measured_wall_ns && outcome == o.outcome && at_ns == o.at_ns && freed_bytes == o.freed_bytes &&
         remaining_bytes == o.remaining_bytes && reason == o.reason && node == o.node &&
         node_class == o.node_class && duration_ns == o.duration_ns && cached == o.cached &&
         inferred == o.inferred;
}

Result<Trace> ParseTrace(const std::string& text, const std::string& origin) {
  Trace trace;
  std::istringstream in(text);
  std::string line;
  int number = 0;
  bool have_header = false;
  std::int64_t models = 0, declared = 0, steps = 0;
  while (std::getline(in, line)) {
    ++number;
    if (!line.empty() && line.back() == '\r') line.pop_back();
    const auto first = line.find_first_not_of(" \t");
    if (first == std::string::npos) continue;  // blank lines are allowed
    const std::string where = origin + ":" + std::to_string(number);
    RESIDENCY_ASSIGN_OR_RETURN(json j, ParseStrictJson(line, where));
    if (!j.is_object()) return InvalidArgument(where + ": each line must be a JSON object");
    if (!have_header) {
      auto h = ParseHeader(j, where);
      if (!h.ok()) return h.status();
      trace.header = std::move(h).value();
      have_header = true;
      continue;
    }
    if (static_cast<std::int64_t>(trace.events.size()) >= kMaxEvents)
      return LimitError(where, "events", kMaxEvents, kMaxEvents + 1);
    auto e = ParseEvent(j, where);
    if (!e.ok()) return e.status();
    e->line = number;
    // Totals a short trace could otherwise declare without bound.
    if (e->type == EventType::kModel) {
      if (++models > kMaxModels) return LimitError(where, "models", kMaxModels, models);
      for (const TraceFile& f : e->files) {
        declared += f.bytes;  // each <= 1 PiB and the total is checked each time: no overflow
        if (declared > kMaxDeclaredBytes) return LimitError(where, "declared_bytes", kMaxDeclaredBytes, declared);
      }
    }
    if (e->type == EventType::kCompute) {
      steps += e->steps;
      if (steps > kMaxTotalSteps) return LimitError(where, "compute_steps", kMaxTotalSteps, steps);
    }
    trace.events.push_back(std::move(e).value());
  }
  if (!have_header) return InvalidArgument(origin + ":1: empty trace (no header line)");
  return trace;
}

Result<Trace> ReadTraceFile(const std::string& path) {
  auto text = io::ReadWholeFile(path, io::kMaxTraceFileBytes);
  if (!text.ok() && text.status().code() == StatusCode::kNotFound)
    return NotFound(Printable(path) + ": cannot open trace file");
  if (!text.ok()) return text.status();
  return ParseTrace(*text, path);
}

}  // namespace residency::traces
