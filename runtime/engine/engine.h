// The residency engine: a deterministic state machine that owns every
// decision about where model bytes live. It takes ops (from the workload) and
// completions (from an executor) and emits commands, notices and finished
// ops into an Outbox. It never touches a file, thread, clock or device, so the
// simulator and the real runtime run the same decisions.
//
// Thread model: single-threaded. Executors deliver completions one at a time,
// in any order relative to each other.
//
// Ops run one at a time, in submission order (an inference server's execution
// thread); commands of one op run concurrently within the policy's limits.
#pragma once

#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "runtime/engine/buffer_ledger.h"
#include "runtime/engine/commands.h"
#include "runtime/engine/ops.h"
#include "runtime/engine/policy.h"
#include "runtime/engine/staging_ring.h"
#include "runtime/engine/transfer_pipeline.h"

namespace residency::engine {

struct FileEntry {
  std::string path;
  Bytes bytes = 0;
  bool scratch = false;  // a spill file the engine created
};

// A read-only view of one model for reports and property tests.
struct ModelView {
  ModelId id = 0;
  std::string name;
  Bytes bytes = 0;
  int handles = 0;
  bool active = false;
  bool deleted = false;
  int finalizer_runs = 0;
  Bytes device_bytes = 0;
  bool device_valid = false;
  Bytes host_bytes = 0;
  bool host_pinned = false;
  bool host_mapped = false;
  bool host_valid = false;
  bool dirty = false;
  bool spilled = false;
};

class Engine {
 public:
  // Validates inputs; the error names the bad field.
  static Result<std::unique_ptr<Engine>> Create(const MachineLimits& machine,
                                                const Policy& policy);

  // Queues `op`; it starts when every earlier op has finished.
  void Submit(const Op& op, Outbox& out);
  // An executor finished (or failed) command `completion.id`.
  void Complete(const Completion& completion, Outbox& out);
  // The host reports low free memory: free at least `bytes` of cached copies.
  void HostPressure(Bytes bytes, Outbox& out);

  // True when no op is queued or running and no command is in flight.
  bool Idle() const;
  std::size_t commands_in_flight() const { return inflight_.size(); }
  // What keeps the engine busy, for liveness reports.
  std::string DescribeOutstanding() const;

  const Accounting& accounting() const { return ledger_.totals(); }
  const Budgets& budgets() const { return budgets_; }
  const Policy& policy() const { return policy_; }
  const MachineLimits& machine() const { return machine_; }
  const FileEntry& file(FileId id) const { return files_.at(id); }
  std::size_t file_count() const { return files_.size(); }
  std::vector<ModelView> Models() const;
  // Host copies kept for reuse (not needed by a live handle that streams).
  Bytes RamCacheBytes() const;
  // Every violated invariant, as a sentence; empty when all hold.
  std::vector<std::string> CheckInvariants() const;

 private:
  struct ModelState {
    std::string name;
    std::vector<FileId> files;
    std::vector<std::vector<Bytes>> tensors;  // per file
    Bytes bytes = 0;
    int handles = 0;
    bool active = false;
    bool deleted = false;
    bool finalizer_issued = false;
    int finalizer_runs = 0;
    LoadMode mode = LoadMode::kFull;
    Bytes device_target = 0;
    BufferId device_buffer = 0;
    Bytes device_bytes = 0;
    bool device_valid = false;
    bool device_dirty = false;  // patches applied on the device copy
    BufferId host_buffer = 0;
    Bytes host_bytes = 0;
    bool host_pinned = false;
    bool host_mapped = false;
    bool host_valid = false;
    bool host_dirty = false;  // host copy holds patched weights
    bool spilled = false;
    FileId spill_file = 0;
    std::vector<ModelId> patches;
    Bytes patched_bytes = 0;
    std::uint64_t last_use = 0;
    std::int64_t gds_priority = 0;  // GreedyDual-Size H value
    // A RAM-cache entry keyed by files, not a model of the workload: the clean
    // host copy a deleted model left, kept for a model built again from the
    // same files (a server switching workflows). No op names it.
    bool file_cache_entry = false;
  };
  struct Step {
    std::vector<Command> batch;  // issued together, all awaited
    std::unique_ptr<TransferPipeline> pipeline;
    std::function<Status(Outbox&)> then;  // runs when reached
    // With a pipeline: commands issued when it starts and awaited with it
    // (a compute step that runs beside its own streaming).
    std::vector<Command> companions;
    std::vector<CommandId> companions_waiting;
    bool companions_issued = false;
  };
  struct Task {
    Op op;
    std::deque<Step> steps;
    std::vector<CommandId> waiting;
    Status status;
    std::vector<std::function<void(Outbox&)>> on_fail;  // undo, run on failure
    // The RAM-cache budget was enforced at its end. No default member
    // initializer: clang 14 then rejects optional<Task>::emplace() inside
    // Engine; emplace() value-initializes it to false.
    bool cache_trimmed;
  };
  struct Inflight {
    CommandKind kind;
    BufferId buffer = 0;
    BufferId device_buffer = 0;
    ModelId model = 0;
  };

