// `residency import comfyui-log`: a ComfyUI console log turned into a trace.
// Reads what the log says (models requested, loaded completely / partially /
// for dynamic VRAM with their sizes, sampler progress bars, prompt
// boundaries and times, the machine's VRAM and RAM) and warns, with line
// numbers, about what it had to guess or could not use. Any text is accepted;
// nothing in it can make the importer fail other than finding no model.
#pragma once

#include <string>
#include <vector>

#include "runtime/engine/status.h"
#include "traces/trace.h"

namespace residency::import {

struct ImportResult {
  traces::Trace trace;
  std::vector<std::string> warnings;  // "console.txt:12: ..."
  std::int64_t vram_mib = -1, ram_mib = -1;  // from "Total VRAM ... MB, total RAM ... MB"
};

// NotFound when the log holds no model load at all.
Result<ImportResult> ImportComfyLog(const std::string& text, const std::string& origin);

}  // namespace residency::import
