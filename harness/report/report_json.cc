#include <cstdio>

#include "harness/report/report.h"

namespace residency::harness {

nlohmann::ordered_json ResultJson(const sim::SimResult& r) {
  nlohmann::ordered_json j;
  j["trace"] = r.trace;
  j["profile"] = r.profile;
  j["policy"] = r.policy;
  if (!r.policy_detail.empty()) j["policy_detail"] = r.policy_detail;
  j["seed"] = r.seed;
  j["makespan_ns"] = r.makespan_ns;
  j["load_ns"] = r.load_ns;
  j["disk_read_bytes"] = r.tally.disk_read_bytes;
  j["page_cache_read_bytes"] = r.tally.page_cache_read_bytes;
  j["h2d_bytes"] = r.tally.h2d_bytes;
  j["d2h_bytes"] = r.tally.d2h_bytes;
  j["spill_write_bytes"] = r.tally.spill_write_bytes;
  j["ram_cache_hits"] = r.tally.ram_cache_hits;
  j["device_hits"] = r.tally.device_hits;
  j["disk_loads"] = r.tally.disk_loads;
  j["page_cache_loads"] = r.tally.page_cache_loads;
  j["spill_loads"] = r.tally.spill_loads;
  j["pin_fallbacks"] = r.tally.pin_fallbacks;
  j["finalizers"] = r.tally.finalizers;
  j["peak_host_bytes"] = r.tally.peak_host_bytes;
  j["peak_pinned_bytes"] = r.tally.peak_pinned_bytes;
  j["peak_device_bytes"] = r.tally.peak_device_bytes;
  j["peak_page_cache_bytes"] = r.peak_page_cache_bytes;
  j["peak_ram_bytes"] = r.peak_ram_bytes;
  if (r.unified) j["peak_unified_bytes"] = r.peak_unified_bytes;
  j["oom"] = r.oom.happened;
  if (r.oom.happened) {
    j["oom_detail"] = {{"time_ns", r.oom.time_ns}, {"message", r.oom.message}, {"holders", r.oom.holders}};
  }
  j["violations"] = r.violations;
  j["failed_ops"] = r.tally.failed_ops;
  nlohmann::ordered_json ev = nlohmann::ordered_json::object();
  for (const auto& [key, s] : r.tally.evictions) ev[key] = {{"count", s.count}, {"bytes", s.bytes}};
  j["evictions"] = ev;
  nlohmann::ordered_json prompts = nlohmann::ordered_json::array();
  for (const sim::PromptTiming& p : r.prompts) {
    nlohmann::ordered_json pj;
    pj["prompt"] = p.prompt;
    pj["begin_ns"] = p.begin_ns;
    pj["wall_ns"] = p.wall_ns();
    pj["disk_read_bytes"] = p.disk_read_bytes;
    if (p.measured_wall_ns >= 0) pj["measured_wall_ns"] = p.measured_wall_ns;
    if (p.measured_outcome != engine::PromptOutcome::kOk)
      pj["measured_status"] = std::string(engine::ToString(p.measured_outcome));
    pj["failed"] = p.failed();
    pj["finished"] = p.finished();
    if (p.failed()) pj["failed_ops"] = p.failed_ops;
    prompts.push_back(pj);
  }
  j["prompts"] = prompts;
  char hash[32];
  std::snprintf(hash, sizeof hash, "%016llx", static_cast<unsigned long long>(r.event_log_hash));
  j["event_log_hash"] = hash;
  j["events"] = r.events;
  j["commands"] = r.tally.commands;
  return j;
}

}  // namespace residency::harness
