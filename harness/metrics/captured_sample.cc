#include "harness/metrics/captured_sample.h"

#include <algorithm>

namespace residency::metrics {
namespace {

struct ModelState {
  engine::Bytes bytes = 0;
  engine::Bytes resident = 0;
  bool loaded_once = false;
};

}  // namespace

CapturedSample CapturedSampleFromTrace(const traces::Trace& trace) {
  CapturedSample s;
  if (trace.header.machine) s.host = trace.header.machine->host;
  std::map<std::string, ModelState> models;
  engine::Nanos compute_since_node = 0;
  engine::Nanos load_ns = 0;
  for (const traces::TraceEvent& e : trace.events) {
    switch (e.type) {
      case traces::EventType::kModel: {
        ModelState m;
        for (const traces::TraceFile& f : e.files) m.bytes += f.bytes;
        models[e.model] = m;
        break;
      }
      case traces::EventType::kLoad: {
        auto it = models.find(e.model);
        if (it == models.end()) break;  // a reader-checked trace defines every model first
        ModelState& m = it->second;
        const engine::Bytes target =
            e.mode == engine::LoadMode::kFull || e.device_bytes <= 0 ? m.bytes : std::min(e.device_bytes, m.bytes);
        std::string from;
        engine::Bytes moved = 0;
        if (!m.loaded_once) {
          from = "disk";
          moved = target;
        } else if (m.resident >= target) {
          from = "resident";
        } else {
          from = "ram_cache";
          moved = target - m.resident;
        }
        ++s.loads[from];
        s.loaded_bytes[from] += moved;
        m.resident = std::max(m.resident, target);
        m.loaded_once = true;
        break;
      }
      case traces::EventType::kUnload: {
        ++s.unloads[e.reason];
        auto it = models.find(e.model);
        if (it == models.end()) break;
        ModelState& m = it->second;
        m.resident = e.remaining_bytes >= 0 ? e.remaining_bytes : std::max<engine::Bytes>(0, m.resident - e.freed_bytes);
        break;
      }
      case traces::EventType::kDelete:
        models.erase(e.model);
        break;
      case traces::EventType::kCompute:
        compute_since_node += static_cast<engine::Nanos>(e.steps) * e.step_ns;
        break;
      case traces::EventType::kNode:
        if (!e.cached) load_ns += std::max<engine::Nanos>(0, e.duration_ns - compute_since_node);
        compute_since_node = 0;
        break;
      case traces::EventType::kPromptEnd:
        s.prompts.push_back({std::string(engine::ToString(e.outcome)),
                             e.measured_wall_ns >= 0 ? static_cast<double>(e.measured_wall_ns) / 1e9 : -1.0});
        break;
      default:
        break;
    }
  }
  s.load_seconds = static_cast<double>(load_ns) / 1e9;
  return s;
}

}  // namespace residency::metrics
