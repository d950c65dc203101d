// Workload operations: what the inference server asks of the engine, in the
// order its single execution thread asks. Converted from trace events by
// traces/workload_from_trace, or issued by the real runtime directly.
#pragma once

#include <string>
#include <vector>

#include "runtime/engine/types.h"

namespace residency::engine {

struct FileSpec {
  std::string path;
  Bytes bytes = 0;
  // Tensor sizes in file order; they sum to `bytes`. The per-tensor loaders
  // (mmap-pageable, read-into) issue one read per tensor. May be empty, in
  // which case the file counts as one tensor.
  std::vector<Bytes> tensor_bytes;
};

enum class OpKind : std::uint8_t {
  kRegisterModel,  // name + files; no I/O
  kLoad,           // acquire a handle; bring the model to its device target
  kCompute,        // steps of compute using models; activations on device
  kRelease,        // drop one handle
  kDelete,         // the model object is gone; finalize once its bytes are freed
  kPatch,          // attach a patch model (LoRA); patched weights become dirty
  kPromptBegin,
  kPromptEnd,
  kNote,           // what the server recorded but the engine decides itself
                   // (an unload, a node's span): no work, keeps ops 1:1 with events
};

std::string_view ToString(OpKind kind);

struct Op {
  OpId id = 0;
  OpKind kind = OpKind::kPromptBegin;
  ModelId model = 0;

  // kRegisterModel
  std::string name;
  std::vector<FileSpec> files;

  // kLoad
  LoadMode mode = LoadMode::kFull;
  Bytes device_bytes = 0;  // device budget for kPartial

  // kCompute
  std::vector<ModelId> models;
  int steps = 0;
  Nanos step_ns = 0;
  Bytes activation_bytes = 0;
  // The step time was measured with the streaming of offloaded weights in
  // it (a captured or imported trace): a step's compute then runs beside
  // its streaming instead of after it, so the streaming is not paid twice.
  bool step_includes_streaming = false;

  // kPatch: `model` is patched with `patch_model`; `patched_bytes` of the
  // base model's weights change (0 means all of them).
  ModelId patch_model = 0;
  Bytes patched_bytes = 0;

  // kPromptBegin / kPromptEnd
  int prompt = 0;
  Nanos measured_wall_ns = -1;  // captured wall time, -1 when unknown
  PromptOutcome outcome = PromptOutcome::kOk;  // kPromptEnd: how the server ended it (captured)
};

}  // namespace residency::engine

namespace residency::engine {

// A whole workload: ops in order, plus display names for models.
struct Workload {
  std::string name;
  std::vector<Op> ops;
};

}  // namespace residency::engine
