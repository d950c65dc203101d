// The trace format, v1 (traces/FORMAT.md): JSON Lines, a header line, then
// one event per line. These structs mirror the lines exactly so a trace can
// be written back byte-for-byte equivalent (lossless round trip).
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "runtime/engine/ops.h"
#include "runtime/base/status.h"

namespace residency::traces {

using engine::Bytes;
using engine::Nanos;

inline constexpr int kTraceFormatVersion = 1;

// Bounds on what a trace may declare (docs/LIMITS.md): nothing grows memory
// or work with a count the input states without bound.
inline constexpr std::int64_t kMaxTensorsPerFile = 200'000;
inline constexpr std::int64_t kMaxFilesPerModel = 4'096;
inline constexpr std::int64_t kMaxModels = 100'000;
inline constexpr std::int64_t kMaxEvents = 10'000'000;
inline constexpr std::int64_t kMaxTotalSteps = 10'000'000;  // compute steps, summed over the trace

// The machine a captured trace came from (FORMAT.md, "machine").
struct MachineRecord {
  std::string device;           // "NVIDIA GeForce RTX 4090", "mps", "cpu"
  Bytes vram = 0;               // 0 when unified
  Bytes ram = 0;
  bool unified = false;
  int cpu_cores = 0;            // 0: not recorded
  std::string torch, server, host;
  std::vector<std::string> flags;  // the server's memory flags, with values
  bool operator==(const MachineRecord&) const = default;
};

struct TraceHeader {
  int version = kTraceFormatVersion;
  std::string name;
  std::string source;       // "synthesized", "captured", "captured:<server>", "imported:<tool>"
  std::string description;
  std::optional<MachineRecord> machine;
};

// Tensor sizes given as a count and a distribution; expanded deterministically.
struct TensorDistribution {
  std::int64_t count = 1;
  std::string kind = "uniform";  // "uniform" | "skewed"
  std::uint64_t seed = 1;
  bool operator==(const TensorDistribution&) const = default;
};

struct TraceFile {
  std::string path;
  Bytes bytes = 0;
  std::vector<Bytes> tensors;                     // listed sizes, or
  std::optional<TensorDistribution> distribution;  // count + distribution
  bool operator==(const TraceFile&) const = default;
};

enum class EventType : std::uint8_t {
  kModel, kLoad, kCompute, kRelease, kDelete, kPatch, kPromptBegin, kPromptEnd,
  kUnload,  // the server freed device bytes of a model (informational)
  kNode,    // one node of a node graph ran (informational)
};

std::string_view ToString(EventType type);

struct TraceEvent {
  EventType type = EventType::kModel;
  int line = 0;  // where it was read; not written back
  std::string model;
  std::vector<TraceFile> files;  // kModel
  engine::LoadMode mode = engine::LoadMode::kFull;
  Bytes device_bytes = 0;        // kLoad partial
  std::vector<std::string> models;  // kCompute
  int steps = 0;
  Nanos step_ns = 0;
  Bytes activation_bytes = 0;
  bool step_includes_streaming = false;  // kCompute: the step time was measured with its streaming in it
  std::string patch;             // kPatch: the patch model
  Bytes patched_bytes = 0;
  int prompt = 0;
  Nanos measured_wall_ns = -1;   // kPromptEnd, optional
  engine::PromptOutcome outcome = engine::PromptOutcome::kOk;  // kPromptEnd: how the server ended it
  Nanos at_ns = -1;              // optional capture timestamp of the event
  Bytes freed_bytes = 0;         // kUnload
  Bytes remaining_bytes = -1;    // kUnload, optional
  std::string reason;            // kUnload: free_memory, unload_all_models, ...
  std::string node, node_class;  // kNode (with `prompt`)
  Nanos duration_ns = 0;         // kNode
  bool cached = false;           // kNode: its output came from the cache
  // Fields whose values an importer inferred rather than read (FORMAT.md).
  std::vector<std::string> inferred;

  bool SameContent(const TraceEvent& o) const;
};

struct Trace {
  TraceHeader header;
  std::vector<TraceEvent> events;
};

// Expands a distribution into exactly `count` sizes > 0 that sum to `bytes`.
Result<std::vector<Bytes>> ExpandTensorSizes(Bytes bytes, const TensorDistribution& dist);

// Reader: every error is "ORIGIN:LINE: what is wrong".
Result<Trace> ParseTrace(const std::string& text, const std::string& origin);
Result<Trace> ReadTraceFile(const std::string& path);
std::string WriteTrace(const Trace& trace);

// Resolves model names to ids and checks references; errors name the line.
Result<engine::Workload> ToWorkload(const Trace& trace, const std::string& origin);
// ReadTraceFile, then ToWorkload with the path as the origin.
Result<engine::Workload> ReadWorkloadFile(const std::string& path);

}  // namespace residency::traces
