// String names of the engine's enumerations, for logs and reports.
#include "runtime/engine/commands.h"
#include "runtime/engine/ops.h"

namespace residency::engine {

std::string_view ToString(OpKind kind) {
  switch (kind) {
    case OpKind::kRegisterModel: return "register";
    case OpKind::kLoad: return "load";
    case OpKind::kCompute: return "compute";
    case OpKind::kRelease: return "release";
    case OpKind::kDelete: return "delete";
    case OpKind::kPatch: return "patch";
    case OpKind::kPromptBegin: return "prompt_begin";
    case OpKind::kPromptEnd: return "prompt_end";
    case OpKind::kNote: return "note";
  }
  return "?";
}

std::string_view ToString(CommandKind kind) {
  switch (kind) {
    case CommandKind::kAllocHost: return "alloc_host";
    case CommandKind::kFreeHost: return "free_host";
    case CommandKind::kPrefault: return "prefault";
    case CommandKind::kPin: return "pin";
    case CommandKind::kUnpin: return "unpin";
    case CommandKind::kReadFile: return "read";
    case CommandKind::kCopyToDevice: return "copy_h2d";
    case CommandKind::kCopyToHost: return "copy_d2h";
    case CommandKind::kAllocDevice: return "alloc_device";
    case CommandKind::kFreeDevice: return "free_device";
    case CommandKind::kDropPageCache: return "drop_page_cache";
    case CommandKind::kSpillWrite: return "spill_write";
    case CommandKind::kSpillRead: return "spill_read";
    case CommandKind::kCompute: return "compute";
    case CommandKind::kRunFinalizer: return "finalizer";
    case CommandKind::kMapFile: return "map";
    case CommandKind::kUnmapFile: return "unmap";
    case CommandKind::kAdoptHost: return "adopt_host";
  }
  return "?";
}

std::string_view ToString(ReadMode mode) {
  switch (mode) {
    case ReadMode::kBuffered: return "buffered";
    case ReadMode::kDirect: return "direct";
    case ReadMode::kMapped: return "mapped";
  }
  return "?";
}

std::string_view ToString(NoticeKind kind) {
  switch (kind) {
    case NoticeKind::kEvicted: return "evicted";
    case NoticeKind::kRamCacheHit: return "ram_cache_hit";
    case NoticeKind::kDeviceHit: return "device_hit";
    case NoticeKind::kDiskLoad: return "disk_load";
    case NoticeKind::kSpillLoad: return "spill_load";
    case NoticeKind::kPinFallback: return "pin_fallback";
    case NoticeKind::kSpilled: return "spilled";
    case NoticeKind::kStreamed: return "streamed";
    case NoticeKind::kFinalized: return "finalized";
    case NoticeKind::kLoadStarted: return "load_started";
    case NoticeKind::kLoadFinished: return "load_finished";
  }
  return "?";
}

}  // namespace residency::engine
