// The agent and captured traffic (issue 28): a captured trace POSTed to an
// agent with a gate gets its fidelity rows and its verdicts with no other
// request; the replay queue survives a restart; a full queue refuses new
// captured traces without storing them; the real server's figures and the
// simulator's error reach /metrics; a bad gate file stops the agent.
#include <gtest/gtest.h>

#include <chrono>
#include <fstream>
#include <set>
#include <thread>

#include "harness/gate/gate_config.h"
#include "harness/store/results_store.h"
#include "runtime/io/whole_file.h"
#include "tests/agent_fixture.h"
#include "traces/bundled.h"

namespace residency {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;
using testing::AgentTest;
using testing::HttpCall;
using testing::kToken;
using testing::Reply;

std::string CapturedTrace() {
  auto text = io::ReadWholeFile(std::string(RESIDENCY_TEST_DATA_DIR) + "/captured-tiny.jsonl");
  EXPECT_TRUE(text.ok());
  return *text;
}

// The same captured session under another name: distinct content.
std::string CapturedVariant(int n) {
  std::string t = CapturedTrace();
  const std::string key = "\"name\":\"captured-tiny\"";
  t.replace(t.find(key), key.size(), "\"name\":\"captured-tiny-" + std::to_string(n) + "\"");
  return t;
}

const char* kGate = R"({"profiles": ["captured", "rtx5060-16g"], "baseline": "captured",
  "candidates": ["comfy-aug2026", {"name": "no-pin", "flags": ["--disable-pinned-memory"]}],
  "metric": "makespan", "threshold": 5})";

