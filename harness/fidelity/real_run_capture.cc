#include "harness/fidelity/real_run_capture.h"

#include <unistd.h>

#include <map>

namespace residency::fidelity {

engine::MachineLimits ThisMachine(std::uint64_t device_bytes) {
  engine::MachineLimits m;
  m.ram_bytes = static_cast<engine::Bytes>(::sysconf(_SC_PHYS_PAGES)) * ::sysconf(_SC_PAGESIZE);
  m.device_bytes = static_cast<engine::Bytes>(device_bytes);
  return m;
}

traces::Trace CapturedTrace(traces::Trace trace, const executor::RunResult& r) {
  trace.header.source = "captured";
  trace.header.name += "-captured";
  std::map<int, std::int64_t> prompt_begin;
  for (std::size_t i = 0; i < trace.events.size() && i < r.ops.size(); ++i) {
    traces::TraceEvent& e = trace.events[i];
    e.at_ns = r.ops[i].end_ns;
    if (e.type == traces::EventType::kPromptBegin) prompt_begin[e.prompt] = r.ops[i].end_ns;
    if (e.type == traces::EventType::kPromptEnd && prompt_begin.count(e.prompt))
      e.measured_wall_ns = r.ops[i].end_ns - prompt_begin[e.prompt];
  }
  return trace;
}

}  // namespace residency::fidelity
