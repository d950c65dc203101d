// The engine's outputs: commands for an executor to carry out, notices for
// reports, and finished ops. Inputs back: completions. Plain data only.
#pragma once

#include <map>
#include <string>
#include <vector>

#include "runtime/base/status.h"
#include "runtime/engine/ops.h"
#include "runtime/engine/types.h"

namespace residency::engine {

enum class CommandKind : std::uint8_t {
  kAllocHost,      // buffer, bytes: pageable host memory (not yet faulted)
  kFreeHost,       // buffer (unpins first if pinned)
  kPrefault,       // buffer, bytes: fault every page in (background pool)
  kPin,            // buffer, bytes: page-lock (cudaHostRegister / mlock)
  kUnpin,          // buffer: unlock, keep the data
  kReadFile,       // file, file_offset, bytes -> buffer at buffer_offset
  kCopyToDevice,   // buffer at buffer_offset -> device_buffer at device_offset
  kCopyToHost,     // device_buffer at device_offset -> buffer at buffer_offset
  kAllocDevice,    // device_buffer, bytes
  kFreeDevice,     // device_buffer
  kDropPageCache,  // file: posix_fadvise(DONTNEED)
  kSpillWrite,     // buffer, bytes -> scratch file `file`
  kSpillRead,      // scratch file `file` -> buffer, bytes
  kCompute,        // duration_ns of device compute (one step)
  kRunFinalizer,   // model: its finalizer runs exactly once
  kMapFile,        // buffer, bytes: mmap the model's files (mmap loader)
  kUnmapFile,      // buffer: munmap
  kAdoptHost,      // buffer: this host copy now belongs to `model` (bookkeeping, no work)
};

std::string_view ToString(CommandKind kind);

// Whether an executor can fail to carry out a command of this kind (no
// memory, an I/O error, a device error). Releases (frees, unpins, unmaps),
// page-cache advice and finalizers always succeed.
inline bool CanFail(CommandKind kind) {
  switch (kind) {
    case CommandKind::kAllocHost:
    case CommandKind::kPrefault:
    case CommandKind::kPin:
    case CommandKind::kReadFile:
    case CommandKind::kCopyToDevice:
    case CommandKind::kCopyToHost:
    case CommandKind::kAllocDevice:
    case CommandKind::kSpillWrite:
    case CommandKind::kSpillRead:
    case CommandKind::kCompute:
    case CommandKind::kMapFile:
      return true;
    default:
      return false;
  }
}

enum class ReadMode : std::uint8_t {
  kBuffered,  // pread through the page cache
  kDirect,    // O_DIRECT, bypasses the page cache
  kMapped,    // page faults on an mmap of the file, one thread
};

std::string_view ToString(ReadMode mode);

struct Command {
  CommandId id = 0;
  CommandKind kind = CommandKind::kCompute;
  ModelId model = 0;  // owner, for accounting and reports
  BufferId buffer = 0;
  Bytes buffer_offset = 0;
  BufferId device_buffer = 0;
  Bytes device_offset = 0;
  Bytes bytes = 0;
  FileId file = 0;
  Bytes file_offset = 0;
  ReadMode read_mode = ReadMode::kBuffered;
  bool pinned = false;     // host side of a copy, or kind of buffer
  bool staging = false;    // buffer is a staging-ring slot
  bool activation = false; // kAllocDevice: activations, not weights
  Nanos duration_ns = 0;   // kCompute
};

// Issue-to-completion time of commands, summed per kind (and split by the
// prompt that was the latest begun when each was issued). The simulator and
// the real executor both fill it, so a fidelity run can name the kind of work
// the model gets wrong instead of only the prompt.
struct CommandTime {
  std::int64_t count = 0;
  Bytes bytes = 0;
  Nanos busy_ns = 0;
};
using CommandTimes = std::map<CommandKind, CommandTime>;
using CommandTimesByPrompt = std::map<int, CommandTimes>;  // prompt 0: before the first

inline void AddCommandTime(CommandTimes& t, const Command& cmd, Nanos busy_ns) {
  CommandTime& c = t[cmd.kind];
  ++c.count;
  c.bytes += cmd.bytes;
  c.busy_ns += busy_ns;
}

struct Completion {
  CommandId id = 0;
  Status status;  // non-OK: the executor could not carry the command out
};

enum class NoticeKind : std::uint8_t {
  kEvicted,         // bytes left `tier` for `reason`
  kRamCacheHit,     // a load was served from a host copy
  kDeviceHit,       // a load found the model already on the device
  kDiskLoad,        // a load read the model from its files
  kSpillLoad,       // a load read dirty weights back from a scratch file
  kPinFallback,     // pinned memory was wanted but pageable used (pin budget)
  kSpilled,         // dirty weights written to a scratch file
  kStreamed,        // bytes streamed host->device during a compute step
  kFinalized,       // a model's finalizer ran
  kLoadStarted,     // a transfer for `model` began
  kLoadFinished,    // ... and ended
};

std::string_view ToString(NoticeKind kind);

struct Notice {
  NoticeKind kind = NoticeKind::kEvicted;
  ModelId model = 0;
  Tier tier = Tier::kDevice;
  EvictReason reason = EvictReason::kDevicePressure;
  Bytes bytes = 0;
};

struct OpResult {
  OpId op = 0;
  OpKind kind = OpKind::kLoad;
  Status status;
};

// Everything one engine call produced, in order. The caller drains it.
struct Outbox {
  std::vector<Command> commands;
  std::vector<Notice> notices;
  std::vector<OpResult> finished;
  void Clear() {
    commands.clear();
    notices.clear();
    finished.clear();
  }
};

}  // namespace residency::engine
