#include "traces/captured_policy.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <optional>

#include "traces/bundled.h"

namespace residency::traces {
namespace {

using engine::kGiB;
using engine::kMiB;

// ComfyUI's minimum_inference_memory() without its reserve: 0.8 GiB; the
// reserve (EXTRA_RESERVED_VRAM, 400 MiB) is what --reserve-vram replaces.
constexpr Bytes kInferenceFloor = static_cast<Bytes>(0.8 * static_cast<double>(kGiB));

struct Version {
  int major = 0, minor = 0, patch = 0;
  auto operator<=>(const Version&) const = default;
};

// "ComfyUI 0.38.1" or "0.8.0" -> {0, 38, 1}; nothing when no version is there.
std::optional<Version> ParseVersion(std::string_view text) {
  const std::size_t digit = text.find_first_of("0123456789");
  if (digit == std::string_view::npos) return std::nullopt;
  Version v;
  int* parts[] = {&v.major, &v.minor, &v.patch};
  std::size_t i = digit;
  for (int k = 0; k < 3; ++k) {
    if (i >= text.size() || text[i] < '0' || text[i] > '9') {
      if (k == 0) return std::nullopt;
      break;
    }
    int n = 0;
    while (i < text.size() && text[i] >= '0' && text[i] <= '9' && n < 100000) n = n * 10 + (text[i++] - '0');
    *parts[k] = n;
    if (i < text.size() && text[i] == '.') ++i;
    else break;
  }
  return v;
}

std::string GiBText(double gib) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%g GiB", gib);
  return buf;
}

struct ParsedFlag {
  std::string name;
  std::vector<std::string> values;
};

const ServerFlag* FindFlag(std::string_view name) {
  for (const ServerFlag& f : ComfyFlags())
    if (f.name == name) return &f;
  return nullptr;
}

bool IsNumber(const std::string& s, double* out = nullptr) {
  if (s.empty() || s.size() > 32) return false;
  char* end = nullptr;
  const double v = std::strtod(s.c_str(), &end);
  if (end != s.c_str() + s.size() || !std::isfinite(v)) return false;
  if (out) *out = v;
  return true;
}

// ["--reserve-vram", "1.5", "--cache-ram=8"] -> flags with their values; a
// value is a following token that is not a flag, up to the flag's maximum
// (an unknown flag takes the non-flag tokens that follow it).
std::vector<ParsedFlag> ParseFlags(const std::vector<std::string>& tokens, std::vector<std::string>* warnings) {
  std::vector<ParsedFlag> out;
  for (std::size_t i = 0; i < tokens.size(); ++i) {
    std::string tok = tokens[i];
    if (tok.rfind("--", 0) != 0) {
      warnings->push_back("flag value '" + tok.substr(0, 64) + "' follows no flag that takes it; ignored");
      continue;
    }
    ParsedFlag f;
    const std::size_t eq = tok.find('=');
    if (eq != std::string::npos) {
      f.name = tok.substr(0, eq);
      f.values.push_back(tok.substr(eq + 1));
    } else {
      f.name = tok;
    }
    const ServerFlag* known = FindFlag(f.name);
    const int max = known ? known->max_values : 64;
    while (static_cast<int>(f.values.size()) < max && i + 1 < tokens.size() && tokens[i + 1].rfind("--", 0) != 0 &&
           (known || true)) {
      // Optional values are numbers (argparse's nargs='?'/'*' with type=float).
      if (known && known->min_values == 0 && !IsNumber(tokens[i + 1])) break;
      f.values.push_back(tokens[++i]);
    }
    out.push_back(std::move(f));
  }
  return out;
}

// Applies a candidate's changes to the recorded flags: a flag given again
// replaces every earlier use of it, "!--flag" removes it.
std::vector<std::string> MergeFlags(const std::vector<std::string>& recorded, const std::vector<std::string>& extra,
                                    std::vector<std::string>* warnings) {
  std::vector<ParsedFlag> flags = ParseFlags(recorded, warnings);
  std::vector<std::string> removed;
  std::vector<std::string> additions;
  for (const std::string& e : extra) {
    if (e.rfind("!--", 0) == 0) {
      removed.push_back(e.substr(1));
    } else {
      additions.push_back(e);
    }
  }
  std::vector<ParsedFlag> added = ParseFlags(additions, warnings);
  for (const ParsedFlag& a : added) removed.push_back(a.name);
  flags.erase(std::remove_if(flags.begin(), flags.end(),
                             [&](const ParsedFlag& f) {
                               return std::find(removed.begin(), removed.end(), f.name) != removed.end();
                             }),
              flags.end());
  flags.insert(flags.end(), added.begin(), added.end());
  std::vector<std::string> out;
  for (const ParsedFlag& f : flags) {
    out.push_back(f.name);
    out.insert(out.end(), f.values.begin(), f.values.end());
  }
  return out;
}

bool Has(const std::vector<ParsedFlag>& flags, std::string_view name) {
  return std::any_of(flags.begin(), flags.end(), [&](const ParsedFlag& f) { return f.name == name; });
}

// The device classes ComfyUI tells apart for memory.
struct DeviceClass {
  bool cpu = false;     // --cpu or a CPU device: no device copies, nothing pinned
  bool apple = false;   // mps: unified, nothing pinned
  bool nvidia = false;  // CUDA on an NVIDIA card (dynamic VRAM capable)
  bool rocm = false;    // ROCm
  bool rocm_dynamic = false;  // ROCm >= 7.14 (dynamic VRAM capable)
  bool torch_dynamic = true;  // torch >= 2.8 (dynamic VRAM needs it)
};

DeviceClass ClassifyDevice(const MachineRecord& m) {
  DeviceClass d;
  const std::string& dev = m.device;
  d.cpu = dev == "cpu" || dev.rfind("cpu", 0) == 0;
  d.apple = dev == "mps" || dev.rfind("mps", 0) == 0;
  const std::size_t rocm = m.torch.find("rocm");
  d.rocm = rocm != std::string::npos || dev.find("AMD") != std::string::npos || dev.find("Radeon") != std::string::npos;
  d.nvidia = !d.cpu && !d.apple && !d.rocm &&
             (dev.find("NVIDIA") != std::string::npos || dev.rfind("cuda", 0) == 0);
  if (rocm != std::string::npos) {
    if (auto v = ParseVersion(std::string_view(m.torch).substr(rocm + 4))) d.rocm_dynamic = *v >= Version{7, 14, 0};
  }
  if (auto tv = ParseVersion(m.torch)) d.torch_dynamic = *tv >= Version{2, 8, 0};
  return d;
}

}  // namespace

