// Loopback load test of the agent (`residency_http_bench`): starts the real
// agent and HTTP server in-process on an ephemeral port, then
//  1. GET /metrics at a fixed arrival rate (open loop: latency is measured
//     from each request's scheduled time, so a stall is not hidden), and
//  2. POST /v1/traces of distinct traces as fast as C connections allow.
// Prints latency percentiles and ingestion MB/s. Goals (issue 5): /metrics
// p99 <= 10 ms at 1,000 req/s; ingestion >= 50 MB/s.
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <string>
#include <thread>
#include <vector>

#include <CLI/CLI.hpp>

#include "harness/agent/agent.h"
#include "traces/bundled.h"
#include "traces/json_fields.h"
#include "tests/http_test_client.h"
#include "runtime/io/whole_file.h"

namespace {

using Clock = std::chrono::steady_clock;
using residency::testing::HttpConnection;

// The body of a trace whose model lists its tensors one by one, about
// `bytes` long; a header line naming the variant makes each post distinct.
std::string TraceHeader(int variant) {
  return "{\"format\": \"residency-trace\", \"version\": 1, \"name\": \"bench-" + std::to_string(variant) +
         "\", \"source\": \"captured\", \"description\": \"ingestion benchmark\"}\n";
}
std::string TraceEvents(std::size_t bytes) {
  std::string t;
  std::string sizes;
  long long total = 0;
  for (int i = 0; sizes.size() + 200 < bytes; ++i) {
    const long long s = 4096 + (i * 7919LL) % 65536;
    sizes += (sizes.empty() ? "" : ",") + std::to_string(s);
    total += s;
  }
  t += "{\"type\": \"model\", \"model\": \"m\", \"files\": [{\"path\": \"m.safetensors\", \"bytes\": " +
       std::to_string(total) + ", \"tensors\": [" + sizes + "]}]}\n";
  t += "{\"type\": \"prompt_begin\", \"prompt\": 1}\n{\"type\": \"load\", \"model\": \"m\", \"mode\": \"full\"}\n"
       "{\"type\": \"prompt_end\", \"prompt\": 1}\n";
  return t;
}

double Percentile(std::vector<double>& v, double p) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  return v[std::min(v.size() - 1, static_cast<std::size_t>(p / 100.0 * static_cast<double>(v.size())))];
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"Loopback load test of the residency agent"};
  double rate = 1000, seconds = 10, ingest_seconds = 5;
  int connections = 4, ingest_connections = 2;
  std::size_t trace_bytes = 4u << 20;
  bool populate = true;
  app.add_option("--rate", rate, "GET /metrics per second")->capture_default_str();
  app.add_option("--seconds", seconds, "Duration of the /metrics phase")->capture_default_str();
  app.add_option("--connections", connections, "Keep-alive connections for /metrics")->capture_default_str();
  app.add_option("--ingest-seconds", ingest_seconds, "Duration of the ingestion phase")->capture_default_str();
  app.add_option("--ingest-connections", ingest_connections, "Connections posting traces")->capture_default_str();
  app.add_option("--trace-bytes", trace_bytes, "Size of each posted trace")->capture_default_str();
  app.add_option("--populate", populate, "Sweep bundled inputs first so /metrics is realistic")->capture_default_str();
  CLI11_PARSE(app, argc, argv);

  const auto dir = std::filesystem::temp_directory_path() / "residency-http-bench";
  std::filesystem::remove_all(dir);
  residency::agent::AgentOptions ao;
  ao.data_dir = dir.string();
  auto agent = residency::agent::Agent::Open(ao);
  if (!agent.ok()) {
    std::fprintf(stderr, "%s\n", agent.status().ToString().c_str());
    return 2;
  }
  residency::agent::ServerOptions so;
  so.port = 0;
  so.body_limit = 256u << 20;
  so.observe = [&](const std::string& route, int code, double s) { (*agent)->metrics().RecordHttp(route, code, s); };
  auto server = residency::agent::HttpServer::Start(so, [&](const residency::agent::HttpRequest& r) {
    return (*agent)->Handle(r);
  });
  if (!server.ok()) return 2;
  const std::uint16_t port = (*server)->port();

  // Phase 0: a sweep of the quick bundled traces over every bundled profile
  // and policy, so /metrics carries the series a busy agent exports.
  if (populate) {
    HttpConnection c(port);
    std::string ids, profiles, policies;
    for (const char* name : {"sdxl-txt2img", "chroma-6lora", "ltx2-19b-lora"}) {
      auto body = residency::io::ReadWholeFile(residency::traces::DataDir() + "/examples/" + name + ".jsonl");
      if (!body.ok()) return 2;
      const auto r = c.Call("POST", "/v1/traces", *body);
      const auto at = r.body.find("\"id\":\"");
      ids += std::string(ids.empty() ? "" : ",") + "\"" + r.body.substr(at + 6, 16) + "\"";
    }
    for (const auto& e : residency::traces::ListBundled("profiles")) profiles += (profiles.empty() ? "\"" : ",\"") + e.name + "\"";
    for (const auto& e : residency::traces::ListBundled("policies")) policies += (policies.empty() ? "\"" : ",\"") + e.name + "\"";
    const auto q = c.Call("POST", "/v1/sweeps", "{\"traces\":[" + ids + "],\"profiles\":[" + profiles +
                                                    "],\"policies\":[" + policies + "]}");
    if (q.status != 202) {
      std::fprintf(stderr, "sweep refused: %s\n", q.body.c_str());
      return 2;
    }
    const auto p0 = Clock::now();
    while (c.Call("GET", "/v1/sweeps/1").body.find("\"status\":\"done\"") == std::string::npos)
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    std::printf("populated: %s in %.1f s\n", q.body.substr(0, q.body.size() - 1).c_str(),
                std::chrono::duration<double>(Clock::now() - p0).count());
  }

  // Phase 1: /metrics at a fixed rate, requests spread over the connections.
  const long total = static_cast<long>(rate * seconds);
  std::vector<std::vector<double>> lat(static_cast<std::size_t>(connections));
  std::atomic<long> errors{0};
  const auto t0 = Clock::now() + std::chrono::milliseconds(50);
  std::vector<std::thread> threads;
  for (int c = 0; c < connections; ++c) {
    threads.emplace_back([&, c] {
      HttpConnection conn(port);
      for (long i = c; i < total; i += connections) {
        const auto due = t0 + std::chrono::nanoseconds(static_cast<long long>(1e9 * static_cast<double>(i) / rate));
        std::this_thread::sleep_until(due);
        if (conn.Call("GET", "/metrics").status != 200) ++errors;
        lat[static_cast<std::size_t>(c)].push_back(std::chrono::duration<double, std::milli>(Clock::now() - due).count());
      }
    });
  }
  for (auto& t : threads) t.join();
  const double phase1 = std::chrono::duration<double>(Clock::now() - t0).count();
  std::vector<double> all;
  for (auto& v : lat) all.insert(all.end(), v.begin(), v.end());
  const std::size_t metrics_bytes = HttpConnection(port).Call("GET", "/metrics").body.size();
  std::printf("GET /metrics: %ld requests at %.0f/s target (%.0f/s achieved) on %d connections, %zu-byte body, "
              "%ld errors\n",
              total, rate, static_cast<double>(total) / phase1, connections, metrics_bytes, errors.load());
  std::printf("  latency ms: p50 %.3f  p90 %.3f  p99 %.3f  p99.9 %.3f  max %.3f\n", Percentile(all, 50),
              Percentile(all, 90), Percentile(all, 99), Percentile(all, 99.9), Percentile(all, 100));

  // Phase 2: ingestion of distinct traces.
  std::atomic<long> posted{0}, posted_bytes{0}, failed{0};
  std::atomic<int> variant{0};
  threads.clear();
  const std::string events = TraceEvents(trace_bytes);  // built before the clock starts
  const auto i0 = Clock::now();
  const auto until = i0 + std::chrono::duration<double>(ingest_seconds);
  for (int c = 0; c < ingest_connections; ++c) {
    threads.emplace_back([&] {
      HttpConnection conn(port);
      while (Clock::now() < until) {
        const std::string body = TraceHeader(variant++) + events;
        const auto r = conn.Call("POST", "/v1/traces", body);
        if (r.status == 201) {
          ++posted;
          posted_bytes += static_cast<long>(body.size());
        } else {
          ++failed;
          if (!conn.ok()) return;
        }
      }
    });
  }
  for (auto& t : threads) t.join();
  const double phase2 = std::chrono::duration<double>(Clock::now() - i0).count();
  std::printf("POST /v1/traces: %ld traces of %.1f MB on %d connections in %.2f s, %ld failed: %.1f MB/s "
              "(validated and committed with fsync before each 201)\n",
              posted.load(), static_cast<double>(trace_bytes) / 1e6, ingest_connections, phase2, failed.load(),
              static_cast<double>(posted_bytes.load()) / 1e6 / phase2);
  (*server)->Stop();
  (*agent)->Shutdown();
  std::filesystem::remove_all(dir);
  return errors == 0 && failed == 0 ? 0 : 1;
}
