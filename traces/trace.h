// The trace format, v1 (traces/FORMAT.md): JSON Lines, a header line, then
// one event per line. These structs mirror the lines exactly so a trace can
// be written back byte-for-byte equivalent (lossless round trip).
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "runtime/engine/ops.h"
#include "runtime/engine/status.h"

namespace residency::traces {

using engine::Bytes;
using engine::Nanos;

inline constexpr int kTraceFormatVersion = 1;

struct TraceHeader {
  int version = kTraceFormatVersion;
  std::string name;
  std::string source;       // "synthesized", "captured", "imported:<tool>"
  std::string description;
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
  kModel, kLoad, kCompute, kRelease, kDelete, kPatch, kPromptBegin, kPromptEnd
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
  std::string patch;             // kPatch: the patch model
  Bytes patched_bytes = 0;
  int prompt = 0;
  Nanos measured_wall_ns = -1;   // kPromptEnd, optional
  Nanos at_ns = -1;              // optional capture timestamp of the event

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