  Engine(const MachineLimits& machine, const Policy& policy);

  // Task machinery (engine.cc).
  void Advance(Outbox& out);
  void StartTask(const Op& op);
  void FailTask(Status status, Outbox& out);
  CommandId Issue(Command cmd, Outbox& out, BufferLedger::Route route = BufferLedger::Route::kStaged);
  void Then(std::function<Status(Outbox&)> fn);
  void Batch(std::vector<Command> batch);
  // A device copy smaller than the model streams the rest from a host copy;
  // without a complete one it cannot serve a compute.
  static bool Streamable(const ModelState& m) {
    return m.device_bytes >= m.bytes || (m.host_buffer && m.host_valid);
  }
  void OnFail(std::function<void(Outbox&)> fn) { task_->on_fail.push_back(std::move(fn)); }
  void Pipe(std::vector<TransferChunk> chunks, PipelineLimits limits);
  Command Make(CommandKind kind, ModelId model) const;
  BufferId NewBuffer() { return next_buffer_++; }
  ModelState* Find(ModelId id);
  const ModelState* Find(ModelId id) const;
  void Touch(ModelState& m);
  void Note(Outbox& out, NoticeKind kind, ModelId id, Tier tier, EvictReason reason, Bytes bytes);

  // Ops (engine_ops.cc).
  Status DoRegister(const Op& op);
  // A load op under the policy's loading regime (LoadModeRule), then DoLoad.
  Status DoRequestedLoad(const Op& op, Outbox& out);
  Status DoLoad(ModelId id, LoadMode mode, Bytes partial_bytes, bool acquire, Outbox& out);
  Status DoPromptEnd(Outbox& out);
  Bytes DeviceObtainable(const std::vector<ModelId>& protect) const;
  Status DoCompute(const Op& op, Outbox& out);
  Status ComputeSteps(const Op& op, const std::vector<ModelId>& used, bool may_shrink, Outbox& o);
  Status DoRelease(ModelId id, Outbox& out);
  Status DoDelete(ModelId id, Outbox& out);
  Status DoPatch(const Op& op, Outbox& out);
  void MaybeFinalize(ModelId id);

