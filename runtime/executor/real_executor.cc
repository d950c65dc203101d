#include "runtime/executor/real_executor.h"

#include "runtime/io/mapped_copy.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <filesystem>
#include <memory>
#include <mutex>
#include <set>
#include <unordered_map>

#include "runtime/engine/decision_log.h"
#include "runtime/engine/engine.h"
#include "runtime/io/host_buffer.h"
#include "runtime/io/input_file.h"
#include "runtime/io/meminfo.h"
#include "runtime/io/thread_pool.h"
#include "runtime/io/threaded_reader.h"

namespace residency::executor {
namespace {

using engine::Command;
using engine::CommandKind;
using engine::Completion;
using Clock = std::chrono::steady_clock;

// A host buffer as the executor holds it. Mapped buffers are views of file
// mappings: one segment per file, learned from the reads that fault them.
struct HostSlot {
  io::HostBuffer memory;
  bool mapped = false;
  io::PinKind pin = io::PinKind::kNone;
  std::size_t pinned_bytes = 0;
  struct Segment {
    std::uint64_t base = 0;  // buffer offset of the file's byte 0
    std::uint64_t bytes = 0;
    const char* data = nullptr;
  };
  std::vector<Segment> segments;
};

struct OpenFile {
  std::string path;
  io::InputFile buffered;
  io::InputFile direct;  // opened on first O_DIRECT read
  const char* map = nullptr;
  std::size_t map_bytes = 0;
  int spill_fd = -1;     // scratch files: read-write descriptor
  ~OpenFile() {
    if (map) ::munmap(const_cast<char*>(map), map_bytes);
    if (spill_fd >= 0) ::close(spill_fd);
  }
};

class Executor {
 public:
  Executor(const engine::Workload& workload, const engine::Policy& policy,
           device::DeviceBackend& device, const RunOptions& options)
      : workload_(workload), device_(device), options_(options),
        prefault_pool_(io::CoreCount()),
        io_pool_(std::clamp(policy.read_threads, 1, 32)), copy_pool_(kCopyThreads), compute_pool_(1),
        free_pool_(1) {}
  ~Executor();

  Result<RunResult> Run(std::unique_ptr<engine::Engine> engine);

 private:
  Status CheckModelFiles() const;
  std::string Resolve(const engine::FileEntry& entry) const;
  void Dispatch(engine::Outbox& out);
  // Free RAM below the policy's headroom: tells the engine, as the simulator does.
  void SignalHostPressure(engine::Outbox& out);
  void Execute(const Command& cmd);
  // When and under which prompt a command was issued, for RunResult::command_times.
  struct Issued {
    Clock::time_point at;
    int prompt = 0;
  };
  void Finish(const Command& cmd, Issued issued, Status status);
  void OnPool(io::ThreadPool& pool, const Command& cmd, Status (Executor::*fn)(const Command&));

  Status AllocHost(const Command& cmd);
  Status FreeHost(const Command& cmd);
  Status Prefault(const Command& cmd);
  Status Pin(const Command& cmd);
  Status Unpin(const Command& cmd);
  Status ReadFile(const Command& cmd);
  Status Copy(const Command& cmd);
  Status AllocDevice(const Command& cmd);
  Status FreeDevice(const Command& cmd);
  Status DropPageCache(const Command& cmd);
  Status SpillWrite(const Command& cmd);
  Status SpillRead(const Command& cmd);
  Status Compute(const Command& cmd);

  HostSlot* Slot(engine::BufferId id);
  Result<char*> HostRange(const Command& cmd);
  Result<OpenFile*> File(engine::FileId id);
  void CountHost(std::int64_t delta, bool pinned);
  // Under stats_mu_: the memory in use now, for the timeline.
  void SampleMemory();
  std::int64_t SinceStart() const {
    return std::chrono::duration_cast<std::chrono::nanoseconds>(Clock::now() - t0_).count();
  }

  const engine::Workload& workload_;
  device::DeviceBackend& device_;
  RunOptions options_;
  std::unique_ptr<engine::Engine> engine_;
  RunResult result_;
  Clock::time_point t0_;

