// What a real server did, read from a captured trace's events, for the
// agent's "captured traffic" metrics (docs/HARNESS.md): prompts and their
// wall time, model loads by where their bytes came from, unloads by reason,
// bytes loaded and time spent loading.
#pragma once

#include <map>
#include <string>
#include <vector>

#include "runtime/engine/types.h"
#include "traces/trace.h"

namespace residency::metrics {

struct CapturedSample {
  std::string host;
  struct Prompt {
    std::string status;   // ok, failed, interrupted
    double seconds = -1;  // measured wall time; -1 when the trace gives none
  };
  std::vector<Prompt> prompts;
  // disk: a model's first load since its file was opened (the OS page cache
  // may serve it); ram_cache: a load of weights unloaded earlier and kept in
  // RAM (ComfyUI offloads to RAM); resident: nothing had left the device.
  std::map<std::string, std::int64_t> loads;
  std::map<std::string, engine::Bytes> loaded_bytes;
  std::map<std::string, std::int64_t> unloads;  // by the trace's unload reason
  // Node time not spent computing (each node's duration minus its compute
  // steps), summed over the trace.
  double load_seconds = 0;
};

CapturedSample CapturedSampleFromTrace(const traces::Trace& trace);

}  // namespace residency::metrics
