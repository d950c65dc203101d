// `residency import comfyui-log`: what a real-shaped ComfyUI console log
// becomes, and that noise never breaks it.
#include <gtest/gtest.h>

#include <algorithm>

#include <fstream>
#include <map>
#include <sstream>

#include "harness/import/comfy_log.h"

namespace residency {
namespace {
using engine::Nanos;

std::string SampleLog() {
  std::ifstream in(std::string(RESIDENCY_TEST_DATA_DIR) + "/comfyui-console.txt");
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

TEST(ComfyLogImport, ReadsModelsSizesStepsAndPromptTimes) {
  auto r = import::ImportComfyLog(SampleLog(), "console.txt");
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->vram_mib, 24564);
  EXPECT_EQ(r->ram_mib, 64228);
  std::map<std::string, std::int64_t> sizes;
  std::vector<Nanos> measured;
  std::vector<std::pair<int, Nanos>> computes;
  int dynamic_loads = 0;
  for (const traces::TraceEvent& e : r->trace.events) {
    if (e.type == traces::EventType::kModel) sizes[e.model] = e.files.at(0).bytes;
    if (e.type == traces::EventType::kPromptEnd) measured.push_back(e.measured_wall_ns);
    if (e.type == traces::EventType::kCompute) computes.push_back({e.steps, e.step_ns});
    if (e.type == traces::EventType::kLoad && e.mode == engine::LoadMode::kDynamic) ++dynamic_loads;
  }
  EXPECT_EQ(sizes.at("WAN21"), 13629LL << 20);                                 // "13629MB Staged"
  EXPECT_EQ(sizes.at("WanTEModel"), static_cast<std::int64_t>(6419.477203369141 * (1 << 20) + 0.5));
  // The third "Prompt executed" follows only noise: a prompt served from the cache.
  EXPECT_EQ(measured, (std::vector<Nanos>{76'330'000'000, 49'190'000'000, 8'390'000'000}));
  ASSERT_EQ(computes.size(), 3u);  // the 5/10 update is not a finished bar
  EXPECT_EQ(computes[0], (std::pair<int, Nanos>{10, 3'820'000'000}));  // 10 x 3.82 s/it, not "00:38" / 10
  EXPECT_EQ(dynamic_loads, 3);
  const auto warned = [&](const std::string& what) {
    for (const std::string& w : r->warnings)
      if (w.find(what) != std::string::npos) return true;
    return false;
  };
  EXPECT_TRUE(warned("console.txt:34: 'Requested to load' without a model name"));
  EXPECT_TRUE(warned("console.txt:35: a 'loaded completely' line without a size; ignored"));
  EXPECT_TRUE(warned("'WanVAE' comes from a partial load only"));
  // What it wrote reads back as a valid trace with the same events.
  auto again = traces::ParseTrace(traces::WriteTrace(r->trace), "rewritten");
  ASSERT_TRUE(again.ok()) << again.status().ToString();
  EXPECT_EQ(again->events.size(), r->trace.events.size());
  EXPECT_TRUE(traces::ToWorkload(*again, "rewritten").ok());
}

TEST(ComfyLogImport, NoModelsIsAClearErrorAndNoiseIsHarmless) {
  auto none = import::ImportComfyLog("hello\nworld\nPrompt executed in 3 seconds\n", "x.log");
  ASSERT_FALSE(none.ok());
  EXPECT_NE(none.status().message().find("x.log: no model load could be read: 0 'Requested to load'"),
            std::string::npos);
  std::string noise;
  for (int i = 0; i < 2000; ++i) noise += static_cast<char>((i * 7919) % 256);
  EXPECT_FALSE(import::ImportComfyLog(noise, "noise").ok());
  // Old and new phrasings of the same load.
  auto old_style = import::ImportComfyLog(
      "got prompt\nRequested to load SDXL\nloaded completely; 20000.00 MB usable, 4897.05 MB loaded, full load: True\n"
      "Requested to load SDXL\nloaded partially; 3000.00 MB usable, 2900.00 MB loaded, 1997.05 MB offloaded, lowvram patches: 0\n"
      "Prompt executed in 12.5 seconds\n",
      "old.log");
  ASSERT_TRUE(old_style.ok()) << old_style.status().ToString();
  for (const auto& e : old_style->trace.events) {
    if (e.type == traces::EventType::kModel) {
      EXPECT_EQ(e.files[0].bytes, static_cast<std::int64_t>(4897.05 * (1 << 20) + 0.5));
    }
    if (e.type == traces::EventType::kLoad && e.mode == engine::LoadMode::kPartial) {
      EXPECT_EQ(e.device_bytes, static_cast<std::int64_t>(2900.0 * (1 << 20)));
    }
  }
}

// A pass lasts steps / rate, kept within the bar's whole-second elapsed time
// and the next second; a bar with no rate gets the middle of that second,
// marked inferred.
TEST(ComfyLogImport, APassLastsStepsOverRateWithinItsElapsedSecond) {
  auto r = import::ImportComfyLog(
      "got prompt\nRequested to load SDXL\nloaded completely; 20000.00 MB usable, 4897.05 MB loaded, full load: True\n"
      "100%|##########| 20/20 [00:01<00:00, 12.12it/s]\n"   // 1.65 s
      "100%|##########| 10/10 [00:03<00:00,  9.00s/it]\n"   // 90 s by rate: kept below 4 s
      "100%|##########| 8/8 [00:02<00:00]\n"                // no rate: 2.5 s
      "Prompt executed in 9.00 seconds\n",
      "rates.log");
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  std::vector<std::pair<int, Nanos>> computes;
  std::vector<bool> inferred_step;
  for (const auto& e : r->trace.events) {
    if (e.type != traces::EventType::kCompute) continue;
    computes.push_back({e.steps, e.step_ns});
    inferred_step.push_back(std::count(e.inferred.begin(), e.inferred.end(), "step_ns") > 0);
  }
  EXPECT_EQ(computes, (std::vector<std::pair<int, Nanos>>{{20, 82'508'251}, {10, 399'900'000}, {8, 312'500'000}}));
  EXPECT_EQ(inferred_step, (std::vector<bool>{false, false, true}));
}

// Numbers past int64's range (found by the fuzzer: a 1e300-second bar made
// `seconds * 1e9` overflow) are dropped with a warning, never cast.
TEST(ComfyLogImport, HugeNumbersAreIgnoredNotOverflowed) {
  auto r = import::ImportComfyLog(
      "Total VRAM 1e300 MB, total RAM 99999999999999999999 MB\n"
      "got prompt\nRequested to load SDXL\nloaded completely; 20000.00 MB usable, 4897.05 MB loaded, full load: True\n"
      "100%|##########| 20/20 [9999999999999:00<00:00, 1.30it/s]\n"
      "100%|##########| 20/20 [00:1e300<00:00, 1.30it/s]\n"
      "100%|##########| 20/20 [00:15<00:00, 1.30it/s]\n"
      "Prompt executed in 1e300 seconds\n",
      "huge.log");
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  std::vector<std::pair<int, Nanos>> computes;
  EXPECT_EQ(r->vram_mib, 0);
  EXPECT_EQ(r->ram_mib, 0);
  for (const auto& e : r->trace.events) {
    if (e.type == traces::EventType::kCompute) computes.push_back({e.steps, e.step_ns});
    if (e.type == traces::EventType::kPromptEnd) {
      EXPECT_EQ(e.measured_wall_ns, -1);
    }
  }
  bool warned = false;
  for (const auto& w : r->warnings) warned |= w.find("over a year long") != std::string::npos;
  EXPECT_TRUE(warned);
  // Only the sane fast bar ("it/s", 15 s over 20 steps) becomes a compute step.
  EXPECT_EQ(computes, (std::vector<std::pair<int, Nanos>>{{20, 769'230'769}}));  // 20 steps at 1.30 it/s
}

}  // namespace
}  // namespace residency