class CapturedAgentTest : public AgentTest {
 protected:
  agent::AgentOptions WithGate(const std::string& gate = kGate) {
    gate_dir_ = testing::TempDir("gate");
    const std::string path = (gate_dir_ / "gate.json").string();
    std::ofstream(path) << gate;
    agent::AgentOptions o;
    o.gate_path = path;
    return o;
  }
  // GET /v1/gate until it holds `n` verdicts and nothing waits.
  json WaitForVerdicts(std::size_t n, double seconds = 30) {
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::duration<double>(seconds);
    json last;
    while (std::chrono::steady_clock::now() < deadline) {
      Reply r = HttpCall(port_, "GET", "/v1/gate");
      if (r.status == 200) {
        last = json::parse(r.body);
        if (last["verdicts"].size() >= n && last["queue"]["queued"] == 0 && last["queue"]["running"] == 0) return last;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    ADD_FAILURE() << "never " << n << " verdicts: " << last.dump();
    return last;
  }
  void TearDown() override {
    AgentTest::TearDown();
    if (!gate_dir_.empty()) fs::remove_all(gate_dir_);
  }
  fs::path gate_dir_;
};

TEST_F(CapturedAgentTest, ACapturedTraceGetsFidelityAndVerdictsWithNoOtherRequest) {
  Start(WithGate());
  const std::string id = PostTrace(CapturedTrace());
  const json gate = WaitForVerdicts(4);  // 2 profiles x 2 candidates
  ASSERT_EQ(gate["verdicts"].size(), 4u) << gate.dump();
  EXPECT_EQ(gate["queue"]["done"], 1);
  EXPECT_EQ(gate["gate"]["baseline"], "captured");
  std::set<std::string> seen;
  for (const json& v : gate["verdicts"]) {
    EXPECT_EQ(v["trace_id"], id);
    EXPECT_EQ(v["baseline"], "captured");
    seen.insert(v["profile"].get<std::string>() + "/" + v["candidate"].get<std::string>());
    // The figures behind each verdict, and the runs they came from.
    EXPECT_TRUE(v["baseline_value"].is_number()) << v.dump();
    EXPECT_TRUE(v["candidate_value"].is_number()) << v.dump();
    EXPECT_EQ(HttpCall(port_, "GET", "/v1/runs/" + std::to_string(v["candidate_run"].get<std::int64_t>())).status, 200);
  }
  EXPECT_EQ(seen, (std::set<std::string>{"captured/comfy-aug2026", "captured/no-pin", "rtx5060-16g/comfy-aug2026",
                                         "rtx5060-16g/no-pin"}));
  // The captured session on its own machine: its two prompts against the captured times.
  Reply f = HttpCall(port_, "GET", "/v1/fidelity?trace=" + id);
  ASSERT_EQ(f.status, 200);
  const json fid = json::parse(f.body);
  ASSERT_EQ(fid["prompts"].size(), 2u) << f.body;
  for (const json& p : fid["prompts"]) {
    EXPECT_EQ(p["host"], "bench-7");
    EXPECT_EQ(p["status"], "ok");
    EXPECT_TRUE(p["error"].is_number());
    EXPECT_NE(p["policy"].get<std::string>().find("comfy-classic + --reserve-vram 0.5"), std::string::npos) << p.dump();
  }
  EXPECT_EQ(fid["hosts"]["bench-7"]["compared"], 2);
  // What the real server did and how far the simulator was, in /metrics.
  const std::string m = HttpCall(port_, "GET", "/metrics").body;
  for (const char* series :
       {"residency_captured_prompts_total{host=\"bench-7\",status=\"ok\"} 2",
        "residency_fidelity_abs_error_ratio_count{host=\"bench-7\"} 2",
        "residency_captured_model_loads_total{from=\"disk\",host=\"bench-7\"}",
        "residency_captured_unloads_total{host=\"bench-7\",reason=",
        "residency_captured_replays_total{status=\"done\"} 1",
        "residency_gate_verdicts_total{candidate=\"no-pin\",profile=\"rtx5060-16g\",verdict="})
    EXPECT_NE(m.find(series), std::string::npos) << series;
}

TEST_F(CapturedAgentTest, TheReplayQueueAndItsVerdictsSurviveARestart) {
  // What a killed agent leaves: one trace stored and queued, one it was replaying.
  dir_ = testing::TempDir("restart");
  {
    fs::create_directories(dir_ / "data");
    auto s = store::ResultsStore::Open((dir_ / "data" / "results.db").string());
    ASSERT_TRUE(s.ok());
    bool created = false, full = false;
    auto a = (*s)->PutCapturedTrace("a", "captured:comfyui", CapturedVariant(1), 10, &created, &full);
    auto b = (*s)->PutCapturedTrace("b", "captured:comfyui", CapturedVariant(2), 10, &created, &full);
    ASSERT_TRUE(a.ok() && b.ok() && created && !full);
    ASSERT_TRUE((*s)->SetCapturedState(*b, "running", "").ok());
  }
  Start(WithGate());
  json gate = WaitForVerdicts(8);
  EXPECT_EQ(gate["verdicts"].size(), 8u);
  EXPECT_EQ(gate["queue"]["done"], 2);
  // Stored: a second restart answers the same verdicts and replays nothing again.
  Stop();
  Start(WithGate());
  gate = WaitForVerdicts(8);
  EXPECT_EQ(gate["verdicts"].size(), 8u);
  EXPECT_EQ(gate["queue"]["done"], 2);
  EXPECT_EQ(HttpCall(port_, "GET", "/metrics").body.find("residency_captured_replays_total{"), std::string::npos);
}

TEST_F(CapturedAgentTest, AFullReplayQueueRefusesNewCapturedTracesWithoutStoringThem) {
  agent::AgentOptions o;
  o.replay_queue_limit = 0;  // full from the start
  Start(o);
  Reply r = HttpCall(port_, "POST", "/v1/traces", CapturedTrace(), kToken);
  EXPECT_EQ(r.status, 503) << r.body;
  EXPECT_NE(r.body.find("replay queue full"), std::string::npos) << r.body;
  EXPECT_EQ(HttpCall(port_, "GET", "/v1/traces").body, "[]\n");  // nothing stored: the sender keeps it
  // A trace without a machine record is not queued, so the limit does not apply.
  auto plain = io::ReadWholeFile(traces::DataDir() + "/examples/sdxl-txt2img.jsonl");
  ASSERT_TRUE(plain.ok());
  EXPECT_EQ(HttpCall(port_, "POST", "/v1/traces", *plain, kToken).status, 201);
}

TEST_F(CapturedAgentTest, WithoutAGateACapturedTraceGetsItsFidelityOnly) {
  Start();
  const std::string id = PostTrace(CapturedTrace());
  const json gate = WaitForVerdicts(0);
  EXPECT_TRUE(gate["gate"].is_null());
  EXPECT_EQ(gate["queue"]["done"], 1);
  const json fid = json::parse(HttpCall(port_, "GET", "/v1/fidelity").body);
  EXPECT_EQ(fid["prompts"].size(), 2u);
  EXPECT_EQ(HttpCall(port_, "GET", "/v1/fidelity?trace=zz").status, 400);
  EXPECT_EQ(HttpCall(port_, "GET", "/v1/gate?trace=../x").status, 400);
}

TEST(GateConfig, ABadGateNamesItsField) {
  struct Case {
    std::string text, needle;
  };
  for (const Case& c : {
           Case{R"({"baseline": "captured", "candidates": ["drop"]})", "'profiles'"},
           Case{R"({"profiles": ["nope-9000"], "baseline": "captured", "candidates": ["drop"]})", "nope-9000"},
           Case{R"({"profiles": ["captured"], "candidates": ["drop"]})", "'baseline' is required"},
           Case{R"({"profiles": ["captured"], "baseline": "captured", "candidates": []})", "'candidates'"},
           Case{R"({"profiles": ["captured"], "baseline": "captured", "candidates": ["no-such-policy"]})",
                "no-such-policy"},
           Case{R"({"profiles": ["captured"], "baseline": "drop", "candidates": [{"name": "x", "policy": "ram-lru", "flags": ["--cpu"]}]})",
                "'policy' must be captured"},
           Case{R"({"profiles": ["captured"], "baseline": "captured", "candidates": ["captured"]})", "two policies are named"},
           Case{R"({"profiles": ["captured"], "baseline": "captured", "candidates": [{"name": "a b"}]})", "must be 1-64"},
           Case{R"({"profiles": ["captured"], "baseline": "captured", "candidates": ["drop"], "metric": "speed"})", "unknown metric"},
           Case{R"({"profiles": ["captured"], "baseline": "captured", "candidates": ["drop"], "threshold": -1})", "'threshold'"},
           Case{R"({"profiles": ["captured"], "baseline": "captured", "candidates": ["drop"], "extra": 1})", "extra"},
       }) {
    auto g = gate::ParseGateConfig(c.text, "gate.json");
    ASSERT_FALSE(g.ok()) << c.text;
    EXPECT_NE(g.status().message().find("gate.json"), std::string::npos) << g.status().message();
    EXPECT_NE(g.status().message().find(c.needle), std::string::npos) << c.needle << " in " << g.status().message();
  }
  auto ok = gate::ParseGateConfig(kGate, "gate.json");
  ASSERT_TRUE(ok.ok()) << ok.status().ToString();
  EXPECT_EQ(ok->candidates.size(), 2u);
  EXPECT_EQ(ok->candidates[1].flags, (std::vector<std::string>{"--disable-pinned-memory"}));
  EXPECT_EQ(ok->column, "makespan_ns");
}

TEST(GateConfig, AnAgentWithABadGateDoesNotStart) {
  const fs::path dir = testing::TempDir("badgate");
  std::ofstream(dir / "gate.json") << R"({"profiles": ["captured"], "baseline": "captured", "candidates": ["nope"]})";
  agent::AgentOptions o;
  o.data_dir = (dir / "data").string();
  o.gate_path = (dir / "gate.json").string();
  auto a = agent::Agent::Open(o);
  ASSERT_FALSE(a.ok());
  EXPECT_NE(a.status().message().find("--gate"), std::string::npos) << a.status().message();
  EXPECT_NE(a.status().message().find("nope"), std::string::npos) << a.status().message();
  fs::remove_all(dir);
}

}  // namespace
}  // namespace residency
