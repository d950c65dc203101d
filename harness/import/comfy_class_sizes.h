// Typical weight sizes of ComfyUI model classes (fp16/bf16 unless noted), for
// logs that never state a size: 2024 builds print no size for a full load, and
// a model already on the device prints no load line. A size taken from here is
// marked inferred in the trace. Figures: the public Hugging Face file sizes
// of these checkpoints (Comfy-Org's repackaged repositories, e.g. wan_2.1_vae
// 253,815,318 B) and the "loaded completely" sizes real logs state for these
// classes.
#pragma once

#include <string>

namespace residency::import {

// MiB, or 0 for a class not listed.
inline double TypicalClassMiB(const std::string& cls) {
  struct Entry {
    const char* cls;
    double mib;
  };
  static const Entry kSizes[] = {
      {"BaseModel", 1639},         {"SD1ClipModel", 235},      {"SD2ClipModel", 660},
      {"SDXL", 4897},              {"SDXLRefiner", 4500},      {"SDXLClipModel", 1560},
      {"SD3", 4700},               {"SD3ClipModel", 10500},    {"AutoencoderKL", 160},
      {"AutoencodingEngine", 160}, {"Flux", 22700},            {"FluxClipModel_", 9319},
      {"WAN21", 27000},            {"WAN22", 9500},            {"WanTEModel", 10835},
      {"WanVAE", 242},             {"Lumina2", 11739},         {"ZImageTEModel_", 7672},
      {"QwenImage", 19500},        {"ControlNet", 2397},       {"CLIPVisionModelProjection", 1208},
      {"HunyuanVideo", 24500},     {"LTXV", 3700},             {"VideoVAE", 800},
  };
  for (const Entry& e : kSizes)
    if (cls == e.cls) return e.mib;
  // A variant of a listed class ("WAN21_Vace", "WAN21_Camera"): its base class.
  for (const Entry& e : kSizes)
    if (cls.rfind(std::string(e.cls) + "_", 0) == 0) return e.mib;
  return 0;
}

// What an unlisted class is given, with a warning.
inline constexpr double kUnknownClassMiB = 2048;

}  // namespace residency::import