  std::mutex slots_mu_;
  std::unordered_map<engine::BufferId, std::unique_ptr<HostSlot>> slots_;
  std::unordered_map<engine::BufferId, device::DevicePtr> device_buffers_;
  std::unordered_map<engine::BufferId, std::size_t> device_sizes_;
  std::mutex files_mu_;
  std::unordered_map<engine::FileId, std::unique_ptr<OpenFile>> files_;

  std::mutex stats_mu_;
  std::uint64_t host_bytes_ = 0, pinned_bytes_ = 0, device_bytes_ = 0;
  std::atomic<std::uint64_t> read_bytes_{0}, h2d_bytes_{0}, d2h_bytes_{0}, spill_bytes_{0};
  std::atomic<std::uint64_t> pin_fallbacks_{0};

  std::mutex done_mu_;
  std::condition_variable done_cv_;
  std::deque<Completion> done_;
  int current_prompt_ = 0;  // driver thread only: the latest begun
  int in_flight_ = 0;       // driver thread only

  // Declared last: joined first on destruction, before the buffers go. The
  // prefault pool comes before the I/O pool, whose prefaults post to it.
  io::ThreadPool prefault_pool_;
  io::ThreadPool io_pool_, copy_pool_, compute_pool_, free_pool_;
};

Executor::~Executor() = default;

std::string Executor::Resolve(const engine::FileEntry& entry) const {
  const std::filesystem::path name = std::filesystem::path(entry.path).filename();
  if (entry.scratch) return (std::filesystem::path(options_.scratch_dir) / name).string();
  if (options_.models_dir.empty()) return entry.path;
  return (std::filesystem::path(options_.models_dir) / name).string();
}

Status Executor::CheckModelFiles() const {
  for (const engine::Op& op : workload_.ops) {
    if (op.kind != engine::OpKind::kRegisterModel) continue;
    for (const engine::FileSpec& f : op.files) {
      const std::string path = Resolve({f.path, f.bytes, false});
      struct stat st {};
      if (::stat(path.c_str(), &st) != 0)
        return NotFound(path + ": model '" + op.name + "' file missing (" + std::strerror(errno) +
                        "); create it with `residency gen-model`");
      if (static_cast<engine::Bytes>(st.st_size) < f.bytes)
        return InvalidArgument(path + ": model '" + op.name + "' file holds " +
                               std::to_string(st.st_size) + " bytes but the trace declares " +
                               std::to_string(f.bytes));
    }
  }
  return Status::Ok();
}

void Executor::CountHost(std::int64_t delta, bool pinned) {
  std::lock_guard<std::mutex> lock(stats_mu_);
  std::uint64_t& counter = pinned ? pinned_bytes_ : host_bytes_;
  counter += static_cast<std::uint64_t>(delta);
  result_.tally.peak_host_bytes = std::max(result_.tally.peak_host_bytes, static_cast<engine::Bytes>(host_bytes_));
  result_.tally.peak_pinned_bytes = std::max(result_.tally.peak_pinned_bytes, static_cast<engine::Bytes>(pinned_bytes_));
  SampleMemory();
}

void Executor::SampleMemory() {
  if (!options_.record_timeline) return;
  result_.timeline.memory.push_back({SinceStart(), host_bytes_, pinned_bytes_, device_bytes_});
}

HostSlot* Executor::Slot(engine::BufferId id) {
  std::lock_guard<std::mutex> lock(slots_mu_);
  auto it = slots_.find(id);
  return it == slots_.end() ? nullptr : it->second.get();
}

Result<char*> Executor::HostRange(const Command& cmd) {
  std::lock_guard<std::mutex> lock(slots_mu_);
  auto it = slots_.find(cmd.buffer);
  if (it == slots_.end())
    return Internal("executor: command " + std::to_string(cmd.id) + " (" +
                    std::string(ToString(cmd.kind)) + ") names unknown host buffer " +
                    std::to_string(cmd.buffer));
  HostSlot& s = *it->second;
  const auto off = static_cast<std::uint64_t>(cmd.buffer_offset);
  const auto n = static_cast<std::uint64_t>(cmd.bytes);
  if (!s.mapped) {
    if (off > s.memory.size() || n > s.memory.size() - off)
      return Internal("executor: command " + std::to_string(cmd.id) + " overruns host buffer " +
                      std::to_string(cmd.buffer));
    return s.memory.data() + off;
  }
  for (const HostSlot::Segment& seg : s.segments)
    if (off >= seg.base && off + n <= seg.base + seg.bytes)
      return const_cast<char*>(seg.data) + (off - seg.base);
  return Internal("executor: mapped buffer " + std::to_string(cmd.buffer) + " range [" +
                  std::to_string(off) + "," + std::to_string(off + n) +
                  ") was never faulted in by a read");
}

Result<OpenFile*> Executor::File(engine::FileId id) {
  std::lock_guard<std::mutex> lock(files_mu_);
  auto it = files_.find(id);
  if (it != files_.end()) return it->second.get();
  const engine::FileEntry& entry = engine_->file(id);
  auto f = std::make_unique<OpenFile>();
  f->path = Resolve(entry);
  if (entry.scratch) {
    f->spill_fd = ::open(f->path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (f->spill_fd < 0) return Internal(f->path + ": cannot create spill file: " + std::strerror(errno));
  } else {
    RESIDENCY_ASSIGN_OR_RETURN(f->buffered, io::InputFile::Open(f->path, false));
  }
  OpenFile* raw = f.get();
  files_.emplace(id, std::move(f));
  return raw;
}

void Executor::Finish(const Command& cmd, Issued issued, Status status) {
  {
    std::lock_guard<std::mutex> lock(done_mu_);
    const auto end = Clock::now();
    const auto busy = std::chrono::duration_cast<std::chrono::nanoseconds>(end - issued.at).count();
    done_.push_back({cmd.id, std::move(status)});
    engine::AddCommandTime(result_.tally.command_times[issued.prompt], cmd, busy);
    if (options_.record_timeline) {
      const auto since = [&](Clock::time_point t) {
        return std::chrono::duration_cast<std::chrono::nanoseconds>(t - t0_).count();
      };
      result_.timeline.commands.push_back({cmd, since(issued.at), since(end)});
    }
  }
  done_cv_.notify_one();
}

void Executor::OnPool(io::ThreadPool& pool, const Command& cmd,
                      Status (Executor::*fn)(const Command&)) {
  const Issued issued{Clock::now(), current_prompt_};
  pool.Post([this, cmd, fn, issued] { Finish(cmd, issued, (this->*fn)(cmd)); });
}

void Executor::Execute(const Command& cmd) {
  ++in_flight_;
  ++result_.tally.commands;
  const Issued issued{Clock::now(), current_prompt_};
  switch (cmd.kind) {
    case CommandKind::kAllocHost: return Finish(cmd, issued, AllocHost(cmd));
    case CommandKind::kFreeHost:
    case CommandKind::kUnmapFile: return OnPool(free_pool_, cmd, &Executor::FreeHost);
    case CommandKind::kPrefault: return OnPool(io_pool_, cmd, &Executor::Prefault);
    case CommandKind::kPin: return OnPool(io_pool_, cmd, &Executor::Pin);
    case CommandKind::kUnpin: return Finish(cmd, issued, Unpin(cmd));
    case CommandKind::kReadFile: return OnPool(io_pool_, cmd, &Executor::ReadFile);
    case CommandKind::kCopyToDevice:
    case CommandKind::kCopyToHost: return OnPool(copy_pool_, cmd, &Executor::Copy);
    case CommandKind::kAllocDevice: return Finish(cmd, issued, AllocDevice(cmd));
    case CommandKind::kFreeDevice: return Finish(cmd, issued, FreeDevice(cmd));
    case CommandKind::kDropPageCache: return Finish(cmd, issued, DropPageCache(cmd));
    case CommandKind::kSpillWrite: return OnPool(io_pool_, cmd, &Executor::SpillWrite);
    case CommandKind::kSpillRead: return OnPool(io_pool_, cmd, &Executor::SpillRead);
    case CommandKind::kCompute: return OnPool(compute_pool_, cmd, &Executor::Compute);
    case CommandKind::kRunFinalizer:  // counted from the engine's kFinalized notice
      return Finish(cmd, issued, Status::Ok());
    case CommandKind::kAdoptHost: return Finish(cmd, issued, Status::Ok());  // ownership only
    case CommandKind::kMapFile: {
      auto slot = std::make_unique<HostSlot>();
      slot->mapped = true;
      std::lock_guard<std::mutex> lock(slots_mu_);
      slots_[cmd.buffer] = std::move(slot);
      return Finish(cmd, issued, Status::Ok());
    }
  }
  Finish(cmd, issued, Internal("executor: unknown command kind"));
}

Status Executor::AllocHost(const Command& cmd) {
  RESIDENCY_ASSIGN_OR_RETURN(io::HostBuffer memory,
                             io::HostBuffer::Reserve(static_cast<std::size_t>(cmd.bytes),
                                                     static_cast<std::size_t>(cmd.bytes)));
  auto slot = std::make_unique<HostSlot>();
  slot->memory = std::move(memory);
  {
    std::lock_guard<std::mutex> lock(slots_mu_);
    slots_[cmd.buffer] = std::move(slot);
  }
  CountHost(cmd.bytes, false);
  return Status::Ok();
}

Status Executor::FreeHost(const Command& cmd) {
  std::unique_ptr<HostSlot> slot;
  {
    std::lock_guard<std::mutex> lock(slots_mu_);
    auto it = slots_.find(cmd.buffer);
    if (it == slots_.end()) return Status::Ok();
    slot = std::move(it->second);
    slots_.erase(it);
  }
  if (slot->pin != io::PinKind::kNone && slot->pin != io::PinKind::kPlain) {
    device_.UnregisterHost(slot->memory.data(), slot->pinned_bytes, slot->pin);
    CountHost(-static_cast<std::int64_t>(slot->pinned_bytes), true);
  }
  if (!slot->mapped) CountHost(-static_cast<std::int64_t>(slot->memory.size()), false);
  return Status::Ok();  // the HostBuffer unmaps as `slot` goes
}

Status Executor::Prefault(const Command& cmd) {
  HostSlot* s = Slot(cmd.buffer);
  if (s == nullptr || s->mapped) return Internal("executor: prefault of an unknown buffer");
  // Faulting is CPU-bound: one command uses every core, as the simulator charges it.
  return s->memory.PrefaultParallel(static_cast<std::size_t>(cmd.buffer_offset), static_cast<std::size_t>(cmd.bytes),
                                    prefault_pool_);
}

Status Executor::Pin(const Command& cmd) {
  HostSlot* s = Slot(cmd.buffer);
  if (s == nullptr || s->mapped) return Internal("executor: pin of an unknown buffer");
  std::string why;
  const std::size_t n = std::min<std::size_t>(static_cast<std::size_t>(cmd.bytes), s->memory.size());
  s->pin = device_.RegisterHost(s->memory.data(), n, &why);
  if (s->pin == io::PinKind::kPlain) {
    ++pin_fallbacks_;  // pageable after all: slower copies, same correctness
    return Status::Ok();
  }
  s->pinned_bytes = n;
  CountHost(static_cast<std::int64_t>(n), true);
  return Status::Ok();
}

Status Executor::Unpin(const Command& cmd) {
  HostSlot* s = Slot(cmd.buffer);
  if (s == nullptr) return Status::Ok();
  if (s->pin != io::PinKind::kNone && s->pin != io::PinKind::kPlain) {
    device_.UnregisterHost(s->memory.data(), s->pinned_bytes, s->pin);
    CountHost(-static_cast<std::int64_t>(s->pinned_bytes), true);
  }
  s->pin = io::PinKind::kNone;
  s->pinned_bytes = 0;
  return Status::Ok();
}

Status Executor::ReadFile(const Command& cmd) {
  RESIDENCY_ASSIGN_OR_RETURN(OpenFile* f, File(cmd.file));
  const auto off = static_cast<std::uint64_t>(cmd.file_offset);
  const auto n = static_cast<std::size_t>(cmd.bytes);
  read_bytes_ += n;
  if (cmd.read_mode == engine::ReadMode::kMapped) {
    {
      std::lock_guard<std::mutex> lock(files_mu_);
      if (f->map == nullptr && f->buffered.size() > 0) {
        const int fd = ::open(f->path.c_str(), O_RDONLY | O_CLOEXEC);
        void* p = fd < 0 ? MAP_FAILED
                         : ::mmap(nullptr, f->buffered.size(), PROT_READ, MAP_SHARED, fd, 0);
        if (fd >= 0) ::close(fd);
        if (p == MAP_FAILED) return Internal(f->path + ": mmap failed: " + std::strerror(errno));
        f->map = static_cast<const char*>(p);
        f->map_bytes = f->buffered.size();
      }
    }
    if (off > f->map_bytes || n > f->map_bytes - off)
      return DataLoss(f->path + ": truncated: mapped read beyond the end of the file");
    // Fault the pages in, one thread, the way a first touch of a mapping does.
    RESIDENCY_RETURN_IF_ERROR(io::TouchMapping(f->map + off, n, io::kPageBytes, f->path));
    std::lock_guard<std::mutex> lock(slots_mu_);
    auto it = slots_.find(cmd.buffer);
    if (it == slots_.end()) return Internal("executor: mapped read into an unknown buffer");
    const std::uint64_t base = static_cast<std::uint64_t>(cmd.buffer_offset) - off;
    auto& segs = it->second->segments;
    if (std::none_of(segs.begin(), segs.end(), [&](const auto& s) { return s.base == base; }))
      segs.push_back({base, f->map_bytes, f->map});
    return Status::Ok();
  }
  RESIDENCY_ASSIGN_OR_RETURN(char* dst, HostRange(cmd));
  if (cmd.read_mode == engine::ReadMode::kDirect) {
    {
      std::lock_guard<std::mutex> lock(files_mu_);
      if (!f->direct.direct()) {
        auto direct = io::InputFile::Open(f->path, true);
        if (!direct.ok()) return direct.status();
        f->direct = std::move(direct).value();
      }
    }
    return f->direct.ReadExact(off, n, dst, io::ThreadBounceBuffer(n));
  }
  return f->buffered.ReadExact(off, n, dst, nullptr);
}

Status Executor::Copy(const Command& cmd) {
  RESIDENCY_ASSIGN_OR_RETURN(char* host, HostRange(cmd));
  device::DevicePtr dev = 0;
  {
    std::lock_guard<std::mutex> lock(slots_mu_);
    auto it = device_buffers_.find(cmd.device_buffer);
    if (it == device_buffers_.end())
      return Internal("executor: copy names unknown device buffer " + std::to_string(cmd.device_buffer));
    dev = it->second;
  }
  const auto n = static_cast<std::size_t>(cmd.bytes);
  const auto dev_off = static_cast<std::size_t>(cmd.device_offset);
  if (cmd.kind == CommandKind::kCopyToDevice) {
    h2d_bytes_ += n;
    return device_.CopyToDevice(dev, dev_off, host, n);
  }
  d2h_bytes_ += n;
  return device_.CopyToHost(host, dev, dev_off, n);
}

Status Executor::AllocDevice(const Command& cmd) {
  RESIDENCY_ASSIGN_OR_RETURN(device::DevicePtr p, device_.Alloc(static_cast<std::size_t>(cmd.bytes)));
  {
    std::lock_guard<std::mutex> lock(slots_mu_);
    device_buffers_[cmd.device_buffer] = p;
    device_sizes_[cmd.device_buffer] = static_cast<std::size_t>(cmd.bytes);
  }
  std::lock_guard<std::mutex> lock(stats_mu_);
  device_bytes_ += static_cast<std::uint64_t>(cmd.bytes);
  result_.tally.peak_device_bytes = std::max(result_.tally.peak_device_bytes, static_cast<engine::Bytes>(device_bytes_));
  SampleMemory();
  return Status::Ok();
}

Status Executor::FreeDevice(const Command& cmd) {
  device::DevicePtr p = 0;
  std::size_t bytes = 0;
  {
    std::lock_guard<std::mutex> lock(slots_mu_);
    auto it = device_buffers_.find(cmd.device_buffer);
    if (it == device_buffers_.end()) return Status::Ok();
    p = it->second;
    bytes = device_sizes_[cmd.device_buffer];
    device_buffers_.erase(it);
    device_sizes_.erase(cmd.device_buffer);
  }
  device_.Free(p);
  std::lock_guard<std::mutex> lock(stats_mu_);
  device_bytes_ -= bytes;
  SampleMemory();
  return Status::Ok();
}

Status Executor::DropPageCache(const Command& cmd) {
  RESIDENCY_ASSIGN_OR_RETURN(OpenFile* f, File(cmd.file));
  if (f->spill_fd < 0) f->buffered.DropCache(0, f->buffered.size());
  return Status::Ok();
}

Status Executor::SpillWrite(const Command& cmd) {
  RESIDENCY_ASSIGN_OR_RETURN(OpenFile* f, File(cmd.file));
  RESIDENCY_ASSIGN_OR_RETURN(char* src, HostRange(cmd));
  std::size_t done = 0;
  const auto n = static_cast<std::size_t>(cmd.bytes);
  while (done < n) {
    const ssize_t w = ::pwrite(f->spill_fd, src + done, n - done, cmd.file_offset + done);
    if (w < 0 && errno == EINTR) continue;
    if (w < 0) return Internal(f->path + ": spill write failed: " + std::strerror(errno));
    done += static_cast<std::size_t>(w);
  }
  spill_bytes_ += n;
  return Status::Ok();
}

Status Executor::SpillRead(const Command& cmd) {
  RESIDENCY_ASSIGN_OR_RETURN(OpenFile* f, File(cmd.file));
  RESIDENCY_ASSIGN_OR_RETURN(char* dst, HostRange(cmd));
  std::size_t done = 0;
  const auto n = static_cast<std::size_t>(cmd.bytes);
  while (done < n) {
    const ssize_t r = ::pread(f->spill_fd, dst + done, n - done, cmd.file_offset + done);
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) return Internal(f->path + ": spill read failed: " + std::strerror(errno));
    if (r == 0) return DataLoss(f->path + ": spill file shorter than what was written");
    done += static_cast<std::size_t>(r);
  }
  return Status::Ok();
}

Status Executor::Compute(const Command& cmd) {
  const auto ns = static_cast<engine::Nanos>(static_cast<double>(cmd.duration_ns) * options_.time_scale);
  return ns > 0 ? device_.Compute(ns) : Status::Ok();
}

void Executor::SignalHostPressure(engine::Outbox& out) {
  if (engine_->RamCacheBytes() == 0) return;  // nothing to free: no need to ask the kernel
  const std::int64_t available =
      options_.available_memory ? options_.available_memory() : io::MemAvailableBytes();
  const engine::Bytes headroom = engine_->policy().host_headroom_bytes;
  if (available < 0 || available >= headroom) return;
  ++result_.tally.host_pressure_signals;
  engine_->HostPressure(headroom - available, out);
  Dispatch(out);
}

void Executor::Dispatch(engine::Outbox& out) {
  engine::AppendDecisions(out, result_.decisions);
  result_.tally.Observe(out);
  const auto now = SinceStart();
  if (options_.record_timeline)
    for (const engine::Notice& n : out.notices) result_.timeline.notices.push_back({now, n});
  for (const engine::OpResult& r : out.finished) {
    if (r.op >= 1 && r.op <= result_.ops.size()) {
      result_.ops[r.op - 1].end_ns = now;
      if (r.kind == engine::OpKind::kPromptBegin) current_prompt_ = workload_.ops[r.op - 1].prompt;
    }
  }
  for (const Command& cmd : out.commands) Execute(cmd);
  out.Clear();
  if (options_.check_invariants)
    for (std::string& v : engine_->CheckInvariants())
      if (result_.violations.size() < 100) result_.violations.push_back(std::move(v));
}

Result<RunResult> Executor::Run(std::unique_ptr<engine::Engine> engine) {
  engine_ = std::move(engine);
  RESIDENCY_RETURN_IF_ERROR(CheckModelFiles());
  bool own_scratch = false;
  if (options_.scratch_dir.empty()) {
    std::string templ = (std::filesystem::temp_directory_path() / "residency-spill-XXXXXX").string();
    if (::mkdtemp(templ.data()) == nullptr)
      return Internal("cannot create a scratch directory: " + std::string(std::strerror(errno)));
    options_.scratch_dir = templ;
    own_scratch = true;
  }
  result_.ops.resize(workload_.ops.size());
  for (std::size_t i = 0; i < workload_.ops.size(); ++i) result_.ops[i].op = workload_.ops[i].id;
  t0_ = Clock::now();
  engine::Outbox out;
  for (const engine::Op& op : workload_.ops) {
    engine_->Submit(op, out);
    Dispatch(out);
  }
  Status failure;
  while (!engine_->Idle()) {
    if (in_flight_ == 0) {
      failure = Internal("executor: the engine is waiting with no command in flight: " +
                         engine_->DescribeOutstanding());
      break;
    }
    Completion c;
    {
      std::unique_lock<std::mutex> lock(done_mu_);
      done_cv_.wait(lock, [this] { return !done_.empty(); });
      c = std::move(done_.front());
      done_.pop_front();
    }
    --in_flight_;
    if (!c.status.ok() && failure.ok()) failure = c.status;  // reported after the engine settles
    engine_->Complete(c, out);
    Dispatch(out);
    SignalHostPressure(out);
  }
  // Let stragglers finish before tearing down (their buffers must outlive them).
  while (in_flight_ > 0) {
    std::unique_lock<std::mutex> lock(done_mu_);
    done_cv_.wait(lock, [this] { return !done_.empty(); });
    done_.pop_front();
    --in_flight_;
  }
  result_.wall_ns = std::chrono::duration_cast<std::chrono::nanoseconds>(Clock::now() - t0_).count();
  std::int64_t previous_end = 0;
  for (OpTiming& t : result_.ops) {
    t.start_ns = previous_end;
    previous_end = std::max(previous_end, t.end_ns);
  }
  result_.tally.budgets = engine_->budgets();
  result_.tally.disk_read_bytes = static_cast<engine::Bytes>(read_bytes_);
  result_.tally.h2d_bytes = static_cast<engine::Bytes>(h2d_bytes_);
  result_.tally.d2h_bytes = static_cast<engine::Bytes>(d2h_bytes_);
  result_.tally.spill_write_bytes = static_cast<engine::Bytes>(spill_bytes_);
  result_.tally.pin_fallbacks += static_cast<std::int64_t>(pin_fallbacks_);
  for (auto& [id, p] : device_buffers_) device_.Free(p);
  device_buffers_.clear();
  for (auto& [id, slot] : slots_)
    if (slot->pin != io::PinKind::kNone && slot->pin != io::PinKind::kPlain)
      device_.UnregisterHost(slot->memory.data(), slot->pinned_bytes, slot->pin);
  slots_.clear();
  files_.clear();
  if (own_scratch) std::filesystem::remove_all(options_.scratch_dir);
  if (!failure.ok()) return failure;
  return std::move(result_);
}

}  // namespace

Result<RunResult> RunWorkload(const engine::Workload& workload, const engine::MachineLimits& machine,
                              const engine::Policy& policy, device::DeviceBackend& device,
                              const RunOptions& options) {
  RESIDENCY_ASSIGN_OR_RETURN(std::unique_ptr<engine::Engine> engine,
                             engine::Engine::Create(machine, policy));
  Executor executor(workload, policy, device, options);
  return executor.Run(std::move(engine));
}

}  // namespace residency::executor