const std::vector<ServerFlag>& ComfyFlags() {
  static const std::vector<ServerFlag> kFlags = {
      {"--lowvram", 0, 0, "classic loading already loads in part what does not fit: no change; none with dynamic VRAM"},
      {"--novram", 0, 0, "dynamic VRAM off; load_mode novram (nothing resident, every step streams the weights)"},
      {"--highvram", 0, 0, "dynamic VRAM off; models stay on the device until memory is needed (the engine's rule)"},
      {"--normalvram", 0, 0, "no change (the default)"},
      {"--gpu-only", 0, 0, "dynamic VRAM off; otherwise as --highvram"},
      {"--cpu", 0, 0, "dynamic VRAM off; pin_budget 0 (nothing is pinned on a CPU device)"},
      {"--disable-mmap", 0, 0,
       "mmap-pageable loader: read-into, hold_mapping off; the threaded (aimdo) loaders read files themselves: no change"},
      {"--mmap-torch-files", 0, 0, "no change (.ckpt/.pt files only)"},
      {"--cache-classic", 0, 0, "no change: models live until the trace's delete events, as captured"},
      {"--cache-lru", 1, 1, "no change: models live until the trace's delete events, as captured"},
      {"--cache-none", 0, 0, "ram_cache 0 (nothing is kept for reuse)"},
      {"--cache-ram", 0, 2,
       "A: host_headroom A GiB (RAM the cache keeps free); B: ram_cache = RAM - B GiB (inactive models kept while B GiB "
       "is free); no value: the preset's"},
      {"--reserve-vram", 1, 1, "device_reserve = 0.8 GiB + X GiB (replaces the 400 MiB EXTRA_RESERVED_VRAM)"},
      {"--vram-headroom", 1, 1, "dynamic VRAM: device_reserve + X GiB; without it: no change"},
      {"--disable-smart-memory", 0, 0, "free_device_after_prompt (idle models leave the device when a prompt ends)"},
      {"--async-offload", 0, 1,
       "comfy-13802: staging_buffers = N (one pin buffer per offload stream, 2 by default); other presets: no change"},
      {"--disable-async-offload", 0, 0, "staging_buffers 1 (no overlap of reads and copies)"},
      {"--disable-pinned-memory", 0, 0, "pin_budget 0"},
      {"--cpu-vae", 0, 0, "no change: the VAE's loads are as captured"},
      {"--high-ram", 0, 0, "pin_budget = RAM (capped by the host limit); implies --cache-classic"},
      {"--fast-disk", 0, 0, "dynamic VRAM: eviction drop, ram_cache 0 (offloaded weights re-read from disk); without it: no change"},
      {"--disable-fast-disk", 0, 0, "cancels --fast-disk"},
      {"--disable-dynamic-vram", 0, 0, "load_mode classic (full where it fits, partial otherwise)"},
      {"--enable-dynamic-vram", 0, 0, "load_mode dynamic, whatever the device (ComfyUI >= 0.12)"},
      {"--disable-nvml-pressure", 0, 0, "no change (where aimdo reads VRAM pressure from)"},
      {"--cuda-device", 1, 1, "no change (which GPU)"},
      {"--default-device", 1, 1, "no change (which GPU)"},
      {"--cuda-malloc", 0, 0, "no change (the allocator backend)"},
      {"--disable-cuda-malloc", 0, 0, "no change (the allocator backend)"},
  };
  return kFlags;
}

