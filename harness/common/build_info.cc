#include "harness/common/build_info.h"

#include <unistd.h>

#ifndef RESIDENCY_CODE_VERSION
#define RESIDENCY_CODE_VERSION "unknown"
#endif

namespace residency::harness {

std::string CodeVersion() { return RESIDENCY_CODE_VERSION; }

std::string HostName() {
  char buf[256] = {};
  if (gethostname(buf, sizeof buf - 1) != 0) return "unknown";
  return buf;
}

}  // namespace residency::harness
