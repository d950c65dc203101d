// The captured policy: a preset chosen by the server's version and device,
// changed by each of its memory flags (traces/captured_policy.h), and the
// table of flags in docs/CAPTURE.md kept equal to the code's.
#include <gtest/gtest.h>

#include <fstream>
#include <sstream>

#include "traces/captured_policy.h"
#include "traces/captured_profile.h"

namespace residency {
namespace {

using engine::kGiB;
using engine::kMiB;
using engine::LoadModeRule;

traces::MachineRecord Machine(const std::string& server, const std::string& device = "NVIDIA GeForce RTX 4090",
                              const std::string& torch = "2.9.0+cu128", std::vector<std::string> flags = {}) {
  traces::MachineRecord m;
  m.server = server;
  m.device = device;
  m.torch = torch;
  m.ram = 64 * kGiB;
  m.vram = 24 * kGiB;
  m.unified = device == "cpu" || device == "mps";
  m.flags = std::move(flags);
  return m;
}

traces::DerivedPolicy Derive(const traces::MachineRecord& m, const std::vector<std::string>& extra = {}) {
  auto d = traces::PolicyFromMachine(m, "", extra);
  EXPECT_TRUE(d.ok()) << d.status().ToString();
  return d.ok() ? *d : traces::DerivedPolicy{};
}

bool Warns(const traces::DerivedPolicy& d, const std::string& needle) {
  for (const std::string& w : d.warnings)
    if (w.find(needle) != std::string::npos) return true;
  return false;
}

TEST(CapturedPolicy, TheServerVersionPicksThePresetAndTheLoadingRegime) {
  struct Row {
    std::string server, preset;
    LoadModeRule rule;
  };
  for (const Row& r : {Row{"ComfyUI 0.8.0", "comfy-classic", LoadModeRule::kClassic},
                       Row{"ComfyUI 0.12.3", "comfy-classic", LoadModeRule::kClassic},  // dynamic VRAM opt-in only
                       Row{"ComfyUI 0.16.0", "comfy-classic", LoadModeRule::kDynamic},
                       Row{"ComfyUI 0.23.0", "comfy-13802", LoadModeRule::kDynamic},
                       Row{"ComfyUI 0.29.9", "comfy-13802", LoadModeRule::kDynamic},
                       Row{"ComfyUI 0.38.1", "comfy-aug2026", LoadModeRule::kDynamic}}) {
    const traces::DerivedPolicy d = Derive(Machine(r.server));
    EXPECT_EQ(d.preset, r.preset) << r.server;
    EXPECT_EQ(d.policy.load_modes, r.rule) << r.server;
    EXPECT_EQ(d.policy.name, "captured");
    EXPECT_TRUE(d.warnings.empty()) << r.server << ": " << d.warnings.front();
  }
}

TEST(CapturedPolicy, DynamicVramNeedsTheDeviceAndTorchThatHaveIt) {
  // torch 2.7 has no dynamic VRAM; a CPU or Apple device never does.
  EXPECT_EQ(Derive(Machine("ComfyUI 0.38.1", "NVIDIA GeForce RTX 4090", "2.7.1+cu126")).policy.load_modes,
            LoadModeRule::kClassic);
  const traces::DerivedPolicy cpu = Derive(Machine("ComfyUI 0.38.1", "cpu", "1.13.0"));
  EXPECT_EQ(cpu.policy.load_modes, LoadModeRule::kClassic);
  EXPECT_EQ(cpu.policy.pin_budget_bytes, 0);  // ComfyUI pins only for NVIDIA and AMD GPUs
  // ROCm: the default from 0.34 on ROCm >= 7.14 only.
  EXPECT_EQ(Derive(Machine("ComfyUI 0.34.0", "AMD Radeon RX 7900 XTX", "2.9.0+rocm7.14")).policy.load_modes,
            LoadModeRule::kDynamic);
  EXPECT_EQ(Derive(Machine("ComfyUI 0.34.0", "AMD Radeon RX 7900 XTX", "2.9.0+rocm6.4")).policy.load_modes,
            LoadModeRule::kClassic);
  EXPECT_EQ(Derive(Machine("ComfyUI 0.30.0", "AMD Radeon RX 7900 XTX", "2.9.0+rocm7.14")).policy.load_modes,
            LoadModeRule::kClassic);
}

TEST(CapturedPolicy, EachFlagChangesWhatTheTableSays) {
  const auto with = [](const std::string& server, std::vector<std::string> flags) {
    return Derive(Machine(server, "NVIDIA GeForce RTX 4090", "2.9.0+cu128", std::move(flags)));
  };
  const Bytes floor = static_cast<Bytes>(0.8 * static_cast<double>(kGiB));
  EXPECT_EQ(with("ComfyUI 0.8.0", {"--reserve-vram", "1.5"}).policy.device_reserve_bytes,
            floor + static_cast<Bytes>(1.5 * static_cast<double>(kGiB)));
  const traces::DerivedPolicy cache = with("ComfyUI 0.38.1", {"--cache-ram", "4", "32"});
  EXPECT_EQ(cache.policy.host_headroom_bytes, 4 * kGiB);
  EXPECT_EQ(cache.policy.ram_cache_bytes, 32 * kGiB);  // 64 GiB of RAM less the 32 GiB kept free
  EXPECT_EQ(with("ComfyUI 0.38.1", {"--disable-pinned-memory"}).policy.pin_budget_bytes, 0);
  EXPECT_TRUE(with("ComfyUI 0.38.1", {"--disable-smart-memory"}).policy.free_device_after_prompt);
  EXPECT_EQ(with("ComfyUI 0.38.1", {"--novram"}).policy.load_modes, LoadModeRule::kNoVram);
  EXPECT_EQ(with("ComfyUI 0.38.1", {"--disable-dynamic-vram"}).policy.load_modes, LoadModeRule::kClassic);
  EXPECT_EQ(with("ComfyUI 0.38.1", {"--highvram"}).policy.load_modes, LoadModeRule::kClassic);
  EXPECT_EQ(with("ComfyUI 0.38.1", {"--high-ram"}).policy.pin_budget_bytes, 64 * kGiB);
  // --vram-headroom counts only with dynamic VRAM.
  const Bytes aug_reserve = with("ComfyUI 0.38.1", {}).policy.device_reserve_bytes;
  EXPECT_EQ(with("ComfyUI 0.38.1", {"--vram-headroom", "2"}).policy.device_reserve_bytes, aug_reserve + 2 * kGiB);
  EXPECT_EQ(with("ComfyUI 0.38.1", {"--disable-dynamic-vram", "--vram-headroom", "2"}).policy.device_reserve_bytes,
            aug_reserve);
  // --fast-disk drops offloaded weights (dynamic only); --disable-fast-disk cancels it.
  const traces::DerivedPolicy fast = with("ComfyUI 0.38.1", {"--fast-disk"});
  EXPECT_EQ(fast.policy.eviction, engine::EvictionKind::kDrop);
  EXPECT_EQ(fast.policy.ram_cache_bytes, 0);
  EXPECT_NE(with("ComfyUI 0.38.1", {"--fast-disk", "--disable-fast-disk"}).policy.eviction, engine::EvictionKind::kDrop);
  // --disable-mmap changes the mmap loader only.
  const traces::DerivedPolicy no_mmap = with("ComfyUI 0.8.0", {"--disable-mmap"});
  EXPECT_EQ(no_mmap.policy.loader, engine::LoaderKind::kReadInto);
  EXPECT_FALSE(no_mmap.policy.hold_mapping);
  EXPECT_EQ(with("ComfyUI 0.38.1", {"--disable-mmap"}).policy.loader, engine::LoaderKind::kThreadedPinned);
  EXPECT_EQ(with("ComfyUI 0.23.0", {"--async-offload", "4"}).policy.staging_buffers, 4);
  EXPECT_EQ(with("ComfyUI 0.38.1", {"--disable-async-offload"}).policy.staging_buffers, 1);
  // The values may come as --flag=value too.
  EXPECT_EQ(with("ComfyUI 0.8.0", {"--reserve-vram=2"}).policy.device_reserve_bytes, floor + 2 * kGiB);
}

TEST(CapturedPolicy, AnUnknownFlagOrABadValueIsNamedNeverSilent) {
  const traces::DerivedPolicy d =
      Derive(Machine("ComfyUI 0.38.1", "NVIDIA GeForce RTX 4090", "2.9.0", {"--turbo-memory", "3", "--reserve-vram", "x"}));
  EXPECT_TRUE(Warns(d, "unknown server flag --turbo-memory 3")) << (d.warnings.empty() ? "" : d.warnings.front());
  EXPECT_TRUE(Warns(d, "--reserve-vram x: values must be non-negative numbers"));
  EXPECT_TRUE(Warns(Derive(Machine("ComfyUI 0.8.0", "NVIDIA GeForce RTX 4090", "2.9.0", {"--enable-dynamic-vram"})),
                    "has no dynamic VRAM"));
  EXPECT_TRUE(Warns(Derive(Machine("my fork")), "is not a ComfyUI version"));
}

TEST(CapturedPolicy, ACandidateChangesTheRecordedFlags) {
  const traces::MachineRecord m =
      Machine("ComfyUI 0.8.0", "NVIDIA GeForce RTX 4090", "2.9.0", {"--reserve-vram", "0.5", "--disable-mmap"});
  const traces::DerivedPolicy d = Derive(m, {"--reserve-vram", "2", "!--disable-mmap", "--cache-ram", "4"});
  EXPECT_EQ(d.flags, (std::vector<std::string>{"--reserve-vram", "2", "--cache-ram", "4"}));
  EXPECT_EQ(d.policy.loader, engine::LoaderKind::kMmapPageable);  // --disable-mmap removed
  EXPECT_EQ(d.CommandLine(), "python main.py --reserve-vram 2 --cache-ram 4");
}

TEST(CapturedPolicy, EveryFlagInTheTableIsHandledAndDocumented) {
  std::ifstream in(RESIDENCY_DOCS_DIR "/CAPTURE.md");
  ASSERT_TRUE(in) << "docs/CAPTURE.md";
  std::stringstream doc;
  doc << in.rdbuf();
  for (const traces::ServerFlag& f : traces::ComfyFlags()) {
    std::vector<std::string> flags = {std::string(f.name)};
    for (int i = 0; i < f.min_values; ++i) flags.push_back("1");
    const traces::DerivedPolicy d = Derive(Machine("ComfyUI 0.38.1", "NVIDIA GeForce RTX 4090", "2.9.0", flags));
    EXPECT_FALSE(Warns(d, "unknown")) << f.name;
    EXPECT_FALSE(d.changes.empty()) << f.name;
    EXPECT_NE(doc.str().find("| `" + std::string(f.name)), std::string::npos)
        << f.name << " is missing from docs/CAPTURE.md's flag table";
  }
  for (const traces::ServerEra& e : traces::ComfyEras())
    EXPECT_NE(doc.str().find(std::string(e.from_version)), std::string::npos)
        << "era from " << e.from_version << " is missing from docs/CAPTURE.md";
}

TEST(CapturedProfile, ACpuCaptureTakesTheCpuHostBaseNotTheSpark) {
  traces::MachineRecord m = Machine("ComfyUI 0.8.0", "cpu", "1.13.0", {"--cpu"});
  EXPECT_EQ(traces::DefaultCapturedBase(m), "cpu-host");
  m.device = "NVIDIA GB10";
  EXPECT_EQ(traces::DefaultCapturedBase(m), "dgx-spark-128g");
  m.unified = false;
  EXPECT_EQ(traces::DefaultCapturedBase(m), "rtx4090-64g");
}

}  // namespace
}  // namespace residency
