// A machine profile: what the simulator needs to know about a machine.
// Read from JSON (schema in traces/FORMAT.md); every number can carry a
// source note. Units: bytes, bytes per second, nanoseconds.
#pragma once

#include <map>
#include <string>
#include <utility>
#include <vector>

#include "runtime/engine/policy.h"
#include "runtime/base/status.h"
#include "runtime/engine/types.h"

namespace residency::traces {

using engine::Bytes;
using engine::Nanos;

struct Profile {
  std::string name;
  std::string description;
  Bytes ram_bytes = 0;
  Bytes swap_bytes = 0;
  Bytes os_reserve_bytes = 0;
  Bytes vram_bytes = 0;
  bool unified = false;
  // Unified only: a device allocation may take RAM that clean page cache
  // holds; the kernel drops those pages, and a held mapping faults them back
  // from disk when touched (macOS does; DGX Spark's CUDA allocator counts only
  // free RAM and fails instead: ComfyUI #10896).
  bool device_reclaims_page_cache = true;
  int cpu_cores = 1;
  // Disk read throughput at a given number of concurrent requests; the
  // simulator interpolates between points and holds the last one.
  std::vector<std::pair<int, Bytes>> disk_read_bytes_per_second;
  // Optional: cold reads through the page cache (pread of uncached pages:
  // readahead and the kernel's copy included), by concurrency. They differ
  // from O_DIRECT's on many disks; empty: buffered reads use disk_read.
  std::vector<std::pair<int, Bytes>> disk_read_buffered_bytes_per_second;
  Nanos disk_read_latency_ns = 0;
  Bytes disk_write_bytes_per_second = 0;
  Bytes mmap_read_bytes_per_second = 0;  // one thread faulting a cold mapping
  Bytes pcie_h2d_pinned_bytes_per_second = 0;
  Bytes pcie_h2d_pageable_bytes_per_second = 0;
  Bytes pcie_d2h_bytes_per_second = 0;
  // Device copies are CPU memcpy (the host device backend), so they compete
  // with reads and prefaulting for cores; on a GPU they are DMA and do not.
  bool device_copies_on_cpu = false;
  Bytes memcpy_bytes_per_second_per_thread = 0;
  Nanos page_fault_ns = 0;  // first touch of one 4 KiB page
  Bytes prefault_bytes_per_second_per_thread = 0;
  Nanos register_ns_per_gib = 0;            // page-lock of prefaulted memory
  Nanos register_unfaulted_ns_per_gib = 0;  // page-lock that faults pages itself
  std::map<std::string, std::string> sources;  // field -> where the number comes from

  // Disk throughput at `concurrency` requests in flight.
  double DiskReadBytesPerSecond(int concurrency) const;
  // Cold buffered reads: disk_read_buffered where measured, else disk_read.
  double DiskReadBufferedBytesPerSecond(int concurrency) const;
  engine::MachineLimits Limits() const;
};

// Parses a profile; errors name `origin` (a file path) and the field.
Result<Profile> ParseProfile(const std::string& json_text, const std::string& origin);
Result<Profile> ReadProfileFile(const std::string& path);
std::string WriteProfile(const Profile& profile);

}  // namespace residency::traces
