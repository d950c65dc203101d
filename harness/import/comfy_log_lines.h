// ComfyUI console lines, one shape at a time: prefixes stripped (timestamps,
// [INFO], SwarmUI and docker wrappers, glued write prefixes), then each piece
// of the line classified with the numbers it states. Pure text work, no
// state: the importer (comfy_log.cc) decides what the lines mean together.
// Shapes and their variants 2024-2026: docs/IMPORT.md.
#pragma once

#include <optional>
#include <string>
#include <vector>

namespace residency::import {

enum class LineKind {
  kMachine,           // "Total VRAM V MB, total RAM R MB"
  kDevice,            // "Device: cuda:0 NVIDIA ... : cudaMallocAsync" (text)
  kVramState,         // "Set vram state to: LOW_VRAM" (text)
  kTorchVersion,      // "pytorch version: 2.9.1" (text)
  kServerVersion,     // "ComfyUI version: 0.3.49" (text)
  kGotPrompt,         // queued (not started)
  kRequested,         // "Requested to load CLASS" (text)
  kLoadingNewModels,  // 2024: "Loading 1 new model" (count)
  kLowvramMode,       // 2024: "loading in lowvram mode BUDGET" (a)
  kLoadedCompletely,  // a = MB loaded (model size), or no size (has_a false)
  kLoadedPartially,   // a = MB on device; b = MB offloaded when stated
  kUnloadedPartially, // a = MB freed, b = MB remaining on the device
  kDynamic,           // "Model CLASS prepared for dynamic VRAM loading. S MB Staged" (text, a)
  kDiskRead,          // "model_type FLOW": a diffusion model read from its file
  kProgress,          // a finished-or-not tqdm bar: count/total, elapsed seconds
  kPromptExecuted,    // a = seconds (either form)
  kException,         // "!!! Exception during processing !!!" or "Processing interrupted" (text: which)
};

struct LogLine {
  LineKind kind;
  std::string text;       // class name, device, version...
  double a = 0, b = 0;    // the numbers above
  bool has_a = false, has_b = false;
  // kProgress
  long long count = 0, total = 0;
  double elapsed_s = -1;  // -1: unreadable (tqdm prints whole seconds, rounded down)
  double seconds_per_it = -1;  // from "12.12it/s" or "1.50s/it"; -1: none printed
  bool labelled = false;  // "Sampling: 40%|..." and the like: not the KSampler's own bar
};

// `line` without the prefixes a console, logger or wrapper put in front of it
// (repeatedly) and without a write prefix glued to its end.
std::string StripPrefixes(const std::string& line);

// Every shape found in one physical line (a bar and "got prompt" can share
// one), in order. Carriage-return redraws are split first.
std::vector<LogLine> ClassifyLine(const std::string& raw);

}  // namespace residency::import
