// `residency import comfyui-log`: a ComfyUI console log turned into a trace.
// Lines are classified one by one (comfy_log_lines.h), then read together:
// each load line is paired with its request by class and size (never by queue
// position), "Unloaded partially" is an offload of the model whose device bytes
// it names, doubled final progress bars count once, a prompt runs from its first
// execution activity to its "Prompt executed", and two models of one class are
// told apart by size and sequence. What was inferred is marked in the trace
// (`inferred`) and counted in a summary. Any text is accepted; nothing in it
// can make the importer fail other than finding no model load at all, and then
// the error says what it did find.
#pragma once

#include <string>
#include <vector>

#include "runtime/base/status.h"
#include "traces/trace.h"

namespace residency::import {

struct ImportResult {
  traces::Trace trace;
  std::vector<std::string> warnings;  // "console.txt:12: ..."
  std::vector<std::string> summary;   // what was read, paired and inferred, with counts
  std::int64_t vram_mib = -1, ram_mib = -1;  // from "Total VRAM ... MB, total RAM ... MB"
};

// NotFound when the log holds no model load at all.
Result<ImportResult> ImportComfyLog(const std::string& text, const std::string& origin);

}  // namespace residency::import