const std::vector<ServerEra>& ComfyEras() {
  // Versions and dates: the ComfyUI changelogs and PR threads listed in
  // docs/CAPTURE.md ("The captured policy"); where a release is inferred
  // from merge dates, the table there says so.
  static const std::vector<ServerEra> kEras = {
      {"0.0.0", "comfy-classic", false, false, false,
       "before dynamic VRAM: ModelPatcher loads, mmap + page faults, no pinned staging"},
      {"0.12.0", "comfy-classic", true, false, false,
       "dynamic VRAM added, opt-in (PR #11845, merged 2026-02-01; release inferred)"},
      {"0.16.0", "comfy-classic", true, true, false,
       "v0.16.0 (2026-03-05): dynamic VRAM the default on NVIDIA (PR #12658)"},
      {"0.23.0", "comfy-13802", true, true, false,
       "v0.23.0 (2026-06-01): PR #13802's threaded disk->pin loader, two-value --cache-ram, the RAM-pressure cache "
       "the default"},
      {"0.30.0", "comfy-aug2026", true, true, false,
       "v0.30.0 (~2026-08-01): the weights-loaded RAM tier (PR #15027); aimdo's 3 x 64 MiB staging ring"},
      {"0.34.0", "comfy-aug2026", true, true, true,
       "v0.34.0 (2026-08): dynamic VRAM the default on ROCm >= 7.14 (PR #15633)"},
  };
  return kEras;
}

std::string DerivedPolicy::CommandLine() const {
  std::string s = "python main.py";
  for (const std::string& f : flags) s += " " + f;
  return s;
}

std::string DerivedPolicy::Summary() const {
  std::string s = preset;
  std::string joined;
  for (const std::string& f : flags) joined += (joined.empty() ? "" : " ") + f;
  if (!joined.empty()) s += " + " + joined;
  s += policy.load_modes == engine::LoadModeRule::kDynamic ? " (dynamic VRAM)" : "";
  return s;
}

bool IsCapturedPolicyName(const std::string& name) { return name == "captured" || name.rfind("captured:", 0) == 0; }

