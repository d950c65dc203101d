// libFuzzer target: any bytes as recorded real runs (`fidelity --real-runs`).
// Errors are values naming the origin; accepted runs written back parse
// again to the same text.
#include <cstddef>
#include <cstdint>
#include <string>

#include "harness/fidelity/recorded_runs.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace residency::harness;
  const std::string text(reinterpret_cast<const char*>(data), size);
  auto runs = ParseRecordedRuns(text, "fuzz.json");
  if (!runs.ok()) {
    if (runs.status().message().rfind("fuzz.json", 0) != 0) __builtin_trap();
    return 0;
  }
  const std::string written = WriteRecordedRuns(runs.value());
  auto again = ParseRecordedRuns(written, "rewritten.json");
  if (!again.ok() || WriteRecordedRuns(again.value()) != written) __builtin_trap();
  return 0;
}
