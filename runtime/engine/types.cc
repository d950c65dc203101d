#include "runtime/engine/types.h"

namespace residency::engine {

std::string FormatMiB(Bytes bytes) { return std::to_string(bytes / kMiB) + " MiB"; }

std::string_view ToString(Tier tier) {
  switch (tier) {
    case Tier::kDisk: return "disk";
    case Tier::kHost: return "host";
    case Tier::kPinned: return "pinned";
    case Tier::kDevice: return "device";
  }
  return "?";
}

std::string_view ToString(LoaderKind kind) {
  switch (kind) {
    case LoaderKind::kMmapPageable: return "mmap-pageable";
    case LoaderKind::kReadInto: return "read-into";
    case LoaderKind::kThreadedPinned: return "threaded-pinned";
  }
  return "?";
}

std::string_view ToString(EvictionKind kind) {
  switch (kind) {
    case EvictionKind::kDrop: return "drop";
    case EvictionKind::kRamLru: return "ram-lru";
    case EvictionKind::kRamCostAware: return "ram-cost-aware";
    case EvictionKind::kSpill: return "spill";
  }
  return "?";
}

std::string_view ToString(LoadMode mode) {
  switch (mode) {
    case LoadMode::kFull: return "full";
    case LoadMode::kPartial: return "partial";
    case LoadMode::kDynamic: return "dynamic";
  }
  return "?";
}

std::string_view ToString(LoadModeRule rule) {
  switch (rule) {
    case LoadModeRule::kAsTraced: return "as-traced";
    case LoadModeRule::kDynamic: return "dynamic";
    case LoadModeRule::kClassic: return "classic";
    case LoadModeRule::kNoVram: return "novram";
  }
  return "?";
}

std::string_view ToString(PromptOutcome outcome) {
  switch (outcome) {
    case PromptOutcome::kOk: return "ok";
    case PromptOutcome::kFailed: return "failed";
    case PromptOutcome::kInterrupted: return "interrupted";
  }
  return "?";
}

std::string_view ToString(EvictReason reason) {
  switch (reason) {
    case EvictReason::kDevicePressure: return "device-pressure";
    case EvictReason::kRamCacheBudget: return "ram-cache-budget";
    case EvictReason::kHostPressure: return "host-pressure";
    case EvictReason::kPinBudget: return "pin-budget";
    case EvictReason::kDeleted: return "deleted";
    case EvictReason::kNotCached: return "not-cached";
    case EvictReason::kPromptEnd: return "prompt-end";
  }
  return "?";
}

bool ParseLoaderKind(std::string_view name, LoaderKind& out) {
  for (LoaderKind k : {LoaderKind::kMmapPageable, LoaderKind::kReadInto,
                       LoaderKind::kThreadedPinned}) {
    if (ToString(k) == name) { out = k; return true; }
  }
  return false;
}

bool ParseEvictionKind(std::string_view name, EvictionKind& out) {
  for (EvictionKind k : {EvictionKind::kDrop, EvictionKind::kRamLru,
                         EvictionKind::kRamCostAware, EvictionKind::kSpill}) {
    if (ToString(k) == name) { out = k; return true; }
  }
  return false;
}

bool ParseLoadMode(std::string_view name, LoadMode& out) {
  for (LoadMode m : {LoadMode::kFull, LoadMode::kPartial, LoadMode::kDynamic}) {
    if (ToString(m) == name) { out = m; return true; }
  }
  return false;
}

bool ParseLoadModeRule(std::string_view name, LoadModeRule& out) {
  for (LoadModeRule r : {LoadModeRule::kAsTraced, LoadModeRule::kDynamic, LoadModeRule::kClassic,
                         LoadModeRule::kNoVram}) {
    if (ToString(r) == name) { out = r; return true; }
  }
  return false;
}

bool ParsePromptOutcome(std::string_view name, PromptOutcome& out) {
  for (PromptOutcome o : {PromptOutcome::kOk, PromptOutcome::kFailed, PromptOutcome::kInterrupted}) {
    if (ToString(o) == name) { out = o; return true; }
  }
  return false;
}

}  // namespace residency::engine
