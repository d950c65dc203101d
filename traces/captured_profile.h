// A profile for the machine a captured trace came from (`--profile captured`):
// RAM, VRAM, unified memory and cores from the trace header's machine record,
// every rate (disk, PCIe, memcpy, page-lock) from a bundled base profile, since
// a capture hook sees the machine's sizes but measures none of its speeds.
#pragma once

#include <string>

#include "traces/profile.h"
#include "traces/trace.h"

namespace residency::traces {

// The base whose rates a captured profile borrows: a discrete-GPU workstation,
// for a unified machine the DGX Spark, for a CPU device cpu-host (no
// page-locking, no PCIe; rates measured on the project's sandbox).
std::string DefaultCapturedBase(const MachineRecord& machine);

// `machine`'s sizes on `base`'s rates; the sources say which is which.
Profile ProfileFromMachine(const MachineRecord& machine, const Profile& base, const std::string& origin);

// NAME or FILE as LoadProfile takes it, plus "captured", "captured:BASE" and
// "auto" for a trace with a machine record ("auto" is a bundled default for
// a trace without one: rtx4090-64g). Errors name the trace.
Result<Profile> LoadProfileForTrace(const std::string& name_or_path, const Trace& trace,
                                    const std::string& origin);

}  // namespace residency::traces
