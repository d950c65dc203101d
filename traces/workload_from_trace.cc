// Trace -> engine workload: model names become ids, every reference is
// checked, tensor distributions are expanded.
#include <map>
#include <set>

#include "runtime/base/input_text.h"
#include "traces/trace.h"

namespace residency::traces {

Result<engine::Workload> ToWorkload(const Trace& trace, const std::string& origin) {
  engine::Workload w;
  w.name = trace.header.name;
  std::map<std::string, engine::ModelId> ids;
  std::map<int, int> prompt_lines;  // prompt id -> line of its prompt_begin
  std::set<std::string> deleted;     // names whose current model was deleted
  std::map<std::string, Bytes> model_bytes;  // name -> its current model's bytes
  engine::ModelId next_model = 1;
  engine::OpId next_op = 1;
  auto where = [&](const TraceEvent& e) { return origin + ":" + std::to_string(e.line) + ": "; };
  auto lookup = [&](const TraceEvent& e, const std::string& name) -> Result<engine::ModelId> {
    auto it = ids.find(name);
    if (it == ids.end())
      return InvalidArgument(where(e) + "model '" + Printable(name) + "' is used before its model line");
    return it->second;
  };
  for (const TraceEvent& e : trace.events) {
    engine::Op op;
    op.id = next_op++;
    switch (e.type) {
      case EventType::kModel: {
        // A name may be defined again once its model was deleted: a server
        // that switches workflows builds new model objects from the same
        // files (the new model shares the files' page cache).
        if (ids.count(e.model) && !deleted.count(e.model))
          return InvalidArgument(where(e) + "model '" + Printable(e.model) +
                                 "' is defined twice (define it again only after its delete)");
        deleted.erase(e.model);
        Bytes& total = model_bytes[e.model];
        total = 0;
        for (const TraceFile& f : e.files) total += f.bytes;
        const auto id = next_model++;
        ids[e.model] = id;
        op.kind = engine::OpKind::kRegisterModel;
        op.model = id;
        op.name = e.model;
        for (const TraceFile& f : e.files) {
          engine::FileSpec spec{f.path, f.bytes, f.tensors};
          if (f.distribution) {
            auto sizes = ExpandTensorSizes(f.bytes, *f.distribution);
            if (!sizes.ok()) return InvalidArgument(where(e) + sizes.status().message());
            spec.tensor_bytes = std::move(sizes).value();
          }
          op.files.push_back(std::move(spec));
        }
        break;
      }
      case EventType::kLoad: {
        RESIDENCY_ASSIGN_OR_RETURN(op.model, lookup(e, e.model));
        op.kind = engine::OpKind::kLoad;
        op.mode = e.mode;
        op.device_bytes = e.device_bytes;
        break;
      }
      case EventType::kCompute: {
        op.kind = engine::OpKind::kCompute;
        for (const std::string& m : e.models) {
          RESIDENCY_ASSIGN_OR_RETURN(engine::ModelId id, lookup(e, m));
          op.models.push_back(id);
        }
        op.steps = e.steps;
        op.step_ns = e.step_ns;
        op.activation_bytes = e.activation_bytes;
        op.step_includes_streaming = e.step_includes_streaming;
        break;
      }
      case EventType::kRelease:
      case EventType::kDelete: {
        RESIDENCY_ASSIGN_OR_RETURN(op.model, lookup(e, e.model));
        if (e.type == EventType::kDelete) deleted.insert(e.model);
        op.kind = e.type == EventType::kRelease ? engine::OpKind::kRelease : engine::OpKind::kDelete;
        break;
      }
      case EventType::kPatch: {
        RESIDENCY_ASSIGN_OR_RETURN(op.model, lookup(e, e.model));
        RESIDENCY_ASSIGN_OR_RETURN(op.patch_model, lookup(e, e.patch));
        op.kind = engine::OpKind::kPatch;
        op.patched_bytes = e.patched_bytes;
        break;
      }
      case EventType::kPromptBegin:
        // Reports and the results store key a run's prompts by id.
        if (auto [it, fresh] = prompt_lines.emplace(e.prompt, e.line); !fresh)
          return InvalidArgument(where(e) + "prompt " + std::to_string(e.prompt) + " begins a second time (first at line " +
                                 std::to_string(it->second) + "); prompt ids must be unique within a trace");
        [[fallthrough]];
      case EventType::kPromptEnd:
        op.kind = e.type == EventType::kPromptBegin ? engine::OpKind::kPromptBegin
                                                    : engine::OpKind::kPromptEnd;
        op.prompt = e.prompt;
        op.measured_wall_ns = e.measured_wall_ns;
        op.outcome = e.outcome;
        break;
      case EventType::kUnload: {
        RESIDENCY_RETURN_IF_ERROR(lookup(e, e.model).status());
        // A server cannot free more of a model than the model holds.
        const Bytes bytes = model_bytes[e.model];
        for (auto [field, value] : {std::pair{"freed_bytes", e.freed_bytes}, {"remaining_bytes", e.remaining_bytes}})
          if (value > bytes)
            return InvalidArgument(where(e) + "unload of '" + Printable(e.model) + "': " + field + " " +
                                   std::to_string(value) + " is more than the model's " + std::to_string(bytes) +
                                   " bytes");
        op.kind = engine::OpKind::kNote;
        break;
      }
      case EventType::kNode:
        op.kind = engine::OpKind::kNote;
        op.prompt = e.prompt;
        break;
    }
    w.ops.push_back(std::move(op));
  }
  return w;
}

Result<engine::Workload> ReadWorkloadFile(const std::string& path) {
  RESIDENCY_ASSIGN_OR_RETURN(Trace trace, ReadTraceFile(path));
  return ToWorkload(trace, path);
}

}  // namespace residency::traces
