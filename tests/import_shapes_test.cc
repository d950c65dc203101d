// `residency import comfyui-log` on the line shapes real ComfyUI logs take
// (docs/IMPORT.md): each test log in tests/data/comfy_logs is written in our
// own words and numbers after a shape seen in public logs, and the test checks
// every model's size, every prompt's compute and every prompt's boundaries.
#include <gtest/gtest.h>

#include <cmath>
#include <fstream>
#include <map>
#include <sstream>

#include "harness/import/comfy_class_sizes.h"
#include "harness/import/comfy_log.h"

namespace residency {
namespace {
using engine::Nanos;
using traces::EventType;

std::string Log(const std::string& name) {
  std::ifstream in(std::string(RESIDENCY_TEST_DATA_DIR) + "/comfy_logs/" + name);
  EXPECT_TRUE(in.good()) << name;
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

std::int64_t MiB(double mib) { return static_cast<std::int64_t>(std::llround(mib * (1 << 20))); }

// What a test compares: sizes by model, and per prompt its measured time and
// its computes as "model:steps@step_ms", loads as "+model(mode)", unloads as
// "-model".
struct Imported {
  std::map<std::string, std::int64_t> sizes;
  std::map<std::string, std::vector<std::string>> inferred;  // model -> inferred fields
  std::vector<Nanos> measured;
  std::vector<std::vector<std::string>> prompts;
  std::vector<std::string> warnings, summary;
};

Imported Import(const std::string& name) {
  auto r = import::ImportComfyLog(Log(name), name);
  EXPECT_TRUE(r.ok()) << r.status().ToString();
  Imported out;
  if (!r.ok()) return out;
  for (const traces::TraceEvent& e : r->trace.events) {
    switch (e.type) {
      case EventType::kModel:
        out.sizes[e.model] = e.files.at(0).bytes;
        out.inferred[e.model] = e.inferred;
        break;
      case EventType::kPromptBegin: out.prompts.emplace_back(); break;
      case EventType::kPromptEnd: out.measured.push_back(e.measured_wall_ns); break;
      case EventType::kCompute:
        out.prompts.back().push_back(e.models.at(0) + ":" + std::to_string(e.steps) + "@" +
                                     std::to_string(e.step_ns / 1'000'000));
        break;
      case EventType::kLoad:
        out.prompts.back().push_back("+" + e.model + "(" + std::string(engine::ToString(e.mode)) + ")");
        break;
      case EventType::kUnload: out.prompts.back().push_back("-" + e.model); break;
      default: break;
    }
  }
  out.warnings = r->warnings;
  out.summary = r->summary;
  // What it wrote reads back as a valid trace.
  auto again = traces::ParseTrace(traces::WriteTrace(r->trace), "rewritten");
  EXPECT_TRUE(again.ok()) << again.status().ToString();
  return out;
}

using Steps = std::vector<std::string>;

TEST(ComfyLogShapes, LoadLineWithoutRequestIsPairedBySize) {
  const Imported r = Import("load-without-request.txt");
  EXPECT_EQ(r.sizes, (std::map<std::string, std::int64_t>{
                         {"SDXLClipModel", MiB(1560.80)}, {"SDXL", MiB(3000.00 + 1897.05)},
                         {"AutoencoderKL", MiB(159.56)}}));
  ASSERT_EQ(r.prompts.size(), 2u);
  EXPECT_EQ(r.prompts[0], (Steps{"+SDXLClipModel(full)", "+SDXL(partial)", "SDXL:25@2000", "-SDXL",
                                 "+AutoencoderKL(full)"}));
  EXPECT_EQ(r.prompts[1], (Steps{"+SDXL(partial)", "SDXL:25@1920"}));
  EXPECT_EQ(r.measured, (std::vector<Nanos>{61'200'000'000, 50'100'000'000}));
}

TEST(ComfyLogShapes, RequestWithoutLoadLineIsTheResidentModel) {
  const Imported r = Import("request-without-load.txt");
  EXPECT_EQ(r.sizes, (std::map<std::string, std::int64_t>{
                         {"SDXLClipModel", MiB(1560.80)}, {"ControlNet", MiB(2396.80)},
                         {"SDXL", MiB(2500.00 + 2397.05)}}));
  ASSERT_EQ(r.prompts.size(), 2u);
  // Three requests, two load lines: the text encoder was still on the device,
  // and the sampler's bar is SDXL's, not the resident encoder's.
  EXPECT_EQ(r.prompts[0], (Steps{"+SDXLClipModel(full)", "+ControlNet(full)", "+SDXL(partial)",
                                 "+SDXLClipModel(full)", "SDXL:30@2000"}));
  EXPECT_EQ(r.prompts[1], (Steps{"+SDXL(partial)", "SDXL:30@1900"}));
}

TEST(ComfyLogShapes, UnloadedPartiallyIsAnOffloadNotALoad) {
  const Imported r = Import("plain-session.txt");
  ASSERT_EQ(r.prompts.size(), 1u);
  EXPECT_EQ(r.prompts[0], (Steps{"+FluxClipModel_(full)", "+Flux(partial)", "Flux:24@3000", "-Flux",
                                 "+AutoencodingEngine(full)"}));
  EXPECT_EQ(r.sizes.at("Flux"), MiB(8800.00 + 2550.00));
}

TEST(ComfyLogShapes, DoubledFinalBarCountsOnce) {
  const Imported r = Import("doubled-final-bar.txt");
  ASSERT_EQ(r.prompts.size(), 1u);
  // The second print carries the whole pass's average (2.01 s/it): 40.2 s.
  EXPECT_EQ(r.prompts[0], (Steps{"+Flux(full)", "Flux:20@2010"}));
  bool said = false;
  for (const std::string& s : r.summary) said |= s.find("1 doubled final bars counted once") != std::string::npos;
  EXPECT_TRUE(said);
}

TEST(ComfyLogShapes, QueuedPromptsStartAtTheirFirstActivity) {
  const Imported r = Import("queued-prompts.txt");
  ASSERT_EQ(r.prompts.size(), 4u) << "four 'got prompt' lines, four 'Prompt executed'";
  EXPECT_EQ(r.measured, (std::vector<Nanos>{6'100'000'000, 4'900'000'000, 4'700'000'000, 20'000'000}));
  // Each pass's length is steps / rate (4.50, 4.60, 4.40 it/s), finer than
  // the bar's whole-second "00:04".
  EXPECT_EQ(r.prompts[0], (Steps{"+SD1ClipModel(full)", "+BaseModel(full)", "BaseModel:20@222",
                                 "+AutoencoderKL(full)"}));
  // Nothing was loaded again: the model stayed on the device, and the bar
  // glued to a "got prompt" still counts for its own prompt.
  EXPECT_EQ(r.prompts[1], (Steps{"+BaseModel(full)", "BaseModel:20@217"}));
  EXPECT_EQ(r.prompts[2], (Steps{"+BaseModel(full)", "BaseModel:20@227"}));
  EXPECT_EQ(r.prompts[3], Steps{}) << "an all-cached prompt is only its 'Prompt executed'";
}

TEST(ComfyLogShapes, Format2024IsReadWithClassSizesMarkedInferred) {
  const Imported r = Import("format-2024.txt");
  ASSERT_EQ(r.prompts.size(), 2u);
  EXPECT_EQ(r.prompts[0], (Steps{"+SDXLClipModel(full)", "+SDXL(partial)", "SDXL:20@4000",
                                 "+AutoencoderKL(full)"}));
  EXPECT_EQ(r.prompts[1], (Steps{"+SDXLClipModel(full)", "+SDXL(partial)", "SDXL:20@3800"}));
  // The encoder's size is stated in prompt 2; SDXL's never is (a lowvram
  // budget and a partial load are lower bounds), nor the VAE's.
  EXPECT_EQ(r.sizes.at("SDXLClipModel"), MiB(1560.8046875));
  EXPECT_EQ(r.inferred.at("SDXLClipModel"), (std::vector<std::string>{"tensors"}));
  EXPECT_EQ(r.sizes.at("SDXL"), MiB(4897));
  EXPECT_EQ(r.inferred.at("SDXL"), (std::vector<std::string>{"tensors", "bytes"}));
  EXPECT_EQ(r.sizes.at("AutoencoderKL"), MiB(160));
  EXPECT_EQ(r.inferred.at("AutoencoderKL"), (std::vector<std::string>{"tensors", "bytes"}));
  EXPECT_EQ(r.measured, (std::vector<Nanos>{95'300'000'000, 83'000'000'000}));
}

TEST(ComfyLogShapes, TwoModelsOfOneClassAreTwoModels) {
  const Imported r = Import("same-class-two-models.txt");
  // Wan 2.2's two experts: one class, one size, two models read from disk.
  EXPECT_EQ(r.sizes.at("WAN21"), MiB(13900.00 + 13350.25));
  EXPECT_EQ(r.sizes.at("WAN21#2"), MiB(13900.00 + 13350.25));
  // A Flux checkpoint is a Flux whatever came before.
  EXPECT_EQ(r.sizes.at("Flux"), MiB(22700.00));
  ASSERT_EQ(r.prompts.size(), 3u);
  EXPECT_EQ(r.prompts[0], (Steps{"+WanTEModel(full)", "-WanTEModel", "+WAN21(partial)", "WAN21:10@18000", "-WAN21",
                                 "+WAN21#2(partial)", "WAN21#2:10@19000", "+WanVAE(full)"}));
  EXPECT_EQ(r.prompts[1], (Steps{"-WAN21#2", "+WAN21(partial)", "WAN21:10@17800", "-WAN21", "+WAN21#2(partial)",
                                 "WAN21#2:10@18500"}));
  EXPECT_EQ(r.prompts[2], (Steps{"+Flux(full)", "Flux:20@1500"}));
  // "Prompt executed in 00:12:30": past ten minutes there is no unit.
  EXPECT_EQ(r.measured, (std::vector<Nanos>{750'000'000'000, 380'000'000'000, 35'000'000'000}));
}

TEST(ComfyLogShapes, PrefixesChangeNothing) {
  auto plain = import::ImportComfyLog(Log("plain-session.txt"), "x");
  ASSERT_TRUE(plain.ok());
  const std::string want = traces::WriteTrace(plain->trace);
  for (const char* name : {"prefix-info.txt", "prefix-bracket-ms.txt", "prefix-swarmui.txt", "prefix-docker.txt",
                           "prefix-python-logging.txt", "prefix-iso-per-write.txt"}) {
    auto r = import::ImportComfyLog(Log(name), "x");
    ASSERT_TRUE(r.ok()) << name << ": " << r.status().ToString();
    EXPECT_EQ(traces::WriteTrace(r->trace), want) << name;
    EXPECT_EQ(r->vram_mib, 16376) << name;
  }
}

TEST(ComfyLogShapes, ARefusedLogSaysWhatItFound) {
  auto r = import::ImportComfyLog(
      "got prompt\n100%|##########| 20/20 [00:15<00:00, 1.30it/s]\nPrompt executed in 16.0 seconds\n"
      "loaded completely garbage\n",
      "bare.log");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().message(),
            "bare.log: no model load could be read: 0 'Requested to load', 1 load lines ('loaded completely', "
            "'loaded partially', dynamic VRAM, lowvram), 1 progress bars, 1 'Prompt executed' (the load lines "
            "carried no usable size)");
}

TEST(ComfyLogShapes, TheSummarySaysWhatWasInferredAndWhatNoLineAccountsFor) {
  const Imported r = Import("format-2024.txt");
  const auto has = [&](const std::string& what) {
    for (const std::string& s : r.summary)
      if (s.find(what) != std::string::npos) return true;
    return false;
  };
  EXPECT_TRUE(has("3 models: 1 sized by a load line, 1 only a lower bound (a partial load), 1 a typical size"));
  EXPECT_TRUE(has("prompt 1: 95.30 s measured, 80.00 s in sampler bars, 15.30 s (16 %) in no line's account"));
}

TEST(ComfyLogShapes, TheMachineLinesBecomeAMachineRecord) {
  auto r = import::ImportComfyLog(Log("format-2024.txt"), "x");
  ASSERT_TRUE(r.ok());
  ASSERT_TRUE(r->trace.header.machine.has_value());
  EXPECT_EQ(r->trace.header.machine->vram, 8192LL << 20);
  EXPECT_EQ(r->trace.header.machine->ram, 32000LL << 20);
  EXPECT_EQ(r->trace.header.machine->device, "cuda:0 NVIDIA GeForce RTX 3070 : native");
  EXPECT_FALSE(r->trace.header.machine->unified);
  auto mac = import::ImportComfyLog(
      "Total VRAM 24576 MB, total RAM 24576 MB\nSet vram state to: SHARED\nDevice: mps\ngot prompt\n"
      "Requested to load WAN22\nloaded completely; 9500.00 MB loaded, full load: True\n"
      "Prompt executed in 300.00 seconds\n",
      "mac.log");
  ASSERT_TRUE(mac.ok()) << mac.status().ToString();
  ASSERT_TRUE(mac->trace.header.machine.has_value());
  EXPECT_TRUE(mac->trace.header.machine->unified);
  EXPECT_EQ(mac->trace.header.machine->ram, 24576LL << 20);
}

// DirectML states 1024 MB whatever the card; a log that then loads more than
// that in full says the figure is a placeholder, and the record takes the
// least VRAM that fits (ComfyUI's 1.2 GiB reserve included), with a warning.
TEST(ComfyLogShapes, APlaceholderVramIsRaisedToWhatTheLogLoads) {
  auto r = import::ImportComfyLog(Log("directml-placeholder-vram.txt"), "dml.log");
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  ASSERT_TRUE(r->trace.header.machine.has_value());
  // 235.84 + 1639.41 + 159.56 = 2034.8 MB in full, + 1228 MB reserve -> 4 GiB.
  EXPECT_EQ(r->trace.header.machine->vram, 4LL << 30);
  EXPECT_EQ(r->trace.header.machine->ram, 16000LL << 20);
  bool warned = false;
  for (const auto& w : r->warnings) warned |= w.find("states 1024 MB of VRAM") != std::string::npos &&
                                               w.find("'BaseModel', 1639 MB") != std::string::npos &&
                                               w.find("4 GiB") != std::string::npos;
  EXPECT_TRUE(warned);
  EXPECT_NE(r->trace.header.description.find("inferred: VRAM 4 GiB"), std::string::npos);
  // A stated figure that fits what the log loads is kept as it is.
  auto fits = import::ImportComfyLog(Log("format-2024.txt"), "x");
  ASSERT_TRUE(fits.ok());
  EXPECT_EQ(fits->trace.header.machine->vram, 8192LL << 20);
}

// A bar copied without its block characters (and the '|' after them) is
// still a bar; a final bar printed again on close with a later elapsed time
// (the sampler finished after the last update) is the same pass, as long as
// the second print comes right after the first.
TEST(ComfyLogShapes, PlainBarsAndALaterCloseReprintAreOnePassEach) {
  const Imported r = Import("bar-variants.txt");
  ASSERT_EQ(r.prompts.size(), 2u);
  EXPECT_EQ(r.prompts[0], (Steps{"+WAN21(full)", "WAN21:10@3050"}));
  // 6 x 115.01 s = 690.06 s, within the close-print's 11:30: one pass, not
  // 10:00 + 11:30.
  EXPECT_EQ(r.prompts[1], (Steps{"+WAN21(full)", "WAN21:6@115010"}));
  EXPECT_EQ(r.measured, (std::vector<Nanos>{41'000'000'000, 725'000'000'000}));
  bool said = false;
  for (const std::string& s : r.summary) said |= s.find("1 doubled final bars counted once") != std::string::npos;
  EXPECT_TRUE(said);
}

// Two finished bars of one length that are not adjacent are two passes.
TEST(ComfyLogShapes, TwoPassesOfOneLengthApartAreTwoPasses) {
  auto r = import::ImportComfyLog(
      "got prompt\nRequested to load SDXL\nloaded completely 9000.00 4897.05 True\n"
      "100%|##########| 20/20 [00:10<00:00,  1.90it/s]\nRequested to load AutoencoderKL\n"
      "loaded completely 9000.00 159.56 True\n100%|##########| 20/20 [00:12<00:00,  1.62it/s]\n"
      "Prompt executed in 30.00 seconds\n",
      "two.log");
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  int computes = 0;
  for (const auto& e : r->trace.events) computes += e.type == EventType::kCompute;
  EXPECT_EQ(computes, 2);
}

// Dynamic VRAM's staged size of one model drifts by a few MB between
// prompts: still one model, not a second one read from disk.
TEST(ComfyLogShapes, DynamicStagedSizesThatDriftAreOneModel) {
  const Imported r = Import("dynamic-staged-drift.txt");
  EXPECT_EQ(r.sizes, (std::map<std::string, std::int64_t>{{"LTXAVTEModel_", MiB(12600)}, {"LTXAV", MiB(13300)}}));
  ASSERT_EQ(r.prompts.size(), 2u);
  EXPECT_EQ(r.prompts[1], (Steps{"+LTXAVTEModel_(dynamic)", "+LTXAV(dynamic)", "LTXAV:8@2000"}));
}

// Three requests, two load lines, no size known yet: each line goes to the
// request whose class is typically its size, and the one left over (the text
// encoder) was resident, sized by its class and marked inferred.
TEST(ComfyLogShapes, FewerLoadLinesThanRequestsPairByTypicalSize) {
  const Imported r = Import("fewer-loads-than-requests.txt");
  EXPECT_EQ(r.sizes.at("ControlNet"), MiB(2390.50));
  EXPECT_EQ(r.sizes.at("SDXL"), MiB(4897.05));
  EXPECT_EQ(r.sizes.at("SDXLClipModel"), MiB(1560));
  EXPECT_EQ(r.inferred.at("SDXLClipModel"), (std::vector<std::string>{"tensors", "bytes"}));
  EXPECT_EQ(r.inferred.at("SDXL"), (std::vector<std::string>{"tensors"}));
  ASSERT_EQ(r.prompts.size(), 1u);
  EXPECT_EQ(r.prompts[0], (Steps{"+ControlNet(full)", "+SDXL(full)", "+SDXLClipModel(full)", "SDXL:25@408"}));
}

// A load line no request named becomes 'unnamed'; a later request of the
// same size names it, everywhere, instead of making a second model.
TEST(ComfyLogShapes, AnUnnamedModelTakesTheNameOfALaterRequestOfItsSize) {
  const Imported r = Import("unnamed-then-named.txt");
  EXPECT_EQ(r.sizes.size(), 2u);
  EXPECT_EQ(r.sizes.at("FluxClipModel_"), MiB(4780.25));
  ASSERT_EQ(r.prompts.size(), 2u);
  EXPECT_EQ(r.prompts[0].front(), "+FluxClipModel_(full)");
  EXPECT_EQ(r.prompts[1].front(), "+FluxClipModel_(full)");
  bool said = false;
  for (const std::string& w : r.warnings) said |= w.find("was 'FluxClipModel_'") != std::string::npos;
  EXPECT_TRUE(said);
}

// "Processing interrupted" fails its prompt like an exception; requests an
// exception cut off were never loaded; a prompt with no model line (loading
// images) is said to hold nothing to simulate.
TEST(ComfyLogShapes, InterruptionsFailuresAndIdlePrompts) {
  const Imported r = Import("failures-and-idle-prompts.txt");
  ASSERT_EQ(r.prompts.size(), 3u);
  EXPECT_EQ(r.prompts[0], (Steps{"+SD1ClipModel(full)", "+BaseModel(full)"}));
  EXPECT_EQ(r.prompts[1], Steps{}) << "WAN21_Vace was requested, then the exception: no load";
  EXPECT_EQ(r.prompts[2], Steps{});
  EXPECT_EQ(r.sizes.count("WAN21_Vace"), 0u);
  EXPECT_EQ(r.measured, (std::vector<Nanos>{6'400'000'000, 1'200'000'000, 16'300'000'000}));
  auto warned = [&](const std::string& what) {
    for (const std::string& w : r.warnings)
      if (w.find(what) != std::string::npos) return true;
    return false;
  };
  EXPECT_TRUE(warned("prompt 1 failed (interrupted)"));
  EXPECT_TRUE(warned("prompt 2 failed (an exception)"));
  EXPECT_TRUE(warned("cut off by the failure ('WAN21_Vace' first): not loaded"));
  EXPECT_TRUE(warned("prompt 3: 16.30 s measured with no model line in it"));
  // A variant of a listed class takes its base class's typical size.
  EXPECT_EQ(import::TypicalClassMiB("WAN21_Vace"), import::TypicalClassMiB("WAN21"));
  EXPECT_EQ(import::TypicalClassMiB("NoSuchClass_x"), 0);
}

// A console that overwrote its bars shows one line per pass, however alike:
// a run of finished bars is read as close-prints only when it parses whole
// as pairs (second elapsed >= first). Here 44 s then 40 s: four passes.
TEST(ComfyLogShapes, ARunOfPassesIsNotReadAsDoubledBars) {
  const Imported r = Import("batch-of-passes.txt");
  ASSERT_EQ(r.prompts.size(), 1u);
  EXPECT_EQ(r.prompts[0], (Steps{"+QwenImage(full)", "QwenImage:4@11020", "QwenImage:4@10050",
                                 "QwenImage:4@10010", "QwenImage:4@10300"}));
  bool said = false;
  for (const std::string& s : r.summary) said |= s.find("0 doubled final bars") != std::string::npos;
  EXPECT_TRUE(said);
}

// docker --timestamps: an RFC 3339 stamp with nanoseconds and a Z.
TEST(ComfyLogShapes, DockerTimestampsAreAPrefix) {
  const Imported r = Import("prefix-docker-timestamps.txt");
  ASSERT_EQ(r.prompts.size(), 1u);
  EXPECT_EQ(r.prompts[0], (Steps{"+SDXLClipModel(full)", "+SDXL(full)", "SDXL:25@322", "+AutoencoderKL(full)"}));
  EXPECT_EQ(r.measured, (std::vector<Nanos>{12'900'000'000}));
  auto full = import::ImportComfyLog(Log("prefix-docker-timestamps.txt"), "d.log");
  ASSERT_TRUE(full.ok());
  ASSERT_TRUE(full->trace.header.machine.has_value());
  EXPECT_EQ(full->trace.header.machine->vram, 16376LL << 20);
  EXPECT_EQ(full->trace.header.machine->device, "cuda:0 NVIDIA GeForce RTX 4080 : cudaMallocAsync");
}

// A partial load no request names, larger than a model known only by a
// lower bound, is that model (its bound grows), not a new 'unnamed'.
TEST(ComfyLogShapes, AnUnrequestedPartialLoadGrowsALowerBound) {
  auto r = import::ImportComfyLog(
      "got prompt\nRequested to load Flux\nloaded partially 8000.00 7990.00 0\n"
      "100%|##########| 20/20 [00:40<00:00,  2.00s/it]\nPrompt executed in 50.00 seconds\n"
      "got prompt\nloaded partially 9000.00 8995.00 0\n"
      "100%|##########| 20/20 [00:38<00:00,  1.90s/it]\nPrompt executed in 45.00 seconds\n",
      "bound.log");
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  std::vector<std::string> models, loads;
  for (const auto& e : r->trace.events) {
    if (e.type == EventType::kModel) models.push_back(e.model);
    if (e.type == EventType::kLoad) loads.push_back(e.model);
  }
  EXPECT_EQ(models, (std::vector<std::string>{"Flux"}));
  EXPECT_EQ(loads, (std::vector<std::string>{"Flux", "Flux"}));
}

// A pass on a model loaded before the log began cannot be replayed: the
// importer says its prompt's time is not comparable.
TEST(ComfyLogShapes, APassOnAModelNoLineLoadedMakesThePromptNotComparable) {
  auto r = import::ImportComfyLog(
      "got prompt\n100%|##########| 4/4 [00:35<00:00,  8.79s/it]\nRequested to load WanVAE\n"
      "loaded completely 9000.00 242.03 True\nPrompt executed in 40.00 seconds\n",
      "before.log");
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  bool said = false;
  for (const auto& w : r->warnings)
    said |= w.find("prompt 1: a sampler pass on a model no line loaded") != std::string::npos &&
            w.find("not comparable") != std::string::npos;
  EXPECT_TRUE(said);
}

// Only DirectML states a placeholder VRAM: a CUDA log that loads more than
// its stated VRAM in one prompt (models offloaded between uses) keeps it.
TEST(ComfyLogShapes, AStatedCudaVramIsKept) {
  auto r = import::ImportComfyLog(
      "Total VRAM 8192 MB, total RAM 32000 MB\nDevice: cuda:0 NVIDIA GeForce RTX 3070 : native\ngot prompt\n"
      "Requested to load WanTEModel\nloaded completely 7000.00 6419.48 True\nRequested to load WAN21\n"
      "loaded completely 7000.00 5400.00 True\nPrompt executed in 90.00 seconds\n",
      "cuda.log");
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  ASSERT_TRUE(r->trace.header.machine.has_value());
  EXPECT_EQ(r->trace.header.machine->vram, 8192LL << 20);
}

TEST(ComfyLogShapes, AnExpertEmptiedBeforeTheSameClassIsAskedForAgainIsAnotherModel) {
  const Imported r = Import("two-experts-emptied.txt");
  // No model_type line: only the first expert's unload to 0 MB before the
  // second request says these are two models (issue 29), not one used twice.
  EXPECT_EQ(r.sizes.at("WAN21"), MiB(12500.00 + 1100.40));
  ASSERT_TRUE(r.sizes.count("WAN21#2")) << "read as one model";
  EXPECT_EQ(r.sizes.at("WAN21#2"), MiB(12500.00 + 1100.40));
  ASSERT_EQ(r.prompts.size(), 1u);
  EXPECT_EQ(r.prompts[0], (Steps{"+WanTEModel(full)", "+WAN21(partial)", "WAN21:8@15000", "-WAN21", "+WAN21#2(partial)",
                                 "WAN21#2:8@16000"}));
}

TEST(ComfyLogShapes, BarStepTimesHoldTheirStreaming) {
  auto r = import::ImportComfyLog(Log("two-experts-emptied.txt"), "x");
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  int computes = 0;
  for (const traces::TraceEvent& e : r->trace.events)
    if (e.type == EventType::kCompute) {
      ++computes;
      EXPECT_TRUE(e.step_includes_streaming);
    }
  EXPECT_EQ(computes, 2);
}

}  // namespace
}  // namespace residency
