#include "harness/store/run_figures.h"

namespace residency::store {

#define RESIDENCY_FIGURE(field) \
  FigureColumn { #field, [](const sim::SimResult& r) { return static_cast<std::int64_t>(r.field); } }
// A figure of the run's tally, stored under its own name (the column names predate the tally).
#define RESIDENCY_TALLY_FIGURE(field) \
  FigureColumn { #field, [](const sim::SimResult& r) { return static_cast<std::int64_t>(r.tally.field); } }

const std::vector<FigureColumn>& FigureColumns() {
  static const std::vector<FigureColumn> kColumns = {
      RESIDENCY_FIGURE(makespan_ns),          RESIDENCY_FIGURE(load_ns),
      RESIDENCY_TALLY_FIGURE(disk_read_bytes),      RESIDENCY_TALLY_FIGURE(page_cache_read_bytes),
      RESIDENCY_TALLY_FIGURE(h2d_bytes),            RESIDENCY_TALLY_FIGURE(d2h_bytes),
      RESIDENCY_TALLY_FIGURE(spill_write_bytes),    RESIDENCY_TALLY_FIGURE(ram_cache_hits),
      RESIDENCY_TALLY_FIGURE(device_hits),          RESIDENCY_TALLY_FIGURE(disk_loads),
      RESIDENCY_TALLY_FIGURE(spill_loads),          RESIDENCY_TALLY_FIGURE(pin_fallbacks),
      RESIDENCY_TALLY_FIGURE(finalizers),           RESIDENCY_TALLY_FIGURE(peak_host_bytes),
      RESIDENCY_TALLY_FIGURE(peak_pinned_bytes),    RESIDENCY_TALLY_FIGURE(peak_device_bytes),
      RESIDENCY_FIGURE(peak_page_cache_bytes), RESIDENCY_FIGURE(events),
      RESIDENCY_TALLY_FIGURE(commands),             RESIDENCY_FIGURE(peak_ram_bytes),
  };
  return kColumns;
}

#undef RESIDENCY_FIGURE
#undef RESIDENCY_TALLY_FIGURE

std::string Outcome(const sim::SimResult& r) {
  if (r.oom.happened) return "oom";
  if (!r.violations.empty()) return "violation";
  if (!r.tally.failed_ops.empty()) return "infeasible";
  return "ok";
}

}  // namespace residency::store
