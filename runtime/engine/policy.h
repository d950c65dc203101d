// What the engine is told: the machine's limits (from a profile or from
// measuring the real machine) and the policy (mechanisms and numbers).
// Budgets are derived from both, once, by pure arithmetic.
#pragma once

#include <string>

#include "runtime/base/status.h"
#include "runtime/engine/types.h"

namespace residency::engine {

// The machine as the engine sees it. Timing figures are not here: the engine
// decides, executors (real or simulated) take the time.
struct MachineLimits {
  Bytes ram_bytes = 16 * kGiB;
  Bytes swap_bytes = 0;
  Bytes os_reserve_bytes = 2 * kGiB;  // RAM the OS and other processes hold
  Bytes device_bytes = 8 * kGiB;      // VRAM; ignored when unified
  bool unified = false;               // host and device share one pool
  // Used only to estimate reload cost for cost-aware eviction.
  Bytes disk_read_bytes_per_second = 2 * kGiB;
};

struct Policy {
  std::string name = "default";
  LoaderKind loader = LoaderKind::kThreadedPinned;
  EvictionKind eviction = EvictionKind::kDrop;

  int read_threads = 8;               // reads in flight (threaded loader)
  Bytes chunk_bytes = 2 * kMiB;       // one read() request
  int staging_buffers = 3;            // pinned staging ring slots
  Bytes staging_bytes = 64 * kMiB;    // size of one staging slot

  // Negative means "auto" (see ComputeBudgets for the rules).
  Bytes pin_budget_bytes = -1;
  Bytes ram_cache_bytes = -1;

  Bytes host_headroom_bytes = 2 * kGiB;   // free RAM the engine never eats
  Bytes device_reserve_bytes = 1 * kGiB;  // VRAM kept free (context, fragmentation)
  Bytes pin_hysteresis_bytes = 256 * kMiB;    // free at least this much per pin squeeze
  Bytes cache_hysteresis_bytes = 512 * kMiB;  // same, for RAM-cache squeezes

  bool prefault_before_pin = true;          // MADV_POPULATE_WRITE before register
  bool drop_page_cache_after_load = false;  // posix_fadvise(DONTNEED) per file
  bool direct_io = false;                   // O_DIRECT reads (threaded loader)
  // mmap loader only: keep the file mapping, and so its page-cache pages,
  // while the model is loaded, as ComfyUI does (its tensors are views of the
  // mmap). On unified memory the mapping and the device copy then hold every
  // weight twice (ComfyUI #10896). Off: the engine's own choice, which drops
  // the mapping and, on unified memory, the page cache after each load.
  bool hold_mapping = false;
  // The loading regime (LoadModeRule): the trace's own modes by default.
  LoadModeRule load_modes = LoadModeRule::kAsTraced;
  // Device copies of models no handle holds are freed when a prompt ends
  // (ComfyUI's --disable-smart-memory); host copies follow `eviction`.
  bool free_device_after_prompt = false;
};

// Derived limits. Every one is a hard cap the engine keeps.
struct Budgets {
  Bytes host_limit_bytes = 0;    // RAM the engine may hold (pageable+pinned[+device if unified])
  Bytes device_limit_bytes = 0;  // device bytes the engine may hold
  Bytes pin_budget_bytes = 0;    // page-locked bytes
  Bytes ram_cache_bytes = 0;     // host copies of models kept for reuse
  bool unified = false;
};

// Checks a policy's numbers; the message names the field.
Status ValidatePolicy(const Policy& policy);
Status ValidateMachine(const MachineLimits& machine);

// Rules (sources in traces/FORMAT.md):
//  pin budget auto = max(40% RAM, min(90% RAM, RAM - 4 GiB))   (ComfyUI, non-Windows)
//  RAM cache auto  = clamp(75% RAM, 12 GiB, 96 GiB)  (ComfyUI PR #13802's
//                    inactive --cache-ram default), never above the host limit
//  unified: device and host limits are the same pool.
Budgets ComputeBudgets(const MachineLimits& machine, const Policy& policy);

// True when the eviction policy keeps host copies of evicted models.
inline bool KeepsHostCopies(EvictionKind kind) { return kind != EvictionKind::kDrop; }

}  // namespace residency::engine
