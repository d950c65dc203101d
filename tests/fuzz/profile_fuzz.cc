// libFuzzer target: any bytes as a profile. Errors are values naming the
// origin; an accepted profile written back parses again.
#include <cstddef>
#include <cstdint>
#include <string>

#include "traces/profile.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace residency::traces;
  const std::string text(reinterpret_cast<const char*>(data), size);
  auto profile = ParseProfile(text, "fuzz.json");
  if (!profile.ok()) {
    if (profile.status().message().rfind("fuzz.json", 0) != 0) __builtin_trap();
    return 0;
  }
  auto again = ParseProfile(WriteProfile(profile.value()), "rewritten.json");
  if (!again.ok()) __builtin_trap();
  (void)profile->Limits();
  return 0;
}
