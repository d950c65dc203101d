#include "traces/policy_file.h"
#include "runtime/io/whole_file.h"

#include "traces/json_fields.h"

#include "runtime/base/input_text.h"

namespace residency::traces {

Result<engine::Policy> ParsePolicy(const std::string& text, const std::string& origin) {
  RESIDENCY_ASSIGN_OR_RETURN(nlohmann::json j, ParseJsonObject(text, origin));
  JsonFields f(j, origin);
  RESIDENCY_RETURN_IF_ERROR(f.Allow(
      {"name", "description", "loader", "eviction", "read_threads", "chunk", "staging_buffers",
       "staging", "pin_budget", "ram_cache", "host_headroom", "device_reserve", "pin_hysteresis",
       "cache_hysteresis", "prefault_before_pin", "drop_page_cache_after_load", "direct_io", "hold_mapping",
       "load_mode", "free_device_after_prompt", "sources"}));
  engine::Policy p;
  std::string description, loader, eviction;
  RESIDENCY_RETURN_IF_ERROR(f.String("name", p.name, true));
  RESIDENCY_RETURN_IF_ERROR(f.String("description", description, false));
  RESIDENCY_RETURN_IF_ERROR(f.String("loader", loader, true));
  if (!engine::ParseLoaderKind(loader, p.loader))
    return InvalidArgument(f.Where("loader") + ": unknown loader '" + Printable(loader) +
                           "' (known: mmap-pageable, read-into, threaded-pinned)");
  RESIDENCY_RETURN_IF_ERROR(f.String("eviction", eviction, true));
  if (!engine::ParseEvictionKind(eviction, p.eviction))
    return InvalidArgument(f.Where("eviction") + ": unknown eviction '" + Printable(eviction) +
                           "' (known: drop, ram-lru, ram-cost-aware, spill)");
  RESIDENCY_RETURN_IF_ERROR(f.Int("read_threads", p.read_threads, 1, 256));
  RESIDENCY_RETURN_IF_ERROR(f.Size("chunk", p.chunk_bytes, false));
  RESIDENCY_RETURN_IF_ERROR(f.Int("staging_buffers", p.staging_buffers, 1, 64));
  RESIDENCY_RETURN_IF_ERROR(f.Size("staging", p.staging_bytes, false));
  for (auto [key, field] : {std::pair{"pin_budget", &p.pin_budget_bytes},
                            std::pair{"ram_cache", &p.ram_cache_bytes}}) {
    if (f.Has(key) && f.at(key).is_string() && f.at(key).get<std::string>() == "auto") {
      *field = -1;
    } else {
      RESIDENCY_RETURN_IF_ERROR(f.Size(key, *field, false));
    }
  }
  RESIDENCY_RETURN_IF_ERROR(f.Size("host_headroom", p.host_headroom_bytes, false));
  RESIDENCY_RETURN_IF_ERROR(f.Size("device_reserve", p.device_reserve_bytes, false));
  RESIDENCY_RETURN_IF_ERROR(f.Size("pin_hysteresis", p.pin_hysteresis_bytes, false));
  RESIDENCY_RETURN_IF_ERROR(f.Size("cache_hysteresis", p.cache_hysteresis_bytes, false));
  RESIDENCY_RETURN_IF_ERROR(f.Bool("prefault_before_pin", p.prefault_before_pin));
  RESIDENCY_RETURN_IF_ERROR(f.Bool("drop_page_cache_after_load", p.drop_page_cache_after_load));
  RESIDENCY_RETURN_IF_ERROR(f.Bool("hold_mapping", p.hold_mapping));
  RESIDENCY_RETURN_IF_ERROR(f.Bool("direct_io", p.direct_io));
  RESIDENCY_RETURN_IF_ERROR(f.Bool("free_device_after_prompt", p.free_device_after_prompt));
  if (f.Has("load_mode")) {
    std::string rule;
    RESIDENCY_RETURN_IF_ERROR(f.String("load_mode", rule, true));
    if (!engine::ParseLoadModeRule(rule, p.load_modes))
      return InvalidArgument(f.Where("load_mode") + ": unknown load_mode '" + Printable(rule) +
                             "' (known: as-traced, dynamic, classic, novram)");
  }
  std::map<std::string, std::string> sources;  // checked, not kept: notes for people
  RESIDENCY_RETURN_IF_ERROR(f.Sources(sources));
  Status valid = engine::ValidatePolicy(p);
  if (!valid.ok()) return InvalidArgument(origin + ": " + valid.message());
  return p;
}

Result<engine::Policy> ReadPolicyFile(const std::string& path) {
  RESIDENCY_ASSIGN_OR_RETURN(std::string text, io::ReadWholeFile(path));
  return ParsePolicy(text, path);
}

std::string WritePolicy(const engine::Policy& p) {
  nlohmann::ordered_json j;
  j["name"] = p.name;
  j["loader"] = std::string(engine::ToString(p.loader));
  j["eviction"] = std::string(engine::ToString(p.eviction));
  j["read_threads"] = p.read_threads;
  j["chunk"] = p.chunk_bytes;
  j["staging_buffers"] = p.staging_buffers;
  j["staging"] = p.staging_bytes;
  j["pin_budget"] = p.pin_budget_bytes < 0 ? nlohmann::ordered_json("auto") : nlohmann::ordered_json(p.pin_budget_bytes);
  j["ram_cache"] = p.ram_cache_bytes < 0 ? nlohmann::ordered_json("auto") : nlohmann::ordered_json(p.ram_cache_bytes);
  j["host_headroom"] = p.host_headroom_bytes;
  j["device_reserve"] = p.device_reserve_bytes;
  j["pin_hysteresis"] = p.pin_hysteresis_bytes;
  j["cache_hysteresis"] = p.cache_hysteresis_bytes;
  j["prefault_before_pin"] = p.prefault_before_pin;
  j["drop_page_cache_after_load"] = p.drop_page_cache_after_load;
  j["hold_mapping"] = p.hold_mapping;
  j["direct_io"] = p.direct_io;
  // Written only when set, so policies written before these fields existed
  // keep their bytes (and their content hashes in results databases).
  if (p.load_modes != engine::LoadModeRule::kAsTraced) j["load_mode"] = std::string(engine::ToString(p.load_modes));
  if (p.free_device_after_prompt) j["free_device_after_prompt"] = true;
  return j.dump(2) + "\n";
}

}  // namespace residency::traces
