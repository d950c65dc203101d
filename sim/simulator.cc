#include "sim/simulator.h"

#include <chrono>

#include <algorithm>
#include <memory>
#include <set>
#include <unordered_map>

#include "runtime/engine/decision_log.h"
#include "runtime/engine/engine.h"
#include "runtime/base/splitmix64.h"
#include "sim/event_log.h"
#include "sim/event_queue.h"
#include "sim/fluid_model.h"
#include "sim/interval_set.h"
#include "sim/sim_memory.h"
#include "sim/timeline_recorder.h"

namespace residency::sim {
namespace {

using engine::Command;
using engine::CommandKind;
using engine::Completion;
using engine::Notice;
using engine::NoticeKind;
using engine::Outbox;

constexpr Bytes kPageBytes = 4096;
constexpr double kLatencyJitter = 0.2;  // +-10 % per disk request, drawn from the seed


using engine::FormatMiB;

// Limit messages: simulated time in whole seconds.
std::string WholeSeconds(engine::Nanos t) { return std::to_string(t / 1'000'000'000) + " s"; }

class Simulator {
 public:
  Simulator(const engine::Workload& w, const traces::Profile& p, const engine::Policy& policy,
            const SimOptions& o, std::unique_ptr<engine::Engine> e)
      : workload_(w), profile_(p), options_(o), engine_(std::move(e)),
        memory_(p), log_(o.keep_event_log), timeline_(o.record_timeline), rng_(o.seed),
        fail_rng_(o.seed ^ 0xfa11) {
    // Cold reads go through the page cache unless the policy reads O_DIRECT
    // (a profile may measure the two differently). The engine's policy is the
    // one copy: the simulator keeps none of its own.
    fluid_.SetCapacity(kDisk, [this](int n) {
      return engine_->policy().direct_io ? profile_.DiskReadBytesPerSecond(n)
                                         : profile_.DiskReadBufferedBytesPerSecond(n);
    });
    fluid_.SetCapacity(kCpu, [this](int) { return static_cast<double>(profile_.cpu_cores); });
    fluid_.SetCapacity(kPcieH2D, [this](int) {
      return static_cast<double>(profile_.pcie_h2d_pinned_bytes_per_second);
    });
    fluid_.SetCapacity(kPcieD2H, [this](int) {
      return static_cast<double>(profile_.pcie_d2h_bytes_per_second);
    });
    result_.trace = w.name;
    result_.profile = p.name;
    result_.policy = policy.name;
    result_.tally.budgets = engine_->budgets();
    result_.seed = o.seed;
    result_.unified = p.unified;
    result_.ram_bytes = p.ram_bytes;
    result_.device_bytes = p.unified ? 0 : p.vram_bytes;
    for (const engine::Op& op : w.ops) {
      if (op.kind != engine::OpKind::kRegisterModel) continue;
      log_.NameModel(op.model, op.name);
      timeline_.NameModel(op.model, op.name);
    }
  }

  SimResult Run();

 private:
  struct Buffer {
    Bytes bytes = 0;
    bool pinned = false;
    bool mapped = false;
    Bytes touched = 0;  // high-water mark of first-touched bytes
    IntervalSet faulted;  // mappings: pages this process has faulted in
  };
  struct Pending {
    Command cmd;
    int activities = 0;
    Nanos start = 0;
    int prompt = 0;  // the latest begun when issued
  };

  void Drain(Outbox& out);
  void AdvanceFluid();
  void Execute(const Command& cmd);
  void CompleteNow(engine::CommandId id) { queue_.Push(now_, EventKind::kCompletion, id); }
  void StartActivity(engine::CommandId id, const ActivitySpec& spec, Nanos latency);
  void ExecuteRead(const Command& cmd);
  void ExecuteCopy(const Command& cmd);
  double DestinationRate(const Command& cmd);
  void AfterMemoryChange();
  void Kill(const std::string& why);
  void Observe(const Outbox& out);
  void CheckInvariants();
  void Violation(std::string what);

  const engine::Workload& workload_;
  const traces::Profile& profile_;
  SimOptions options_;
  std::unique_ptr<engine::Engine> engine_;
  SimMemory memory_;
  EventLog log_;
  TimelineRecorder timeline_;
  EventQueue queue_;
  FluidModel fluid_;
  std::uint64_t rng_;
  std::uint64_t fail_rng_;  // its own stream: no failures, the same event log
  Nanos now_ = 0;
  bool dead_ = false;
  Bytes pressure_ = 0;
  std::unordered_map<engine::BufferId, Buffer> buffers_;
  std::unordered_map<engine::BufferId, Bytes> device_buffers_;
  std::unordered_map<engine::CommandId, Pending> pending_;
  std::unordered_map<std::uint64_t, engine::CommandId> activity_owner_;
  std::unordered_map<std::uint64_t, ActivitySpec> delayed_;  // waiting out disk latency
  std::unordered_map<engine::ModelId, Nanos> load_begin_;
  const std::chrono::steady_clock::time_point wall_start_ = std::chrono::steady_clock::now();  // max_wall only
  std::unordered_map<engine::ModelId, Bytes> load_cold_bytes_;  // disk loads under way: bytes not in the page cache
  std::unordered_map<engine::ModelId, int> finalizer_runs_;
  std::unordered_map<engine::OpId, const engine::Op*> ops_by_id_;
  SimResult result_;
  std::uint64_t next_delayed_ = 1;
  std::set<std::string> violations_seen_;
};

SimResult Simulator::Run() {
  Outbox out;
  for (const engine::Op& op : workload_.ops) ops_by_id_[op.id] = &op;
  for (const engine::Op& op : workload_.ops) {
    engine_->Submit(op, out);
    Drain(out);
    if (dead_) break;
  }
  while (!dead_) {
    if (pressure_ > 0) {
      const Bytes bytes = pressure_;
      pressure_ = 0;
      log_.Pressure(now_, bytes);
      ++result_.tally.host_pressure_signals;
      engine_->HostPressure(bytes, out);
      Drain(out);
      continue;
    }
    const Nanos next_activity = fluid_.NextCompletion();
    const bool has_event = !queue_.empty();
    if (next_activity < 0 && !has_event) break;
    if (++result_.events > options_.max_events) {
      result_.limit_exceeded = "limit 'max_events' (" + std::to_string(options_.max_events) +
                               " simulator events) crossed at " + WholeSeconds(now_) + " of simulated time";
      break;
    }
    const Nanos next = next_activity >= 0 && (!has_event || next_activity < queue_.top().time) ? next_activity
                                                                                                : queue_.top().time;
    if (next > options_.max_sim_time_ns) {
      result_.limit_exceeded = "limit 'max_sim_time' (" + WholeSeconds(options_.max_sim_time_ns) +
                               " of simulated time) crossed: the profile's rates or the trace's durations are extreme";
      break;
    }
    if (options_.max_wall_seconds > 0 && result_.events % 4096 == 0 &&
        std::chrono::duration<double>(std::chrono::steady_clock::now() - wall_start_).count() >
            options_.max_wall_seconds) {
      result_.limit_exceeded = "limit 'max_wall' (" + std::to_string(static_cast<long long>(options_.max_wall_seconds)) +
                               " s of wall time per run) crossed at " + WholeSeconds(now_) + " of simulated time";
      break;
    }
    if (next_activity >= 0 && (!has_event || next_activity < queue_.top().time)) {
      now_ = std::max(now_, next_activity);
      AdvanceFluid();
      continue;
    }
    const Event ev = queue_.Pop();
    now_ = std::max(now_, ev.time);
    AdvanceFluid();
    switch (ev.kind) {
      case EventKind::kActivityStart: {
        const ActivitySpec spec = delayed_.at(ev.payload);
        const engine::CommandId owner = activity_owner_.at(ev.payload);
        delayed_.erase(ev.payload);
        activity_owner_.erase(ev.payload);
        activity_owner_[fluid_.Start(spec, now_)] = owner;
        break;
      }
      case EventKind::kTimer:
      case EventKind::kCompletion: {
        auto it = pending_.find(ev.payload);
        if (it == pending_.end()) break;
        const Command cmd = it->second.cmd;
        timeline_.CommandDone(cmd, it->second.start, now_);
        engine::AddCommandTime(result_.tally.command_times[it->second.prompt], cmd, now_ - it->second.start);
        pending_.erase(it);
        log_.Completion(now_, cmd.id);
        const bool fail = options_.fail_permille > 0 && engine::CanFail(cmd.kind) &&
                          SplitMix64(fail_rng_) % 1000 < options_.fail_permille;
        engine_->Complete({cmd.id, fail ? Internal("injected failure of a " + std::string(ToString(cmd.kind)))
                                        : Status::Ok()},
                          out);
        Drain(out);
        break;
      }
    }
  }
  if (!dead_ && !engine_->Idle())
    Violation("the event queue drained with ops or commands outstanding (liveness): " +
              engine_->DescribeOutstanding());
  result_.makespan_ns = now_;
  // A prompt an OOM cut short, or that the trace never ended, ran to here.
  for (PromptTiming& p : result_.prompts)
    if (!p.ended) p.end_ns = now_;
  result_.event_log_hash = log_.hash();
  if (options_.keep_event_log) result_.event_log = log_.lines();
  timeline_.Finish(now_, result_);
  return std::move(result_);
}

void Simulator::AdvanceFluid() {
  // Every activity that finished by now counts toward its command, whatever
  // woke the loop.
  for (std::uint64_t act : fluid_.AdvanceTo(now_)) {
    const engine::CommandId id = activity_owner_.at(act);
    activity_owner_.erase(act);
    Pending& p = pending_.at(id);
    if (--p.activities == 0) CompleteNow(id);
  }
}

void Simulator::Drain(Outbox& out) {
  Observe(out);
  // Commands may complete instantly; their completions go through the queue,
  // so the engine is never re-entered from here.
  for (const Command& cmd : out.commands) {
    if (dead_) break;
    Execute(cmd);
  }
  out.Clear();
  if (!dead_ && options_.check_invariants) CheckInvariants();
}

void Simulator::Observe(const Outbox& out) {
  if (options_.record_decisions) engine::AppendDecisions(out, result_.decisions);
  result_.tally.Observe(out);
  for (const Notice& n : out.notices) {
    log_.NoticeLine(now_, n);
    timeline_.Notice(now_, n);
    switch (n.kind) {
      case NoticeKind::kDiskLoad:
        load_cold_bytes_[n.model] = 0;  // sorted into disk or page cache when it ends
        break;
      case NoticeKind::kLoadStarted: load_begin_[n.model] = now_; break;
      case NoticeKind::kLoadFinished: {
        if (auto cold = load_cold_bytes_.find(n.model); cold != load_cold_bytes_.end()) {
          if (cold->second == 0) result_.tally.ServedByPageCache();
          load_cold_bytes_.erase(cold);
        }
        auto it = load_begin_.find(n.model);
        if (it != load_begin_.end()) {
          result_.load_ns += now_ - it->second;
          load_begin_.erase(it);
        }
        break;
      }
      default: break;
    }
  }
  for (const engine::OpResult& r : out.finished) {
    log_.OpFinished(now_, r);
    const engine::Op& op = *ops_by_id_.at(r.op);
    if (!r.status.ok()) {
      // The load that failed never finishes; its open span is dropped.
      load_begin_.erase(op.model);
      timeline_.LoadFailed(op.model);
      // The prompt it ran in failed (the latest begun and not yet ended).
      if (!result_.prompts.empty() && !result_.prompts.back().ended) ++result_.prompts.back().failed_ops;
    }
    if (op.kind == engine::OpKind::kPromptBegin)
      result_.prompts.push_back({op.prompt, now_, now_, op.measured_wall_ns, engine::PromptOutcome::kOk, 0, 0, false});
    if (op.kind == engine::OpKind::kPromptEnd) {
      for (auto it = result_.prompts.rbegin(); it != result_.prompts.rend(); ++it) {
        if (it->prompt == op.prompt) {
          it->end_ns = now_;
          it->ended = true;
          it->measured_wall_ns = op.measured_wall_ns;
          it->measured_outcome = op.outcome;
          timeline_.PromptBoundary(op.prompt, it->begin_ns, now_);
          break;
        }
      }
    }
  }
}

void Simulator::StartActivity(engine::CommandId id, const ActivitySpec& spec, Nanos latency) {
  ++pending_.at(id).activities;
  if (latency <= 0) {
    activity_owner_[fluid_.Start(spec, now_)] = id;
    return;
  }
  const std::uint64_t key = next_delayed_++;
  // Delayed activities use a key space disjoint from fluid ids (high bit set).
  const std::uint64_t tagged = key | (1ULL << 63);
  delayed_[tagged] = spec;
  activity_owner_[tagged] = id;
  queue_.Push(now_ + latency, EventKind::kActivityStart, tagged);
}

double Simulator::DestinationRate(const Command& cmd) {
  // First touch of a page costs a fault; prefaulted or pinned memory does not.
  auto it = buffers_.find(cmd.buffer);
  const double copy = static_cast<double>(profile_.memcpy_bytes_per_second_per_thread);
  if (it == buffers_.end()) return copy;
  Buffer& b = it->second;
  const Bytes end = cmd.buffer_offset + cmd.bytes;
  if (b.pinned || end <= b.touched) return copy;
  const Bytes fresh = std::min(cmd.bytes, end - std::max(b.touched, cmd.buffer_offset));
  b.touched = std::max(b.touched, end);
  const double fault_s = static_cast<double>(fresh) / kPageBytes * profile_.page_fault_ns / 1e9;
  const double copy_s = static_cast<double>(cmd.bytes) / copy;
  return static_cast<double>(cmd.bytes) / (copy_s + fault_s);
}

void Simulator::ExecuteRead(const Command& cmd) {
  const engine::FileEntry& file = engine_->file(cmd.file);
  PageCache& cache = memory_.page_cache();
  const bool direct = cmd.read_mode == engine::ReadMode::kDirect;
  const Bytes cached = direct ? 0 : cache.CachedBytes(cmd.file, cmd.file_offset, cmd.bytes);
  const Bytes cold = cmd.bytes - cached;
  const double jitter = 1.0 + kLatencyJitter * (static_cast<double>(SplitMix64(rng_) >> 11) /
                                                    9007199254740992.0 - 0.5);
  const Nanos latency = static_cast<Nanos>(static_cast<double>(profile_.disk_read_latency_ns) * jitter);
  const double memcpy_rate = static_cast<double>(profile_.memcpy_bytes_per_second_per_thread);
  if (cmd.read_mode == engine::ReadMode::kMapped) {
    // Page faults on a mapping: one thread, one fault per page. Pages the
    // mapping already has are touched for free (a held mapping streamed
    // again); they are taken to be among the cached bytes, as reclaim would
    // have unmapped them otherwise.
    const double fault_rate = kPageBytes * 1e9 / std::max<double>(1.0, profile_.page_fault_ns);
    Bytes to_fault = cached;
    auto mapping = buffers_.find(cmd.buffer);
    if (mapping != buffers_.end() && mapping->second.mapped) {
      IntervalSet& faulted = mapping->second.faulted;
      to_fault -= std::min(cached, faulted.Covered(cmd.buffer_offset, cmd.bytes));
      faulted.Add(cmd.buffer_offset, cmd.bytes);
    }
    if (cold > 0) {
      ActivitySpec s;
      s.bytes = static_cast<double>(cold);
      s.cap_bytes_per_second = static_cast<double>(profile_.mmap_read_bytes_per_second);
      s.weight[kDisk] = 1;
      StartActivity(cmd.id, s, latency);
    }
    if (to_fault > 0) {
      ActivitySpec s;
      s.bytes = static_cast<double>(to_fault);
      s.cap_bytes_per_second = fault_rate;
      s.weight[kCpu] = 1.0 / fault_rate;
      StartActivity(cmd.id, s, 0);
    }
  } else {
    const double dest = DestinationRate(cmd);
    if (cold > 0) {
      ActivitySpec s;
      s.bytes = static_cast<double>(cold);
      s.cap_bytes_per_second = direct ? 1e15 : dest;  // direct: the disk is the limit
      s.weight[kDisk] = 1;
      if (!direct) s.weight[kCpu] = 1.0 / memcpy_rate;  // the kernel copies into the buffer
      StartActivity(cmd.id, s, latency);
    }
    if (cached > 0) {
      ActivitySpec s;
      s.bytes = static_cast<double>(cached);
      s.cap_bytes_per_second = dest;
      s.weight[kCpu] = 1.0 / memcpy_rate;
      StartActivity(cmd.id, s, 0);
    }
  }
  result_.tally.disk_read_bytes += cold;
  if (!result_.prompts.empty()) result_.prompts.back().disk_read_bytes += cold;
  if (auto load = load_cold_bytes_.find(cmd.model); load != load_cold_bytes_.end()) load->second += cold;
  result_.tally.page_cache_read_bytes += cached;
  if (!direct) {
    cache.Insert(cmd.file, file.bytes, cmd.file_offset, cmd.bytes, memory_.PageCacheLimit());
  }
  if (pending_.at(cmd.id).activities == 0) CompleteNow(cmd.id);
}

void Simulator::ExecuteCopy(const Command& cmd) {
  const bool h2d = cmd.kind == CommandKind::kCopyToDevice;
  auto it = buffers_.find(cmd.buffer);
  const bool pinned = it != buffers_.end() && it->second.pinned;
  ActivitySpec s;
  s.bytes = static_cast<double>(cmd.bytes);
  if (pinned) {
    s.cap_bytes_per_second = static_cast<double>(h2d ? profile_.pcie_h2d_pinned_bytes_per_second
                                                     : profile_.pcie_d2h_bytes_per_second);
  } else {
    // Pageable copies go through the driver's staging buffer on one core.
    s.cap_bytes_per_second = static_cast<double>(profile_.pcie_h2d_pageable_bytes_per_second);
    s.weight[kCpu] = 1.0 / static_cast<double>(profile_.memcpy_bytes_per_second_per_thread);
  }
  if (memory_.unified()) {
    // One pool: a "copy" is a memcpy within RAM.
    s.cap_bytes_per_second = static_cast<double>(profile_.memcpy_bytes_per_second_per_thread);
    s.weight = {};
    s.weight[kCpu] = 1.0 / s.cap_bytes_per_second;
  } else {
    s.weight[h2d ? kPcieH2D : kPcieD2H] = 1;
    if (profile_.device_copies_on_cpu)  // the host device: every copy is a memcpy on a core
      s.weight[kCpu] = 1.0 / static_cast<double>(profile_.memcpy_bytes_per_second_per_thread);
  }
  (h2d ? result_.tally.h2d_bytes : result_.tally.d2h_bytes) += cmd.bytes;
  StartActivity(cmd.id, s, 0);
}

void Simulator::Execute(const Command& cmd) {
  ++result_.tally.commands;
  log_.Issue(now_, cmd);
  pending_[cmd.id] = {cmd, 0, now_, result_.prompts.empty() ? 0 : result_.prompts.back().prompt};
  switch (cmd.kind) {
    case CommandKind::kAllocHost:
      buffers_[cmd.buffer] = {cmd.bytes, false, false, 0};
      memory_.AddPageable(cmd.bytes);
      AfterMemoryChange();
      CompleteNow(cmd.id);
      break;
    case CommandKind::kMapFile:
      buffers_[cmd.buffer] = {cmd.bytes, false, true, 0};
      CompleteNow(cmd.id);
      break;
    case CommandKind::kFreeHost:
    case CommandKind::kUnmapFile: {
      auto it = buffers_.find(cmd.buffer);
      if (it != buffers_.end()) {
        if (!it->second.mapped) {
          if (it->second.pinned) memory_.AddPinned(-it->second.bytes);
          else memory_.AddPageable(-it->second.bytes);
        }
        buffers_.erase(it);
      }
      AfterMemoryChange();
      CompleteNow(cmd.id);
      break;
    }
    case CommandKind::kPrefault: {
      Buffer& b = buffers_.at(cmd.buffer);
      b.touched = std::max(b.touched, cmd.buffer_offset + cmd.bytes);
      const double per_thread = static_cast<double>(profile_.prefault_bytes_per_second_per_thread);
      ActivitySpec s;
      s.bytes = static_cast<double>(cmd.bytes);
      s.cap_bytes_per_second = per_thread * std::max(1, profile_.cpu_cores);
      s.weight[kCpu] = 1.0 / per_thread;
      StartActivity(cmd.id, s, 0);
      break;
    }
    case CommandKind::kPin: {
      Buffer& b = buffers_.at(cmd.buffer);
      const bool faulted = b.touched >= b.bytes;
      const Nanos per_gib = faulted ? profile_.register_ns_per_gib : profile_.register_unfaulted_ns_per_gib;
      const Nanos cost = static_cast<Nanos>(static_cast<long double>(b.bytes) * per_gib / engine::kGiB);
      b.pinned = true;
      b.touched = b.bytes;
      memory_.AddPageable(-b.bytes);
      memory_.AddPinned(b.bytes);
      AfterMemoryChange();
      queue_.Push(now_ + cost, EventKind::kTimer, cmd.id);
          break;
    }
    case CommandKind::kUnpin: {
      Buffer& b = buffers_.at(cmd.buffer);
      if (b.pinned) {
        b.pinned = false;
        memory_.AddPinned(-b.bytes);
        memory_.AddPageable(b.bytes);
      }
      CompleteNow(cmd.id);
      break;
    }
    case CommandKind::kReadFile:
      ExecuteRead(cmd);
      break;
    case CommandKind::kSpillRead:
    case CommandKind::kSpillWrite: {
      ActivitySpec s;
      s.bytes = static_cast<double>(cmd.bytes);
      s.cap_bytes_per_second = static_cast<double>(cmd.kind == CommandKind::kSpillWrite
                                                       ? profile_.disk_write_bytes_per_second
                                                       : profile_.DiskReadBytesPerSecond(1));
      s.weight[kDisk] = 1;
      if (cmd.kind == CommandKind::kSpillWrite) result_.tally.spill_write_bytes += cmd.bytes;
      else result_.tally.disk_read_bytes += cmd.bytes;
      StartActivity(cmd.id, s, profile_.disk_read_latency_ns);
          break;
    }
    case CommandKind::kCopyToDevice:
    case CommandKind::kCopyToHost:
      ExecuteCopy(cmd);
      break;
    case CommandKind::kAllocDevice: {
      const std::string oom = memory_.AllocDevice(cmd.bytes);
      if (!oom.empty()) {
        Kill(oom);
        return;
      }
      device_buffers_[cmd.device_buffer] = cmd.bytes;
      AfterMemoryChange();
      CompleteNow(cmd.id);
      break;
    }
    case CommandKind::kFreeDevice: {
      // The executor frees what it allocated, whatever the command says.
      auto it = device_buffers_.find(cmd.device_buffer);
      if (it != device_buffers_.end()) {
        memory_.FreeDevice(it->second);
        device_buffers_.erase(it);
      }
      AfterMemoryChange();
      CompleteNow(cmd.id);
      break;
    }
    case CommandKind::kDropPageCache:
      memory_.page_cache().Drop(cmd.file);
      AfterMemoryChange();
      CompleteNow(cmd.id);
      break;
    case CommandKind::kCompute:
      queue_.Push(now_ + cmd.duration_ns, EventKind::kTimer, cmd.id);
          break;
    case CommandKind::kAdoptHost:  // ownership only: the memory stays where it is
      CompleteNow(cmd.id);
      break;
    case CommandKind::kRunFinalizer:
      if (++finalizer_runs_[cmd.model] > 1)
        Violation("finalizer of model " + std::to_string(cmd.model) + " ran twice");
      CompleteNow(cmd.id);
      break;
  }
}

void Simulator::AfterMemoryChange() {
  const std::string oom = memory_.Settle();
  if (!oom.empty()) {
    Kill(oom);
    return;
  }
  const Bytes host = memory_.pageable() + memory_.pinned();
  result_.tally.peak_host_bytes = std::max(result_.tally.peak_host_bytes, host);
  result_.tally.peak_pinned_bytes = std::max(result_.tally.peak_pinned_bytes, memory_.pinned());
  result_.tally.peak_device_bytes = std::max(result_.tally.peak_device_bytes, memory_.device());
  result_.peak_page_cache_bytes =
      std::max(result_.peak_page_cache_bytes, memory_.page_cache().total());
  result_.peak_ram_bytes = std::max(result_.peak_ram_bytes, host + memory_.page_cache().total());
  if (memory_.unified())
    result_.peak_unified_bytes = std::max(result_.peak_unified_bytes, host + memory_.device());
  timeline_.Sample(now_, memory_.pageable(), memory_.pinned(), memory_.device(),
                   memory_.page_cache().total());
  // Low free RAM: tell the engine, like a pressure notification would.
  const Bytes available = memory_.Available();
  const Bytes headroom = engine_->policy().host_headroom_bytes;
  if (available < headroom && engine_->RamCacheBytes() > 0) pressure_ = std::max(pressure_, headroom - available);
}

void Simulator::Kill(const std::string& why) {
  dead_ = true;
  result_.oom.happened = true;
  result_.oom.time_ns = now_;
  result_.oom.message = why;
  std::vector<std::string>& h = result_.oom.holders;
  for (const engine::ModelView& m : engine_->Models()) {
    if (m.device_bytes == 0 && m.host_bytes == 0) continue;
    h.push_back(m.name + ": device " + FormatMiB(m.device_bytes) + ", host " + FormatMiB(m.host_bytes) +
                (m.host_mapped ? " (mapped)" : m.host_pinned ? " (pinned)" : "") +
                (m.active ? ", active" : "") + (m.handles > 0 ? ", held" : ""));
  }
  const engine::Accounting& a = engine_->accounting();
  h.push_back("staging ring: " + FormatMiB(a.staging_bytes));
  h.push_back("activations: " + FormatMiB(a.activation_bytes));
  h.push_back("page cache: " + FormatMiB(memory_.page_cache().total()));
  log_.Oom(now_, why);
}

void Simulator::Violation(std::string what) {
  // The same broken invariant is reported once, at its first moment.
  if (!violations_seen_.insert(what).second) return;
  if (result_.violations.size() < 50) {
    result_.violations.push_back("t=" + std::to_string(now_) + "ns: " + what);
  }
}

void Simulator::CheckInvariants() {
  for (std::string& v : engine_->CheckInvariants()) Violation(std::move(v));
  // The engine's books must match what this machine really holds.
  const engine::Accounting& a = engine_->accounting();
  if (a.pageable_bytes != memory_.pageable())
    Violation("engine pageable " + std::to_string(a.pageable_bytes) + " != held " +
              std::to_string(memory_.pageable()));
  if (a.pinned_bytes != memory_.pinned())
    Violation("engine pinned " + std::to_string(a.pinned_bytes) + " != held " +
              std::to_string(memory_.pinned()));
  if (a.device_bytes != memory_.device())
    Violation("engine device " + std::to_string(a.device_bytes) + " != held " +
              std::to_string(memory_.device()));
}

}  // namespace

Result<SimResult> Simulate(const engine::Workload& workload, const traces::Profile& profile,
                           const engine::Policy& policy, const SimOptions& options) {
  auto created = engine::Engine::Create(profile.Limits(), policy);
  if (!created.ok()) return created.status();
  Simulator sim(workload, profile, policy, options, std::move(created).value());
  SimResult r = sim.Run();
  if (!r.limit_exceeded.empty()) return ResourceExhausted(r.limit_exceeded);
  return r;
}

}  // namespace residency::sim
