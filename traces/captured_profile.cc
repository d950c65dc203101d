#include "traces/captured_profile.h"

#include <algorithm>

#include "traces/bundled.h"

namespace residency::traces {

std::string DefaultCapturedBase(const MachineRecord& machine) {
  // A CPU device pins nothing and copies nothing over PCIe: its own base.
  if (machine.device == "cpu" || machine.device.rfind("cpu", 0) == 0) return "cpu-host";
  return machine.unified ? "dgx-spark-128g" : "rtx4090-64g";
}

Profile ProfileFromMachine(const MachineRecord& machine, const Profile& base, const std::string& origin) {
  Profile p = base;
  p.name = "captured";
  p.description = "the machine " + origin + " was captured on" +
                  (machine.device.empty() ? std::string() : " (" + machine.device + ")") + ", on " + base.name +
                  "'s rates";
  p.ram_bytes = machine.ram;
  p.unified = machine.unified;
  p.vram_bytes = machine.unified ? 0 : machine.vram;
  if (machine.cpu_cores > 0) p.cpu_cores = machine.cpu_cores;
  p.swap_bytes = 0;
  // The base's OS reserve, but never more than an eighth of this machine's RAM.
  p.os_reserve_bytes = std::min(base.os_reserve_bytes, machine.ram / 8);
  p.sources.clear();
  const std::string from_trace = origin + ": header machine record";
  for (const char* f : {"ram", "vram", "unified", "cpu_cores"}) p.sources[f] = from_trace;
  if (machine.cpu_cores <= 0) p.sources["cpu_cores"] = "bundled profile " + base.name + " (not recorded)";
  p.sources["os_reserve"] = "bundled profile " + base.name + ", at most RAM / 8";
  p.sources["rates"] = "bundled profile " + base.name + ": a capture records sizes, not speeds";
  if (machine.unified) {
    // Apple's Metal allocations take clean page cache as macOS reclaims it;
    // NVIDIA's unified boxes count free RAM only (ComfyUI #10896). Others keep the base's.
    const bool apple = machine.device == "mps";
    const bool nvidia = machine.device.find("NVIDIA") != std::string::npos || machine.device.rfind("cuda", 0) == 0;
    if (apple || nvidia) {
      p.device_reclaims_page_cache = apple;
      p.sources["device_reclaims_page_cache"] =
          from_trace + (apple ? " (mps: macOS reclaims clean page cache for Metal)"
                              : " (NVIDIA unified: the CUDA allocator counts free RAM only, ComfyUI #10896)");
    } else if (!base.unified) {
      p.device_reclaims_page_cache = true;
    }
  }
  return p;
}

Result<Profile> LoadProfileForTrace(const std::string& name_or_path, const Trace& trace,
                                    const std::string& origin) {
  const bool captured = name_or_path == "captured" || name_or_path.rfind("captured:", 0) == 0;
  if (!captured && name_or_path != "auto") return LoadProfile(name_or_path);
  if (!trace.header.machine) {
    if (name_or_path == "auto") return LoadProfile("rtx4090-64g");
    return InvalidArgument(origin + ": --profile " + name_or_path +
                           " needs a trace with a machine record in its header (a captured trace); "
                           "this one has none (source '" + trace.header.source + "')");
  }
  const MachineRecord& m = *trace.header.machine;
  const std::string base_name =
      name_or_path.rfind("captured:", 0) == 0 ? name_or_path.substr(9) : DefaultCapturedBase(m);
  RESIDENCY_ASSIGN_OR_RETURN(Profile base, LoadProfile(base_name));
  return ProfileFromMachine(m, base, origin);
}

}  // namespace residency::traces
