// Trace writer: one canonical JSON object per line, keys in a fixed order,
// sizes as integers. ParseTrace(WriteTrace(t)) has the same content as t.
#include <nlohmann/json.hpp>

#include "traces/trace.h"

namespace residency::traces {
namespace {

using ordered = nlohmann::ordered_json;

ordered FileJson(const TraceFile& f) {
  ordered j;
  j["path"] = f.path;
  j["bytes"] = f.bytes;
  if (!f.tensors.empty()) j["tensors"] = f.tensors;
  if (f.distribution) {
    j["tensor_count"] = f.distribution->count;
    j["tensor_distribution"] = f.distribution->kind;
    j["tensor_seed"] = f.distribution->seed;
  }
  return j;
}

ordered EventJson(const TraceEvent& e) {
  ordered j;
  j["type"] = std::string(ToString(e.type));
  if (e.at_ns >= 0) j["at_ns"] = e.at_ns;
  switch (e.type) {
    case EventType::kModel: {
      j["model"] = e.model;
      ordered files = ordered::array();
      for (const TraceFile& f : e.files) files.push_back(FileJson(f));
      j["files"] = files;
      break;
    }
    case EventType::kLoad:
      j["model"] = e.model;
      j["mode"] = std::string(engine::ToString(e.mode));
      if (e.mode == engine::LoadMode::kPartial) j["device_bytes"] = e.device_bytes;
      break;
    case EventType::kCompute:
      j["models"] = e.models;
      j["steps"] = e.steps;
      j["step_ns"] = e.step_ns;
      j["activation_bytes"] = e.activation_bytes;
      if (e.step_includes_streaming) j["step_includes_streaming"] = true;
      break;
    case EventType::kRelease:
    case EventType::kDelete:
      j["model"] = e.model;
      break;
    case EventType::kPatch:
      j["model"] = e.model;
      j["patch"] = e.patch;
      if (e.patched_bytes > 0) j["patched_bytes"] = e.patched_bytes;
      break;
    case EventType::kPromptBegin:
    case EventType::kPromptEnd:
      j["prompt"] = e.prompt;
      if (e.measured_wall_ns >= 0) j["measured_wall_ns"] = e.measured_wall_ns;
      if (e.outcome != engine::PromptOutcome::kOk) j["status"] = std::string(engine::ToString(e.outcome));
      break;
    case EventType::kUnload:
      j["model"] = e.model;
      j["freed_bytes"] = e.freed_bytes;
      if (e.remaining_bytes >= 0) j["remaining_bytes"] = e.remaining_bytes;
      j["reason"] = e.reason;
      break;
    case EventType::kNode:
      j["prompt"] = e.prompt;
      j["node"] = e.node;
      j["class"] = e.node_class;
      j["duration_ns"] = e.duration_ns;
      j["cached"] = e.cached;
      break;
  }
  if (!e.inferred.empty()) j["inferred"] = e.inferred;
  return j;
}

}  // namespace

std::string WriteTrace(const Trace& trace) {
  ordered h;
  h["format"] = "residency-trace";
  h["version"] = trace.header.version;
  h["name"] = trace.header.name;
  if (!trace.header.source.empty()) h["source"] = trace.header.source;
  if (!trace.header.description.empty()) h["description"] = trace.header.description;
  if (const auto& m = trace.header.machine) {
    ordered jm;
    if (!m->device.empty()) jm["device"] = m->device;
    if (!m->unified) jm["vram"] = m->vram;
    jm["ram"] = m->ram;
    jm["unified"] = m->unified;
    if (m->cpu_cores > 0) jm["cpu_cores"] = m->cpu_cores;
    if (!m->torch.empty()) jm["torch"] = m->torch;
    if (!m->server.empty()) jm["server"] = m->server;
    if (!m->flags.empty()) jm["flags"] = m->flags;
    if (!m->host.empty()) jm["host"] = m->host;
    h["machine"] = jm;
  }
  std::string out = h.dump() + "\n";
  for (const TraceEvent& e : trace.events) out += EventJson(e).dump() + "\n";
  return out;
}

}  // namespace residency::traces
