#include "harness/store/run_figures.h"

namespace residency::store {

#define RESIDENCY_FIGURE(field) \
  FigureColumn { #field, [](const sim::SimResult& r) { return static_cast<std::int64_t>(r.field); } }

const std::vector<FigureColumn>& FigureColumns() {
  static const std::vector<FigureColumn> kColumns = {
      RESIDENCY_FIGURE(makespan_ns),          RESIDENCY_FIGURE(load_ns),
      RESIDENCY_FIGURE(disk_read_bytes),      RESIDENCY_FIGURE(page_cache_read_bytes),
      RESIDENCY_FIGURE(h2d_bytes),            RESIDENCY_FIGURE(d2h_bytes),
      RESIDENCY_FIGURE(spill_write_bytes),    RESIDENCY_FIGURE(ram_cache_hits),
      RESIDENCY_FIGURE(device_hits),          RESIDENCY_FIGURE(disk_loads),
      RESIDENCY_FIGURE(spill_loads),          RESIDENCY_FIGURE(pin_fallbacks),
      RESIDENCY_FIGURE(finalizers),           RESIDENCY_FIGURE(peak_host_bytes),
      RESIDENCY_FIGURE(peak_pinned_bytes),    RESIDENCY_FIGURE(peak_device_bytes),
      RESIDENCY_FIGURE(peak_page_cache_bytes), RESIDENCY_FIGURE(events),
      RESIDENCY_FIGURE(commands),             RESIDENCY_FIGURE(peak_ram_bytes),
  };
  return kColumns;
}

#undef RESIDENCY_FIGURE

std::string Outcome(const sim::SimResult& r) {
  if (r.oom.happened) return "oom";
  if (!r.violations.empty()) return "violation";
  if (!r.failed_ops.empty()) return "infeasible";
  return "ok";
}

}  // namespace residency::store
