// libFuzzer target: any bytes as a trace file. Errors are values; what the
// reader accepts, the writer writes back and the reader reads again to the
// same content (the lossless round trip), and it converts to a workload or
// fails with an error naming the origin.
#include <cstddef>
#include <cstdint>
#include <string>

#include "traces/trace.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace residency::traces;
  const std::string text(reinterpret_cast<const char*>(data), size);
  auto trace = ParseTrace(text, "fuzz.jsonl");
  if (!trace.ok()) {
    if (trace.status().message().rfind("fuzz.jsonl", 0) != 0) __builtin_trap();
    return 0;
  }
  auto again = ParseTrace(WriteTrace(trace.value()), "rewritten.jsonl");
  if (!again.ok() || again->events.size() != trace->events.size()) __builtin_trap();
  for (std::size_t i = 0; i < trace->events.size(); ++i)
    if (!trace->events[i].SameContent(again->events[i])) __builtin_trap();
  auto workload = ToWorkload(trace.value(), "fuzz.jsonl");
  if (!workload.ok() && workload.status().message().rfind("fuzz.jsonl", 0) != 0) __builtin_trap();
  return 0;
}
