// Which build produced a result and where it ran: stored with every run.
#pragma once

#include <string>

namespace residency::harness {

// "<project version>+<git commit>[-dirty]", fixed when CMake configured.
std::string CodeVersion();
std::string HostName();

}  // namespace residency::harness