  // Load planning (engine_load.cc).
  Status PlanTransfer(ModelId id, Outbox& out);
  void DropPageCache(ModelId id);  // kDropPageCache for each of the model's files
  // At a deleted model's end: hands its clean host copy to a file-keyed cache
  // entry instead of freeing it, where the policy keeps a RAM cache.
  void KeepHostCopyForItsFiles(ModelId id);
  // At a register: takes a cached copy of exactly these files, if any.
  void AdoptCachedCopy(ModelId id);
  void HandOverHostCopy(ModelId from, ModelId to);  // a clean host copy changes hands (kAdoptHost)
  ModelId next_cache_entry_ = 0x80000000u;  // ids of file-keyed cache entries
  Status PlanFromFile(ModelId id, bool keep_host, Outbox& out);
  void PlanFromHost(ModelId id);
  Status PlanFromSpill(ModelId id, Outbox& out);
  Status PlanPatchApply(ModelId id, Outbox& out);
  void PlanStream(const ModelState& m, ModelId id, BufferId stream_buffer, Bytes window);
  Status FinishLoad(ModelId id, Outbox& out);
  BufferId AllocHostSteps(ModelId id, Bytes bytes, bool pin, bool staging);
  FileId SpillFile(ModelId id);
  // `same_pool`: bytes about to be allocated on the device, which on unified
  // memory come out of the same pool as the ring.
  Status EnsureStagingRing(Outbox& out, Bytes same_pool = 0);
  // How FileWindows cuts a model's files: chunks of `window` bytes, copied to
  // the device below `device_limit` (model offset), read into `host_buffer`
  // (kept as the host copy) or into staging-ring slots (`staging`: nothing
  // past the device part is read).
  struct WindowPlan {
    Bytes window = 0;
    Bytes device_limit = 0;
    BufferId device_buffer = 0;
    BufferId host_buffer = 0;
    bool host_pinned = false;
    bool staging = false;
  };
  std::vector<TransferChunk> FileWindows(const ModelState& m, ModelId id, const WindowPlan& plan);
  // The threaded loader's pipeline: the policy's read threads and read size,
  // two copies in flight.
  PipelineLimits ThreadedLimits() const {
    return {.reads_in_flight_max = policy_.read_threads,
            .copies_in_flight_max = 2,
            .read_bytes_max = policy_.chunk_bytes,
            .serial = false};
  }
  // Copy-only chunks of `window` bytes over [begin, end) of m's host copy.
  // The device side starts at `begin` (same layout), or at zero (a streaming
  // window reused for every chunk).
  enum class DeviceSide { kSameOffsets, kAtZero };
  enum class Direction { kToDevice, kToHost };
  std::vector<TransferChunk> HostDeviceChunks(const ModelState& m, ModelId id, Bytes begin, Bytes end, Bytes window,
                                              BufferId device_buffer, DeviceSide device_side,
                                              Direction direction) const;
  // The command that releases m's host copy (a free, or an unmap for a mapping).
  Command FreeHostCommand(const ModelState& m, ModelId id) const;
  bool HoldsMapping() const;
  bool WantsHostCopy(const ModelState& m) const;
  bool StreamsFromHost(const ModelState& m) const { return m.device_target < m.bytes; }

  // Room making and eviction (engine_evict.cc).
  Bytes DeviceHeld() const;  // issued and staged device bytes
  Bytes DeviceFree() const;
  Bytes HostFree() const;
  Status MakeDeviceRoom(Bytes needed, const std::vector<ModelId>& protect, Outbox& out);
  Status MakeHostRoom(Bytes needed, const std::vector<ModelId>& protect, Outbox& out);
  bool PinRoom(Bytes needed, const std::vector<ModelId>& protect, Outbox& out);
  void EnforceCacheBudget(const std::vector<ModelId>& protect, Outbox& out);
  void EvictDevice(ModelId id, EvictReason reason, Outbox& out);
  void EvictHost(ModelId id, EvictReason reason, Outbox& out);
  void ForgetSpillOnFail(ModelId id);
  std::vector<ModelId> HostVictimOrder(const std::vector<ModelId>& protect) const;
  bool IsProtected(ModelId id, const std::vector<ModelId>& protect) const;
  std::int64_t ReloadCostPerMiB(const ModelState& m) const;

  MachineLimits machine_;
  Policy policy_;
  Budgets budgets_;
  BufferLedger ledger_;  // buffers, staged bytes, in-flight counts, their counters
  std::vector<FileEntry> files_;
  std::map<std::string, FileId> file_index_;
  std::map<ModelId, ModelState> models_;
  std::map<CommandId, Inflight> inflight_;
  std::vector<std::string> faults_;  // commands refused: own bookkeeping broke
  StagingRing ring_;
  bool ring_planned_ = false;
  std::deque<Op> queue_;
  std::optional<Task> task_;
  std::vector<Step> staged_steps_;  // steps queued by the running `then`
  CommandIds ids_;
  BufferId next_buffer_ = 1;
  std::uint64_t tick_ = 0;
  std::int64_t gds_inflation_ = 0;
};

}  // namespace residency::engine
