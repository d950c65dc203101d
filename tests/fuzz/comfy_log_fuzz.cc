// libFuzzer target: any text as a ComfyUI console log. The importer either
// finds no model (a NotFound naming the file) or returns a trace that reads
// back and converts to a workload; it never crashes.
#include <cstddef>
#include <cstdint>
#include <string>

#include "harness/import/comfy_log.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  auto r = residency::import::ImportComfyLog(text, "fuzz.log");
  if (!r.ok()) {
    if (r.status().message().rfind("fuzz.log", 0) != 0) __builtin_trap();
    return 0;
  }
  auto again = residency::traces::ParseTrace(residency::traces::WriteTrace(r->trace), "again");
  if (!again.ok() || !residency::traces::ToWorkload(*again, "again").ok()) __builtin_trap();
  return 0;
}
