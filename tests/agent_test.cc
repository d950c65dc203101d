// The HTTP agent driven over loopback: routes, auth, hostile input, a sweep
// end to end, promtool on /metrics, SIGKILL during ingestion and a graceful
// SIGTERM that leaves the rest of a sweep queued for the next start.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <boost/asio/read.hpp>
#include <boost/asio/write.hpp>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <mutex>
#include <sstream>
#include <nlohmann/json.hpp>
#include <thread>

#include "harness/agent/agent.h"
#include "harness/store/results_store.h"
#include "tests/http_test_client.h"
#include "traces/bundled.h"
#include "traces/json_fields.h"

namespace residency {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;
using testing::HttpCall;
using testing::HttpConnection;
using testing::Reply;

const char* kToken = "s3cret-token";

std::string ExampleTrace(const std::string& name) {
  auto text = traces::ReadWholeFile(traces::DataDir() + "/examples/" + name + ".jsonl");
  EXPECT_TRUE(text.ok());
  return *text;
}

// The same trace with a different description: distinct content, valid.
std::string Variant(const std::string& trace, int n) {
  std::string out = trace;
  const std::string key = "\"description\": \"";
  const auto pos = out.find(key);
  out.insert(pos + key.size(), "variant " + std::to_string(n) + " ");
  return out;
}

fs::path TempDir(const std::string& tag) {
  fs::path d = fs::temp_directory_path() /
               ("residency-agent-" + std::to_string(::getpid()) + "-" + tag + "-" +
                ::testing::UnitTest::GetInstance()->current_test_info()->name());
  fs::remove_all(d);
  fs::create_directories(d);
  return d;
}

json WaitForSweep(std::uint16_t port, std::int64_t id, const std::string& status, double seconds) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::duration<double>(seconds);
  json last;
  while (std::chrono::steady_clock::now() < deadline) {
    Reply r = HttpCall(port, "GET", "/v1/sweeps/" + std::to_string(id));
    if (r.status == 200) {
      last = json::parse(r.body);
      if (last["status"] == status) return last;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  ADD_FAILURE() << "sweep " << id << " never reached '" << status << "': " << last.dump();
  return last;
}

class AgentTest : public ::testing::Test {
 protected:
  void Start(agent::AgentOptions ao = {}, agent::ServerOptions so = {}) {
    dir_ = TempDir("inproc");
    ao.data_dir = (dir_ / "data").string();
    if (ao.token.empty()) ao.token = kToken;
    auto a = agent::Agent::Open(ao);
    ASSERT_TRUE(a.ok()) << a.status().ToString();
    agent_ = std::move(*a);
    so.port = 0;
    so.timeout = std::chrono::milliseconds(500);
    so.body_limit = 1u << 20;
    so.observe = [this](const std::string& route, int code, double s) { agent_->metrics().RecordHttp(route, code, s); };
    auto s = agent::HttpServer::Start(so, [this](const agent::HttpRequest& r) { return agent_->Handle(r); });
    ASSERT_TRUE(s.ok()) << s.status().ToString();
    server_ = std::move(*s);
    port_ = server_->port();
  }
  void TearDown() override {
    if (server_) server_->Stop();
    if (agent_) agent_->Shutdown();
    fs::remove_all(dir_);
  }
  std::string PostTrace(const std::string& body) {
    Reply r = HttpCall(port_, "POST", "/v1/traces", body, kToken);
    EXPECT_TRUE(r.status == 201 || r.status == 200) << r.status << " " << r.body;
    return json::parse(r.body).value("id", "");
  }

  fs::path dir_;
  std::unique_ptr<agent::Agent> agent_;
  std::unique_ptr<agent::HttpServer> server_;
  std::uint16_t port_ = 0;
};

TEST_F(AgentTest, HealthzAndRoutesAnswer) {
  Start();
  Reply h = HttpCall(port_, "GET", "/healthz");
  EXPECT_EQ(h.status, 200);
  EXPECT_EQ(json::parse(h.body)["status"], "ok");
  EXPECT_EQ(HttpCall(port_, "GET", "/nope").status, 404);
  EXPECT_EQ(HttpCall(port_, "DELETE", "/v1/runs").status, 405);
  EXPECT_EQ(HttpCall(port_, "POST", "/healthz", "", kToken).status, 405);
  Reply runs = HttpCall(port_, "GET", "/v1/runs");
  EXPECT_EQ(runs.status, 200);
  EXPECT_EQ(runs.body, "[]\n");
  // Keep-alive: many requests on one connection.
  HttpConnection c(port_);
  for (int i = 0; i < 20; ++i) ASSERT_EQ(c.Call("GET", "/healthz").status, 200) << i;
}

TEST_F(AgentTest, IngestsTracesDurablyAndByContent) {
  Start();
  const std::string body = ExampleTrace("sdxl-txt2img");
  EXPECT_EQ(HttpCall(port_, "POST", "/v1/traces", body).status, 401);
  EXPECT_EQ(HttpCall(port_, "POST", "/v1/traces", body, "wrong").status, 401);
  Reply first = HttpCall(port_, "POST", "/v1/traces?name=my-sdxl", body, kToken);
  ASSERT_EQ(first.status, 201) << first.body;
  const std::string id = json::parse(first.body)["id"];
  EXPECT_EQ(id, store::ContentHash(body));
  Reply again = HttpCall(port_, "POST", "/v1/traces", body, kToken);
  EXPECT_EQ(again.status, 200);
  EXPECT_EQ(json::parse(again.body)["id"], id);
  Reply got = HttpCall(port_, "GET", "/v1/traces/" + id);
  EXPECT_EQ(got.status, 200);
  EXPECT_EQ(got.body, body);
  Reply list = HttpCall(port_, "GET", "/v1/traces");
  ASSERT_EQ(list.status, 200);
  ASSERT_EQ(json::parse(list.body).size(), 1u);
  EXPECT_EQ(json::parse(list.body)[0]["name"], "my-sdxl");
}

TEST_F(AgentTest, HostileRequestsGetA4xxAndTheAgentKeepsServing) {
  Start();
  const std::string trace = ExampleTrace("sdxl-txt2img");
  // Oversized body (the test limit is 1 MiB).
  EXPECT_EQ(HttpCall(port_, "POST", "/v1/traces", std::string(2u << 20, 'x'), kToken).status, 413);
  // Malformed traces name the line.
  Reply bad = HttpCall(port_, "POST", "/v1/traces", trace + "{broken\n", kToken);
  EXPECT_EQ(bad.status, 400);
  EXPECT_NE(bad.body.find("request body:"), std::string::npos) << bad.body;
  EXPECT_EQ(HttpCall(port_, "POST", "/v1/traces", "", kToken).status, 400);
  EXPECT_EQ(HttpCall(port_, "POST", "/v1/traces?name=../../etc/passwd", trace, kToken).status, 400);
  EXPECT_EQ(HttpCall(port_, "POST", "/v1/traces?name=%zz", trace, kToken).status, 400);
  // Sweeps: malformed JSON, unknown fields, paths as profile names, unknown traces.
  EXPECT_EQ(HttpCall(port_, "POST", "/v1/sweeps", "{", kToken).status, 400);
  EXPECT_EQ(HttpCall(port_, "POST", "/v1/sweeps", "[]", kToken).status, 400);
  const std::string id = PostTrace(trace);
  const auto sweep = [&](const std::string& profile, const std::string& trace_id) {
    return json{{"traces", {trace_id}}, {"profiles", {profile}}, {"policies", {"drop"}}}.dump();
  };
  EXPECT_EQ(HttpCall(port_, "POST", "/v1/sweeps", sweep("../../../etc/passwd", id), kToken).status, 400);
  EXPECT_EQ(HttpCall(port_, "POST", "/v1/sweeps", sweep("/etc/passwd", id), kToken).status, 400);
  EXPECT_EQ(HttpCall(port_, "POST", "/v1/sweeps", sweep("rtx4090-64g.json", id), kToken).status, 400);
  EXPECT_EQ(HttpCall(port_, "POST", "/v1/sweeps", sweep("rtx4090-64g", "0123456789abcdef"), kToken).status, 404);
  EXPECT_EQ(HttpCall(port_, "POST", "/v1/sweeps", sweep("rtx4090-64g", "../x"), kToken).status, 400);
  EXPECT_EQ(HttpCall(port_, "POST", "/v1/sweeps", R"({"traces":[1],"profiles":["a"],"policies":["b"]})", kToken).status,
            400);
  EXPECT_EQ(HttpCall(port_, "POST", "/v1/sweeps", sweep("rtx4090-64g", id), "").status, 401);
  // Path tricks in ids.
  for (const char* target : {"/v1/traces/..%2F..%2Fetc%2Fpasswd", "/v1/traces/../../etc/passwd", "/v1/runs/1;DROP",
                             "/v1/runs/-1", "/v1/runs/99999999999999999999", "/v1/sweeps/%00", "/v1/runs?limit=-5"}) {
    const int status = HttpCall(port_, "GET", target).status;
    EXPECT_TRUE(status == 400 || status == 404) << target << " -> " << status;
  }
  // Not HTTP at all, and a client that stops mid-request.
  for (const std::string& raw : {std::string("HELLO THERE\r\n\r\n"), std::string("GET /healthz HTTP/1.1\r\nHost")}) {
    boost::asio::io_context ioc;
    boost::asio::ip::tcp::socket s(ioc);
    s.connect({boost::asio::ip::make_address("127.0.0.1"), port_});
    boost::asio::write(s, boost::asio::buffer(raw));
    const auto t0 = std::chrono::steady_clock::now();
    std::string got(4096, '\0');
    boost::system::error_code ec;
    const std::size_t n = boost::asio::read(s, boost::asio::buffer(got), ec);  // until the agent closes
    got.resize(n);
    const double waited = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    if (raw.rfind("HELLO", 0) == 0) {
      EXPECT_NE(got.find("400"), std::string::npos) << got;
    } else {
      EXPECT_TRUE(got.empty()) << got;
      EXPECT_GE(waited, 0.4);  // disconnected by the 0.5 s timeout, not earlier
      EXPECT_LT(waited, 5.0);
    }
  }
  EXPECT_EQ(HttpCall(port_, "GET", "/healthz").status, 200);
}

TEST_F(AgentTest, AFullQueueRefusesSweeps) {
  agent::AgentOptions ao;
  ao.queue_limit = 0;
  Start(ao);
  const std::string id = PostTrace(ExampleTrace("sdxl-txt2img"));
  Reply r = HttpCall(port_, "POST", "/v1/sweeps",
                     json{{"traces", {id}}, {"profiles", {"rtx4090-64g"}}, {"policies", {"drop"}}}.dump(), kToken);
  EXPECT_EQ(r.status, 503) << r.body;
}

bool HasSample(const std::string& metrics, const std::string& prefix) {
  std::size_t pos = 0;
  while ((pos = metrics.find(prefix, pos)) != std::string::npos) {
    if (pos == 0 || metrics[pos - 1] == '\n') {
      const auto eol = metrics.find('\n', pos);
      const std::string line = metrics.substr(pos, eol - pos);
      const double v = std::stod(line.substr(line.rfind(' ') + 1));
      if (v > 0) return true;
    }
    ++pos;
  }
  return false;
}

TEST_F(AgentTest, CountsCapturedTracesByHost) {
  Start();
  auto captured = traces::ReadWholeFile(std::string(RESIDENCY_TEST_DATA_DIR) + "/captured-tiny.jsonl");
  ASSERT_TRUE(captured.ok());
  PostTrace(ExampleTrace("sdxl-txt2img"));  // synthesized: not a capture
  PostTrace(*captured);
  EXPECT_EQ(HttpCall(port_, "POST", "/v1/traces", *captured, kToken).status, 200);  // a resend counts once
  const std::string m = HttpCall(port_, "GET", "/metrics").body;
  EXPECT_NE(m.find("residency_captured_traces_total{host=\"bench-7\"} 1\n"), std::string::npos) << m;
  EXPECT_EQ(m.find("residency_captured_traces_total{host=\"unknown\"}"), std::string::npos);
}

TEST_F(AgentTest, SweepRunsEndToEndAndMetricsPassPromtool) {
  Start();
  const std::string a = PostTrace(ExampleTrace("sdxl-txt2img"));
  const std::string b = PostTrace(ExampleTrace("chroma-6lora"));
  Reply q = HttpCall(port_, "POST", "/v1/sweeps",
                     json{{"traces", {a, b}},
                          {"profiles", {"rtx4090-64g", "rtx5060-16g"}},
                          {"policies", {"drop", "ram-lru"}},
                          {"seeds", {1}}}
                         .dump(),
                     kToken);
  ASSERT_EQ(q.status, 202) << q.body;
  const json done = WaitForSweep(port_, json::parse(q.body)["id"], "done", 60);
  EXPECT_EQ(done["runs_done"], 8);
  Reply runs = HttpCall(port_, "GET", "/v1/runs?profile=rtx4090-64g");
  ASSERT_EQ(runs.status, 200);
  const json rj = json::parse(runs.body);
  ASSERT_EQ(rj.size(), 4u);
  for (const json& r : rj) EXPECT_EQ(r["profile"], "rtx4090-64g");
  Reply one = HttpCall(port_, "GET", "/v1/runs/" + std::to_string(rj[0]["id"].get<int>()));
  ASSERT_EQ(one.status, 200);
  EXPECT_GT(json::parse(one.body)["result"]["makespan_ns"].get<std::int64_t>(), 0);
  EXPECT_EQ(HttpCall(port_, "GET", "/v1/runs/99999").status, 404);

  const std::string metrics = HttpCall(port_, "GET", "/metrics").body;
  for (const char* name : {"residency_runs_total{", "residency_load_bytes_total{", "residency_load_seconds_total{",
                           "residency_memory_peak_bytes{", "residency_memory_budget_bytes{",
                           "residency_simulated_events_total{", "residency_http_requests_total{",
                           "residency_traces_ingested_bytes_total", "residency_sweeps_total{"}) {
    EXPECT_TRUE(HasSample(metrics, name)) << name << " missing or zero in\n" << metrics.substr(0, 2000);
  }
  EXPECT_NE(metrics.find("residency_http_request_duration_seconds_bucket{"), std::string::npos);
  if (system("command -v promtool >/dev/null 2>&1") != 0) {
    GTEST_SKIP() << "promtool not installed (Debian package 'prometheus'): metrics format not checked";
  }
  const fs::path file = dir_ / "metrics.txt";
  { std::ofstream(file) << metrics; }
  const std::string cmd = "promtool check metrics < " + file.string() + " > " + (dir_ / "promtool.log").string() + " 2>&1";
  const int rc = system(cmd.c_str());
  std::ifstream log(dir_ / "promtool.log");
  const std::string out((std::istreambuf_iterator<char>(log)), std::istreambuf_iterator<char>());
  EXPECT_EQ(rc, 0) << "promtool check metrics:\n" << out;
}

// Every series prometheus-cpp's own serializer writes, ours writes with the
// same value (ours is faster; see harness/agent/exposition.h).
std::map<std::string, double> ParseExposition(const std::string& text) {
  std::map<std::string, double> out;
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) {
    if (line.empty() || line[0] == '#') continue;
    const auto sp = line.rfind(' ');
    std::string series = line.substr(0, sp);
    // Normalize le="0.5" vs le="0.500000" style differences.
    const auto le = series.find(",le=\"");  // ("profile=" ends in "le=" too)
    if (le != std::string::npos) {
      const auto end = series.find('"', le + 5);
      const std::string v = series.substr(le + 5, end - le - 5);
      const std::string norm = v == "+Inf" ? v : std::to_string(std::stod(v));
      series = series.substr(0, le + 5) + norm + series.substr(end);
    }
    out[series] = std::stod(line.substr(sp + 1));
  }
  return out;
}

TEST(Exposition, SameSeriesAndValuesAsPrometheusCpp) {
  metrics::Metrics m;
  metrics::RunSample s;
  s.profile = "box \"quoted\"\nnewline\\";
  s.policy = "ram-lru";
  s.outcome = "ok";
  s.disk_read_bytes = 6940000000;
  s.load_seconds = 1.25;
  s.evictions["device/pressure"] = {3, 12345};
  m.RecordRun(s);
  m.RecordHttp("/metrics", 200, 0.0042);
  m.RecordHttp("/metrics", 200, 3.5);
  const std::string ours = m.Serialize();
  const std::string theirs = m.SerializeWithPrometheusCpp();
  const auto a = ParseExposition(ours), b = ParseExposition(theirs);
  EXPECT_EQ(a.size(), b.size());
  for (const auto& [series, value] : b) {
    ASSERT_TRUE(a.count(series)) << series << " missing from\n" << ours;
    EXPECT_DOUBLE_EQ(a.at(series), value) << series;
  }
}

// ---- The agent as a separate process: SIGKILL and SIGTERM. ----

class AgentProcess {
 public:
  AgentProcess(const fs::path& dir, const std::vector<std::string>& extra = {}) : dir_(dir) {
    const fs::path port_file = dir / "port";
    fs::remove(port_file);
    std::vector<std::string> args = {RESIDENCY_BIN, "serve", "--listen", "127.0.0.1:0", "--data",
                                     (dir / "data").string(), "--port-file", port_file.string(),
                                     "--token-file", (dir / "token").string()};
    args.insert(args.end(), extra.begin(), extra.end());
    { std::ofstream(dir / "token") << kToken << "\n"; }
    pid_ = fork();
    if (pid_ == 0) {
      const int fd = open((dir / "agent.log").c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
      dup2(fd, 1);
      dup2(fd, 2);
      std::vector<char*> argv;
      for (std::string& a : args) argv.push_back(a.data());
      argv.push_back(nullptr);
      execv(argv[0], argv.data());
      _exit(127);
    }
    for (int i = 0; i < 1000 && port_ == 0; ++i) {
      std::ifstream in(port_file);
      int p = 0;
      if (in >> p) port_ = static_cast<std::uint16_t>(p);
      else std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
  }
  ~AgentProcess() {
    if (pid_ > 0) Kill(SIGKILL);
  }
  std::uint16_t port() const { return port_; }
  int Kill(int sig) {
    ::kill(pid_, sig);
    int status = 0;
    waitpid(pid_, &status, 0);
    pid_ = -1;
    return status;
  }

 private:
  fs::path dir_;
  pid_t pid_ = -1;
  std::uint16_t port_ = 0;
};

TEST(AgentProcessTest, EveryAcknowledgedTraceSurvivesSigkillDuringIngestion) {
  const fs::path dir = TempDir("crash");
  const std::string base = ExampleTrace("sdxl-txt2img");
  std::map<std::string, std::string> acked;  // id -> body
  std::mutex mu;
  {
    AgentProcess agent(dir);
    ASSERT_NE(agent.port(), 0) << "agent did not start; see " << (dir / "agent.log");
    std::atomic<bool> stop{false};
    std::atomic<int> next{0};
    std::vector<std::thread> clients;
    for (int c = 0; c < 3; ++c) {
      clients.emplace_back([&] {
        HttpConnection conn(agent.port());
        while (!stop) {
          const std::string body = Variant(base, next++);
          Reply r = conn.Call("POST", "/v1/traces", body, kToken);
          if (r.status == 201 || r.status == 200) {
            std::lock_guard lock(mu);
            acked[json::parse(r.body)["id"]] = body;
          } else if (!conn.ok()) {
            return;  // the agent died under us
          }
        }
      });
    }
    // Kill it mid-stream, once some traces are in.
    for (int i = 0; i < 500; ++i) {
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
      std::lock_guard lock(mu);
      if (acked.size() >= 100) break;
    }
    const int status = agent.Kill(SIGKILL);
    EXPECT_TRUE(WIFSIGNALED(status));
    stop = true;
    for (std::thread& t : clients) t.join();
  }
  ASSERT_GE(acked.size(), 10u);
  AgentProcess again(dir);
  ASSERT_NE(again.port(), 0);
  for (const auto& [id, body] : acked) {
    Reply r = HttpCall(again.port(), "GET", "/v1/traces/" + id);
    ASSERT_EQ(r.status, 200) << "acknowledged trace " << id << " lost";
    EXPECT_EQ(r.body, body) << "acknowledged trace " << id << " changed";
  }
  // Nothing half-written is visible: every stored trace is whole and valid.
  const json list = json::parse(HttpCall(again.port(), "GET", "/v1/traces").body);
  EXPECT_GE(list.size(), acked.size());
  for (const json& t : list) {
    Reply r = HttpCall(again.port(), "GET", "/v1/traces/" + t["id"].get<std::string>());
    ASSERT_EQ(r.status, 200);
    EXPECT_EQ(store::ContentHash(r.body), t["id"].get<std::string>());
    EXPECT_EQ(HttpCall(again.port(), "POST", "/v1/traces", r.body, kToken).status, 200);  // parses, already there
  }
  again.Kill(SIGTERM);
  fs::remove_all(dir);
}

TEST(AgentProcessTest, SigtermLeavesTheRestOfASweepQueuedAndARestartFinishesIt) {
  const fs::path dir = TempDir("drain");
  std::int64_t total = 0;
  {
    AgentProcess agent(dir);
    ASSERT_NE(agent.port(), 0);
    Reply t = HttpCall(agent.port(), "POST", "/v1/traces", ExampleTrace("sdxl-txt2img"), kToken);
    ASSERT_EQ(t.status, 201);
    std::vector<int> seeds;
    for (int s = 1; s <= 40; ++s) seeds.push_back(s);
    Reply q = HttpCall(agent.port(), "POST", "/v1/sweeps",
                       json{{"traces", {json::parse(t.body)["id"]}},
                            {"profiles", {"rtx4090-64g", "rtx5090-96g"}},
                            {"policies", {"drop", "ram-lru"}},
                            {"seeds", seeds}}
                           .dump(),
                       kToken);
    ASSERT_EQ(q.status, 202) << q.body;
    total = json::parse(q.body)["runs"];
    WaitForSweep(agent.port(), 1, "running", 30);
    const int status = agent.Kill(SIGTERM);
    ASSERT_TRUE(WIFEXITED(status)) << "SIGTERM should end the agent cleanly";
    EXPECT_EQ(WEXITSTATUS(status), 0);
  }
  {
    auto s = store::ResultsStore::Open((dir / "data" / "results.db").string());
    ASSERT_TRUE(s.ok());
    auto row = (*s)->GetSweep(1);
    ASSERT_TRUE(row.ok() && row->has_value());
    if ((*row)->status == "done") {
      GTEST_SKIP() << "the sweep finished before SIGTERM arrived; nothing to resume";
    }
    EXPECT_EQ((*row)->status, "queued") << (*row)->message;
    EXPECT_LT(*(*s)->CountRuns(), total);
  }
  AgentProcess again(dir);
  ASSERT_NE(again.port(), 0);
  const json done = WaitForSweep(again.port(), 1, "done", 600);
  EXPECT_EQ(done["runs_done"], total);
  const json runs = json::parse(HttpCall(again.port(), "GET", "/v1/runs?limit=10000").body);
  EXPECT_EQ(static_cast<std::int64_t>(runs.size()), total);
  again.Kill(SIGTERM);
  fs::remove_all(dir);
}

}  // namespace
}  // namespace residency
