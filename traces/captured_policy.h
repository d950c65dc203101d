// The policy a captured server ran with (`--policy captured`): a bundled
// preset chosen by the server's version and device, changed by each memory
// flag it was started with. The table of flags and what each changes is
// data (ComfyFlags()), shown in docs/CAPTURE.md; a test keeps the two equal.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "runtime/base/status.h"
#include "runtime/engine/policy.h"
#include "traces/trace.h"

namespace residency::traces {

// One ComfyUI memory flag: how many values it takes and what it changes.
struct ServerFlag {
  std::string_view name;  // "--cache-ram"
  int min_values = 0;
  int max_values = 0;
  std::string_view effect;  // in words, as docs/CAPTURE.md's table says it
};
const std::vector<ServerFlag>& ComfyFlags();

// One version range of ComfyUI and the preset that models it.
struct ServerEra {
  std::string_view from_version;  // first version of the era ("0.15.0")
  std::string_view preset;        // a bundled policy
  bool dynamic_available;         // dynamic VRAM exists (opt-in at least)
  bool dynamic_nvidia;            // dynamic VRAM is the default on NVIDIA
  bool dynamic_rocm;              // ... and on ROCm >= 7.14
  std::string_view why;           // the source of the boundary
};
const std::vector<ServerEra>& ComfyEras();

struct DerivedPolicy {
  engine::Policy policy;
  bool from_machine = false;         // derived from a machine record (else a named policy)
  std::string preset;                // the bundled preset it starts from
  std::string server;                // "ComfyUI 0.8.0"
  std::vector<std::string> flags;    // the flags applied, with their values, in order
  std::vector<std::string> changes;  // "--reserve-vram 1.5: device_reserve 1228 MiB -> 2355 MiB"
  std::vector<std::string> warnings; // unknown flags, bad values, flags with no effect here
  // The command line these settings amount to, e.g. "python main.py --cache-ram 32"
  std::string CommandLine() const;
  // "comfy-aug2026 + --cache-ram 32 (dynamic VRAM)"
  std::string Summary() const;
};

// From a machine record (its server version, device and flags); `preset`
// forces the base ("" picks it by version), and `extra_flags` are applied
// after the recorded ones (a candidate's flag change: a repeated flag
// replaces the recorded one; "!--flag" removes it).
Result<DerivedPolicy> PolicyFromMachine(const MachineRecord& machine, const std::string& preset = "",
                                        const std::vector<std::string>& extra_flags = {});

// True for "captured", "captured:PRESET".
bool IsCapturedPolicyName(const std::string& name);

// NAME or FILE as LoadPolicy takes it, or "captured" / "captured:PRESET"
// for a trace with a machine record (errors name `origin`). "auto" is
// "captured" for a trace with a machine record and ram-lru otherwise.
Result<DerivedPolicy> LoadPolicyForTrace(const std::string& name_or_path, const Trace& trace,
                                         const std::string& origin);

}  // namespace residency::traces
