// What one run did, counted from the engine's Outbox traffic in the same way
// whoever carries the commands out: the simulator and the real executor both
// feed a RunTally, and reports, metrics, the results store and fidelity read
// its figures. Hits, loads by source, evictions by tier and reason, every
// notice by kind, failed ops, command times and the budgets in force come
// from the engine; the bytes moved and the memory peaks are the executor's
// to add (only it sees them).
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "runtime/engine/commands.h"
#include "runtime/engine/policy.h"

namespace residency::engine {

struct EvictionStat {
  std::int64_t count = 0;
  Bytes bytes = 0;
};

struct RunTally {
  Budgets budgets;  // in force for the run
  std::map<NoticeKind, std::int64_t> notices;  // every notice, by kind
  std::int64_t ram_cache_hits = 0;
  std::int64_t device_hits = 0;
  std::int64_t disk_loads = 0;        // loads that read some bytes from the disk
  std::int64_t page_cache_loads = 0;  // loads whose file reads all hit the page cache
  std::int64_t spill_loads = 0;
  std::int64_t pin_fallbacks = 0;     // pinned memory wanted, pageable used
  std::int64_t finalizers = 0;
  std::map<std::string, EvictionStat> evictions;  // "tier/reason"
  std::vector<std::string> failed_ops;            // "op N (kind): STATUS"
  CommandTimesByPrompt command_times;             // issue to completion, per prompt and kind
  std::uint64_t commands = 0;                     // commands carried out
  std::int64_t host_pressure_signals = 0;         // times the engine heard free RAM was short
  // The executor's own figures.
  Bytes disk_read_bytes = 0;        // read from model files (the real executor: all file reads)
  Bytes page_cache_read_bytes = 0;  // of file reads, served by the page cache (simulated only)
  Bytes h2d_bytes = 0;
  Bytes d2h_bytes = 0;
  Bytes spill_write_bytes = 0;
  Bytes peak_host_bytes = 0;  // pageable + pinned
  Bytes peak_pinned_bytes = 0;
  Bytes peak_device_bytes = 0;

  // Counts one Outbox's notices and finished ops.
  void Observe(const Outbox& out);
  // A load counted as a disk load read nothing from the disk: the page cache
  // served it (the simulator knows this when the load ends).
  void ServedByPageCache();
  std::int64_t Notices(NoticeKind kind) const;
};

// "op N (kind): STATUS", the one way a failed op is named.
std::string DescribeFailedOp(const OpResult& r);

}  // namespace residency::engine