Result<DerivedPolicy> PolicyFromMachine(const MachineRecord& machine, const std::string& preset,
                                        const std::vector<std::string>& extra_flags) {
  DerivedPolicy d;
  d.from_machine = true;
  d.server = machine.server;
  const std::optional<Version> version = ParseVersion(machine.server);
  const ServerEra* era = &ComfyEras().back();
  if (!version) {
    d.warnings.push_back("server version '" + machine.server.substr(0, 64) +
                         "' is not a ComfyUI version; taking the newest era (" + std::string(era->preset) + ")");
  } else {
    for (const ServerEra& e : ComfyEras())
      if (*version >= *ParseVersion(e.from_version)) era = &e;
  }
  d.preset = preset.empty() ? std::string(era->preset) : preset;
  RESIDENCY_ASSIGN_OR_RETURN(d.policy, LoadPolicy(d.preset));
  engine::Policy& p = d.policy;
  p.name = "captured";

  d.flags = extra_flags.empty() ? machine.flags : MergeFlags(machine.flags, extra_flags, &d.warnings);
  const std::vector<ParsedFlag> flags = ParseFlags(d.flags, &d.warnings);
  const DeviceClass dev = ClassifyDevice(machine);
  const auto change = [&](const std::string& flag, const std::string& what) { d.changes.push_back(flag + ": " + what); };

  // The loading regime: dynamic VRAM where the era, device and torch have it.
  bool dynamic = dev.torch_dynamic && ((era->dynamic_nvidia && dev.nvidia) || (era->dynamic_rocm && dev.rocm_dynamic));
  for (const char* off : {"--disable-dynamic-vram", "--highvram", "--gpu-only", "--novram", "--cpu"})
    if (Has(flags, off)) dynamic = false;
  if (Has(flags, "--enable-dynamic-vram")) {
    if (era->dynamic_available) {
      dynamic = true;
    } else {
      d.warnings.push_back("--enable-dynamic-vram: " + machine.server + " has no dynamic VRAM (ComfyUI >= 0.12); ignored");
    }
  }
  if (dev.cpu || dev.apple) dynamic = false;
  p.load_modes = dynamic ? engine::LoadModeRule::kDynamic : engine::LoadModeRule::kClassic;
  d.changes.push_back(std::string("loading: ") + (dynamic ? "dynamic VRAM (load_mode dynamic)" : "classic (load_mode classic)") +
                      " for " + (machine.server.empty() ? std::string("an unnamed server") : machine.server) + " on " +
                      (machine.device.empty() ? std::string("an unnamed device") : machine.device));
  if ((dev.cpu || dev.apple) && p.pin_budget_bytes != 0) {
    p.pin_budget_bytes = 0;
    d.changes.push_back("device " + machine.device + ": pin_budget 0 (ComfyUI pins only for NVIDIA and AMD GPUs)");
  }

  const bool fast_disk = Has(flags, "--fast-disk") && !Has(flags, "--disable-fast-disk");
  for (const ParsedFlag& f : flags) {
    const ServerFlag* known = FindFlag(f.name);
    std::string shown = f.name;
    for (const std::string& v : f.values) shown += " " + v;
    if (!known) {
      d.warnings.push_back("unknown server flag " + shown.substr(0, 96) +
                           ": not in the flag table (docs/CAPTURE.md), so it changes nothing in the replay");
      continue;
    }
    if (static_cast<int>(f.values.size()) < known->min_values) {
      d.warnings.push_back(f.name + " needs a value; ignored");
      continue;
    }
    std::vector<double> nums;
    bool numeric = true;
    for (const std::string& v : f.values) {
      double x = 0;
      numeric = numeric && IsNumber(v, &x) && x >= 0;
      nums.push_back(x);
    }
    if (!numeric && f.name != "--cuda-device" && f.name != "--default-device") {
      d.warnings.push_back(shown + ": values must be non-negative numbers; ignored");
      continue;
    }
    const std::string n = f.name;
    if (n == "--novram") {
      p.load_modes = engine::LoadModeRule::kNoVram;
      change(shown, "load_mode novram");
    } else if (n == "--cpu") {
      p.pin_budget_bytes = 0;
      change(shown, "pin_budget 0");
    } else if (n == "--disable-mmap") {
      if (p.loader == engine::LoaderKind::kMmapPageable) {
        p.loader = engine::LoaderKind::kReadInto;
        p.hold_mapping = false;
        change(shown, "loader read-into, hold_mapping off");
      } else {
        change(shown, "no change (the " + std::string(engine::ToString(p.loader)) + " loader maps nothing)");
      }
    } else if (n == "--cache-none") {
      p.ram_cache_bytes = 0;
      change(shown, "ram_cache 0");
    } else if (n == "--cache-ram") {
      if (!nums.empty()) {
        p.host_headroom_bytes = static_cast<Bytes>(nums[0] * static_cast<double>(kGiB));
        change(shown, "host_headroom " + GiBText(nums[0]));
      }
      if (nums.size() > 1) {
        const Bytes keep_free = static_cast<Bytes>(nums[1] * static_cast<double>(kGiB));
        p.ram_cache_bytes = std::max<Bytes>(0, machine.ram - keep_free);
        change(shown, "ram_cache " + engine::FormatMiB(p.ram_cache_bytes) + " (RAM - " + GiBText(nums[1]) + ")");
      }
      if (nums.empty()) change(shown, "no change (the preset's RAM cache)");
    } else if (n == "--reserve-vram") {
      p.device_reserve_bytes = kInferenceFloor + static_cast<Bytes>(nums[0] * static_cast<double>(kGiB));
      change(shown, "device_reserve " + engine::FormatMiB(p.device_reserve_bytes));
    } else if (n == "--vram-headroom") {
      if (p.load_modes == engine::LoadModeRule::kDynamic) {
        p.device_reserve_bytes += static_cast<Bytes>(nums[0] * static_cast<double>(kGiB));
        change(shown, "device_reserve " + engine::FormatMiB(p.device_reserve_bytes));
      } else {
        change(shown, "no change (dynamic VRAM is off)");
      }
    } else if (n == "--disable-smart-memory") {
      p.free_device_after_prompt = true;
      change(shown, "free_device_after_prompt");
    } else if (n == "--async-offload") {
      if (d.preset == "comfy-13802") {
        p.staging_buffers = std::clamp(nums.empty() ? 2 : static_cast<int>(nums[0]), 1, 64);
        change(shown, "staging_buffers " + std::to_string(p.staging_buffers));
      } else {
        change(shown, "no change (" + d.preset + " has no per-stream pin buffers)");
      }
    } else if (n == "--disable-async-offload") {
      p.staging_buffers = 1;
      change(shown, "staging_buffers 1");
    } else if (n == "--disable-pinned-memory") {
      p.pin_budget_bytes = 0;
      change(shown, "pin_budget 0");
    } else if (n == "--high-ram") {
      p.pin_budget_bytes = machine.ram;
      change(shown, "pin_budget " + engine::FormatMiB(machine.ram) + " (RAM; the host limit caps it)");
    } else if (n == "--fast-disk") {
      if (fast_disk && p.load_modes == engine::LoadModeRule::kDynamic) {
        p.eviction = engine::EvictionKind::kDrop;
        p.ram_cache_bytes = 0;
        change(shown, "eviction drop, ram_cache 0");
      } else {
        change(shown, fast_disk ? "no change (dynamic VRAM is off)" : "no change (--disable-fast-disk)");
      }
    } else if (n == "--disable-dynamic-vram" || n == "--enable-dynamic-vram" || n == "--highvram" ||
               n == "--gpu-only") {
      change(shown, std::string("load_mode ") + std::string(engine::ToString(p.load_modes)));
    } else {
      change(shown, "no change");  // the table says why (--lowvram, --cache-classic, --cuda-device, ...)
    }
  }
  Status valid = engine::ValidatePolicy(p);
  if (!valid.ok()) return InvalidArgument("captured policy: " + valid.message());
  return d;
}

Result<DerivedPolicy> LoadPolicyForTrace(const std::string& name_or_path, const Trace& trace,
                                         const std::string& origin) {
  const bool captured = IsCapturedPolicyName(name_or_path);
  if (!captured && name_or_path != "auto") {
    DerivedPolicy d;
    RESIDENCY_ASSIGN_OR_RETURN(d.policy, LoadPolicy(name_or_path));
    d.preset = d.policy.name;
    return d;
  }
  if (!trace.header.machine) {
    if (name_or_path == "auto") {
      DerivedPolicy d;
      RESIDENCY_ASSIGN_OR_RETURN(d.policy, LoadPolicy("ram-lru"));
      d.preset = d.policy.name;
      return d;
    }
    return InvalidArgument(origin + ": --policy " + name_or_path +
                           " needs a trace with a machine record in its header (a captured trace); "
                           "this one has none (source '" + trace.header.source + "')");
  }
  const std::string preset = name_or_path.rfind("captured:", 0) == 0 ? name_or_path.substr(9) : "";
  return PolicyFromMachine(*trace.header.machine, preset);
}

}  // namespace residency::traces
