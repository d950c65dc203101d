// Trace format: bundled traces parse, round trips are lossless, errors name
// file:line and the field, tensor expansion is deterministic and exact.
#include <gtest/gtest.h>

#include <filesystem>

#include "traces/bundled.h"
#include "traces/trace.h"
#include "traces/units.h"

namespace residency::traces {
namespace {

const char* kHeader = R"({"format":"residency-trace","version":1,"name":"t"})";

std::string Error(const std::string& body) {
  auto t = ParseTrace(std::string(kHeader) + "\n" + body, "x.jsonl");
  if (t.ok()) {
    auto w = ToWorkload(*t, "x.jsonl");
    return w.ok() ? "" : w.status().message();
  }
  return t.status().message();
}

TEST(Trace, BundledExamplesParseAndConvert) {
  const auto examples = ListBundled("examples");
  ASSERT_GE(examples.size(), 5u);
  for (const auto& e : examples) {
    auto t = ReadTraceFile(e.path);
    ASSERT_TRUE(t.ok()) << t.status().ToString();
    auto w = ToWorkload(*t, e.path);
    ASSERT_TRUE(w.ok()) << w.status().ToString();
    EXPECT_GT(w->ops.size(), 10u) << e.name;
    int prompts = 0;
    for (const auto& op : w->ops) prompts += op.kind == engine::OpKind::kPromptBegin;
    EXPECT_GE(prompts, 3) << e.name << " needs several prompts so caching matters";
  }
}

TEST(Trace, RoundTripIsLossless) {
  for (const auto& e : ListBundled("examples")) {
    auto first = ReadTraceFile(e.path);
    ASSERT_TRUE(first.ok());
    const std::string written = WriteTrace(*first);
    auto second = ParseTrace(written, "rewritten");
    ASSERT_TRUE(second.ok()) << second.status().ToString();
    ASSERT_EQ(first->events.size(), second->events.size());
    for (std::size_t i = 0; i < first->events.size(); ++i)
      EXPECT_TRUE(first->events[i].SameContent(second->events[i])) << e.name << " event " << i;
    EXPECT_EQ(first->header.name, second->header.name);
    EXPECT_EQ(first->header.description, second->header.description);
    EXPECT_EQ(WriteTrace(*second), written) << "writing is canonical";
  }
}

TEST(Trace, CapturedAdditionsRoundTrip) {
  auto first = ReadTraceFile(std::string(RESIDENCY_TEST_DATA_DIR) + "/captured-tiny.jsonl");
  ASSERT_TRUE(first.ok()) << first.status().ToString();
  ASSERT_TRUE(first->header.machine.has_value());
  EXPECT_EQ(first->header.machine->vram, 12LL << 30);
  EXPECT_EQ(first->header.machine->host, "bench-7");
  EXPECT_EQ(first->header.machine->flags, (std::vector<std::string>{"--reserve-vram", "0.5"}));
  const std::string written = WriteTrace(*first);
  auto second = ParseTrace(written, "rewritten");
  ASSERT_TRUE(second.ok()) << second.status().ToString();
  EXPECT_EQ(first->header.machine, second->header.machine);
  ASSERT_EQ(first->events.size(), second->events.size());
  int unloads = 0, nodes = 0;
  for (std::size_t i = 0; i < first->events.size(); ++i) {
    EXPECT_TRUE(first->events[i].SameContent(second->events[i])) << "event " << i;
    unloads += first->events[i].type == EventType::kUnload;
    nodes += first->events[i].type == EventType::kNode;
  }
  EXPECT_EQ(unloads, 1);
  EXPECT_EQ(nodes, 4);
  EXPECT_EQ(WriteTrace(*second), written);
  // Informational events keep ops one to one with events, as no-ops.
  auto w = ToWorkload(*first, "captured-tiny");
  ASSERT_TRUE(w.ok()) << w.status().ToString();
  ASSERT_EQ(w->ops.size(), first->events.size());
  for (std::size_t i = 0; i < w->ops.size(); ++i) {
    const bool note = first->events[i].type == EventType::kUnload || first->events[i].type == EventType::kNode;
    EXPECT_EQ(w->ops[i].kind == engine::OpKind::kNote, note) << i;
  }
}

TEST(Trace, CapturedAdditionsAreChecked) {
  EXPECT_EQ(Error(R"({"type":"model","model":"a","files":[{"path":"a","bytes":10}]})"
                  "\n" R"({"type":"unload","model":"a","freed_bytes":5,"reason":"tired"})"),
            "x.jsonl:3: field 'reason' must be one of free_memory, unload_all_models, cleanup_models, "
            "model_unload, partially_unload, finalizer, on_demand, other; got 'tired'");
  // An unload cannot free, or leave, more than the model holds (issue 29).
  EXPECT_EQ(Error(R"({"type":"model","model":"a","files":[{"path":"a","bytes":10}]})"
                  "\n" R"({"type":"unload","model":"a","freed_bytes":14,"reason":"other"})"),
            "x.jsonl:3: unload of 'a': freed_bytes 14 is more than the model's 10 bytes");
  EXPECT_EQ(Error(R"({"type":"model","model":"a","files":[{"path":"a","bytes":10}]})"
                  "\n" R"({"type":"unload","model":"a","freed_bytes":1,"remaining_bytes":11,"reason":"other"})"),
            "x.jsonl:3: unload of 'a': remaining_bytes 11 is more than the model's 10 bytes");
  EXPECT_EQ(Error(R"({"type":"prompt_end","prompt":1,"status":"meh"})"),
            "x.jsonl:2: field 'status' must be ok, failed or interrupted, got 'meh'");
  EXPECT_EQ(Error(R"({"type":"prompt_begin","prompt":1,"status":"ok"})"), "x.jsonl:2: 'status' belongs on prompt_end");
  EXPECT_EQ(Error(R"({"type":"compute","models":[],"steps":1,"step_ns":1,"step_includes_streaming":1})"),
            "x.jsonl:2: field 'step_includes_streaming' must be true or false");
  EXPECT_EQ(Error(R"({"type":"unload","model":"ghost","freed_bytes":5,"reason":"other"})"),
            "x.jsonl:2: model 'ghost' is used before its model line");
  EXPECT_EQ(Error(R"({"type":"node","prompt":1,"node":"3","class":"KSampler"})"),
            "x.jsonl:2: missing field 'duration_ns'");
  EXPECT_EQ(Error(R"({"type":"node","prompt":1,"node":"3","class":"K","duration_ns":1,"cached":"yes"})"),
            "x.jsonl:2: field 'cached' must be true or false");
  EXPECT_EQ(Error(R"({"type":"prompt_end","prompt":1,"inferred":["measured_wall_ns"]})"),
            "x.jsonl:2: 'inferred' names 'measured_wall_ns', which this line does not have");
  EXPECT_EQ(Error(R"({"type":"prompt_end","prompt":1,"inferred":"prompt"})"),
            "x.jsonl:2: field 'inferred' must be an array of field names");
  EXPECT_EQ(Error(R"({"type":"prompt_end","prompt":1,"measured_wall_ns":5,"inferred":["measured_wall_ns"]})"), "");
  auto machine = [](const std::string& m) {
    auto t = ParseTrace(R"({"format":"residency-trace","version":1,"name":"t","machine":)" + m + "}", "m.jsonl");
    return t.ok() ? std::string() : t.status().message();
  };
  EXPECT_EQ(machine(R"({"ram":"32 GiB","vram":"8 GiB"})"), "");
  EXPECT_EQ(machine(R"({"ram":"32 GiB","unified":true,"vram":"8 GiB"})"),
            "m.jsonl:1: machine: a unified machine has no separate 'vram'; leave it out");
  EXPECT_EQ(machine(R"({"ram":"32 GiB"})"), "m.jsonl:1: machine: missing field 'vram'");
  EXPECT_EQ(machine(R"({"vram":"8 GiB"})"), "m.jsonl:1: machine: missing field 'ram'");
  EXPECT_EQ(machine(R"({"ram":"32 GiB","vram":"8 GiB","gpu":"x"})"), "m.jsonl:1: machine: unknown field 'gpu'");
}

// A workflow switch deletes model objects and builds them again from the same
// files: a name may be defined again after its delete (a new model), never
// while its model lives.
TEST(Trace, AModelNameIsDefinedAgainOnlyAfterItsDelete) {
  const std::string m = R"({"type":"model","model":"a","files":[{"path":"a.safetensors","bytes":10}]})";
  EXPECT_EQ(Error(m + "\n" + m), "x.jsonl:3: model 'a' is defined twice (define it again only after its delete)");
  auto t = ParseTrace(R"({"format":"residency-trace","version":1,"name":"t"})" "\n" + m + "\n" +
                          R"({"type":"load","model":"a"})" "\n" R"({"type":"release","model":"a"})" "\n"
                          R"({"type":"delete","model":"a"})" "\n" + m + "\n" R"({"type":"load","model":"a"})",
                      "x.jsonl");
  ASSERT_TRUE(t.ok()) << t.status().ToString();
  auto w = ToWorkload(*t, "x.jsonl");
  ASSERT_TRUE(w.ok()) << w.status().ToString();
  ASSERT_EQ(w->ops.size(), 6u);
  EXPECT_EQ(w->ops[1].model, 1u);
  EXPECT_EQ(w->ops[3].model, 1u) << "the delete names the first model";
  EXPECT_EQ(w->ops[4].model, 2u) << "the second definition is a new model";
  EXPECT_EQ(w->ops[5].model, 2u) << "later ops name the new one";
  EXPECT_EQ(w->ops[4].files.at(0).path, w->ops[0].files.at(0).path);
}

TEST(Trace, ErrorsNameFileLineAndField) {
  EXPECT_EQ(Error("{not json"), "x.jsonl:2: not valid JSON");
  EXPECT_EQ(Error(R"({"type":"load","model":"a","colour":"red"})"),
            "x.jsonl:2: unknown field 'colour'");
  EXPECT_EQ(Error(R"({"type":"fly"})"), "x.jsonl:2: unknown event type 'fly'");
  // The results store keys a run's prompts by id (a trace of 1, 2, 1, 2 broke sweeps).
  EXPECT_EQ(Error(R"({"type":"prompt_begin","prompt":1})" "\n" R"({"type":"prompt_end","prompt":1})" "\n"
                  R"({"type":"prompt_begin","prompt":1})"),
            "x.jsonl:4: prompt 1 begins a second time (first at line 2); prompt ids must be unique within a trace");
  EXPECT_EQ(Error("\n\n" R"({"type":"load","model":"a"})"),
            "x.jsonl:4: model 'a' is used before its model line");
  EXPECT_EQ(Error(R"({"type":"model","model":"a","files":[{"path":"a","bytes":10,"tensors":[3,3]}]})"),
            "x.jsonl:2: files[0]: tensors of 'a' sum to 6 bytes, but 'bytes' is 10");
  EXPECT_EQ(Error(R"({"type":"load","model":"a","mode":"partial"})"),
            "x.jsonl:2: missing field 'device_bytes'");
  EXPECT_EQ(Error(R"({"type":"compute","models":["a"],"steps":-1,"step_ns":5})"),
            "x.jsonl:2: field 'steps' must be in [0, 1000000], got -1");
  EXPECT_EQ(Error(R"({"type":"model","model":"a","files":[{"path":"a","bytes":"3 parsecs"}]})"),
            "x.jsonl:2: files[0]: field 'bytes': unknown unit \"parsecs\" in \"3 parsecs\" "
            "(known: B, KB, MB, GB, TB, KiB, MiB, GiB, TiB)");
  auto no_header = ParseTrace(R"({"type":"load","model":"a"})", "y.jsonl");
  EXPECT_EQ(no_header.status().message(), "y.jsonl:1: missing field 'format'");
  auto future = ParseTrace(R"({"format":"residency-trace","version":2,"name":"t"})", "z.jsonl");
  EXPECT_NE(future.status().message().find("z.jsonl:1: trace format version 2 is not supported"),
            std::string::npos);
  auto missing = ReadTraceFile("/nonexistent/t.jsonl");
  EXPECT_EQ(missing.status().code(), StatusCode::kNotFound);
  EXPECT_NE(missing.status().message().find("/nonexistent/t.jsonl"), std::string::npos);
}

TEST(Trace, TensorExpansionIsDeterministicAndExact) {
  for (const char* kind : {"uniform", "skewed"}) {
    TensorDistribution d{1095, kind, 7};
    auto a = ExpandTensorSizes(28'600'000'000, d);
    auto b = ExpandTensorSizes(28'600'000'000, d);
    ASSERT_TRUE(a.ok());
    EXPECT_EQ(*a, *b);
    EXPECT_EQ(a->size(), 1095u);
    Bytes sum = 0;
    for (Bytes s : *a) {
      EXPECT_GT(s, 0);
      sum += s;
    }
    EXPECT_EQ(sum, 28'600'000'000);
  }
  EXPECT_FALSE(ExpandTensorSizes(10, {11, "uniform", 1}).ok());
  EXPECT_FALSE(ExpandTensorSizes(10, {2, "bimodal", 1}).ok());
}

TEST(Units, ParseSizesRatesDurations) {
  using nlohmann::json;
  EXPECT_EQ(*ParseBytes(json("2 MiB"), "f"), 2 * 1024 * 1024);
  EXPECT_EQ(*ParseBytes(json("6.94 GB"), "f"), 6'940'000'000);
  EXPECT_EQ(*ParseBytes(json(4096), "f"), 4096);
  EXPECT_EQ(*ParseRate(json("7 GB/s"), "f"), 7'000'000'000);
  EXPECT_EQ(*ParseDuration(json("120 ms"), "f"), 120'000'000);
  EXPECT_EQ(*ParseDuration(json("1.5 s"), "f"), 1'500'000'000);
  EXPECT_FALSE(ParseBytes(json(-1), "f").ok());
  EXPECT_FALSE(ParseBytes(json("lots"), "f").ok());
  EXPECT_FALSE(ParseRate(json("7 GB"), "f").ok());
  EXPECT_FALSE(ParseBytes(json("1e30 TB"), "f").ok());
  EXPECT_FALSE(ParseBytes(json::array(), "f").ok());
}

TEST(Profiles, BundledProfilesAndPoliciesLoad) {
  const auto profiles = ListBundled("profiles");
  ASSERT_GE(profiles.size(), 6u);
  for (const char* required : {"rtx5060-16g", "rtx5060-64g", "rtx4090-64g", "rtx5090-96g",
                               "dgx-spark-128g", "hdd-5060-16g"}) {
    auto p = LoadProfile(required);
    ASSERT_TRUE(p.ok()) << p.status().ToString();
    EXPECT_FALSE(p->sources.empty()) << required << " must say where its numbers come from";
  }
  EXPECT_TRUE(LoadProfile("dgx-spark-128g")->unified);
  for (const char* required : {"drop", "ram-lru", "ram-cost-aware", "mmap-pageable", "read-into",
                               "threaded-direct", "spill"}) {
    auto p = LoadPolicy(required);
    ASSERT_TRUE(p.ok()) << p.status().ToString();
  }
  auto unknown = LoadProfile("rtx9999");
  EXPECT_EQ(unknown.status().code(), StatusCode::kNotFound);
  EXPECT_NE(unknown.status().message().find("rtx4090-64g"), std::string::npos)
      << "the error lists what is bundled";
}

TEST(Profiles, BadFieldsAreNamed) {
  auto p = ParseProfile(R"({"name":"x","ram":"16 GiB","os_reserve":"2 GiB","vram":"8 GiB",
      "disk_read":{"one":"1 GB/s"}})", "p.json");
  EXPECT_EQ(p.status().message(),
            "p.json: field 'disk_read': key 'one' must be a concurrency in [1, 4096]");
  auto q = ParseProfile(R"({"name":"x","ram":"16 GiB"})", "q.json");
  EXPECT_EQ(q.status().message(), "q.json: field 'os_reserve' is missing");
  auto r = ParseProfile("[1,2]", "r.json");
  EXPECT_EQ(r.status().message(), "r.json: expected a JSON object");
  std::string text = WriteProfile(*LoadProfile("rtx5060-16g"));
  text.insert(text.find('{') + 1, R"("device_copies_on_cpu": "yes",)");
  auto s = ParseProfile(text, "s.json");
  EXPECT_NE(s.status().message().find("s.json: field 'device_copies_on_cpu'"), std::string::npos)
      << s.status().message();
}

// On a unified profile `vram` is the cap on device allocations (an APU's
// 36 of 48 GiB): the engine's device limit stops there, not at the pool.
TEST(Profiles, UnifiedVramIsADeviceCap) {
  std::string text = WriteProfile(*LoadProfile("dgx-spark-128g"));
  auto uncapped = ParseProfile(text, "spark.json");
  ASSERT_TRUE(uncapped.ok()) << uncapped.status().ToString();
  engine::Policy policy;
  policy.device_reserve_bytes = 0;
  const auto open = engine::ComputeBudgets(uncapped->Limits(), policy);
  EXPECT_EQ(open.device_limit_bytes, open.host_limit_bytes);
  auto capped = *uncapped;
  capped.vram_bytes = 36LL << 30;
  EXPECT_EQ(engine::ComputeBudgets(capped.Limits(), policy).device_limit_bytes, 36LL << 30);
  auto round = ParseProfile(WriteProfile(capped), "capped.json");
  ASSERT_TRUE(round.ok()) << round.status().ToString();
  EXPECT_EQ(round->vram_bytes, 36LL << 30);
  capped.vram_bytes = capped.ram_bytes + 1;
  auto over = ParseProfile(WriteProfile(capped), "over.json");
  EXPECT_NE(over.status().message().find("over.json: field 'vram' on a unified profile caps device allocations"),
            std::string::npos) << over.status().message();
}

// Whether a unified machine's device allocations can take clean page cache:
// read, written back, defaulted to true, refused on a discrete card.
TEST(Profiles, DeviceReclaimsPageCacheIsAUnifiedOnlyField) {
  auto spark = LoadProfile("dgx-spark-128g");
  ASSERT_TRUE(spark.ok());
  EXPECT_FALSE(spark->device_reclaims_page_cache) << "the bundled Spark states false (ComfyUI #10896)";
  auto round = ParseProfile(WriteProfile(*spark), "spark.json");
  ASSERT_TRUE(round.ok()) << round.status().ToString();
  EXPECT_FALSE(round->device_reclaims_page_cache);
  std::string text = WriteProfile(*spark);
  text.replace(text.find("\"device_reclaims_page_cache\": false,"), std::string("\"device_reclaims_page_cache\": false,").size(), "");
  auto defaulted = ParseProfile(text, "apple.json");
  ASSERT_TRUE(defaulted.ok()) << defaulted.status().ToString() << "\n" << text;
  EXPECT_TRUE(defaulted->device_reclaims_page_cache);
  std::string discrete = WriteProfile(*LoadProfile("rtx5060-16g"));
  discrete.insert(discrete.find('{') + 1, R"("device_reclaims_page_cache": true,)");
  auto refused = ParseProfile(discrete, "card.json");
  EXPECT_NE(refused.status().message().find("card.json: field 'device_reclaims_page_cache' applies to unified profiles only"),
            std::string::npos) << refused.status().message();
}

// The host device's CPU copies survive a write and a read; GPU profiles do
// not carry the field at all.
TEST(Profiles, DeviceCopiesOnCpuRoundTrips) {
  auto gpu = LoadProfile("rtx5060-16g");
  ASSERT_TRUE(gpu.ok());
  EXPECT_FALSE(gpu->device_copies_on_cpu);
  EXPECT_EQ(WriteProfile(*gpu).find("device_copies_on_cpu"), std::string::npos);
  Profile host = *gpu;
  host.device_copies_on_cpu = true;
  auto back = ParseProfile(WriteProfile(host), "host.json");
  ASSERT_TRUE(back.ok()) << back.status().ToString();
  EXPECT_TRUE(back->device_copies_on_cpu);
}

// Cold buffered reads have their own optional table; without it they use
// disk_read, and bundled (GPU) profiles do not carry it.
TEST(Profiles, BufferedDiskTableIsOptionalAndRoundTrips) {
  auto gpu = LoadProfile("rtx5060-16g");
  ASSERT_TRUE(gpu.ok());
  EXPECT_EQ(WriteProfile(*gpu).find("disk_read_buffered"), std::string::npos);
  EXPECT_EQ(gpu->DiskReadBufferedBytesPerSecond(8), gpu->DiskReadBytesPerSecond(8));
  Profile p = *gpu;
  p.disk_read_buffered_bytes_per_second = {{1, 1000000000}, {8, 3000000000}};
  auto back = ParseProfile(WriteProfile(p), "b.json");
  ASSERT_TRUE(back.ok()) << back.status().ToString();
  EXPECT_EQ(back->disk_read_buffered_bytes_per_second, p.disk_read_buffered_bytes_per_second);
  EXPECT_DOUBLE_EQ(back->DiskReadBufferedBytesPerSecond(1), 1e9);
  EXPECT_DOUBLE_EQ(back->DiskReadBufferedBytesPerSecond(4), 1e9 + 3.0 / 7.0 * 2e9);  // interpolated
  EXPECT_DOUBLE_EQ(back->DiskReadBufferedBytesPerSecond(16), 3e9);                    // held flat
  EXPECT_NE(back->DiskReadBytesPerSecond(1), 1e9) << "the O_DIRECT table is left alone";
  std::string text = WriteProfile(*gpu);
  text.insert(text.find('{') + 1, R"("disk_read_buffered": {"2": "0 B/s"},)");
  auto bad = ParseProfile(text, "z.json");
  EXPECT_EQ(bad.status().message(), "z.json: field 'disk_read_buffered'[2] must be > 0");
}

}  // namespace
}  // namespace residency::traces
