// `residency serve`: the HTTP agent (harness/agent). Runs until SIGTERM or
// SIGINT, then drains: /healthz answers 503 "draining" and writes 503 while
// running sweeps finish their current run (the rest stays queued in the
// database for the next start) and for --drain-grace seconds; then the
// listener closes.
#include <pthread.h>

#include <chrono>
#include <csignal>
#include <fstream>
#include <thread>
#include <iostream>
#include <memory>

#include "harness/agent/agent.h"
#include "harness/cli/cli.h"
#include "traces/json_fields.h"
#include "runtime/io/whole_file.h"

namespace residency::cli {
namespace {

struct ServeArgs {
  std::string listen = "127.0.0.1:9464";
  std::string data = "residency-data";
  std::string token_file;
  std::string port_file;
  std::size_t max_body = 64u << 20;
  double timeout_s = 10;
  std::size_t body_min_rate = 1u << 20;
  std::size_t body_memory = 128u << 20;
  int threads = 2;
  int max_connections = 512;
  int max_connections_per_client = 32;
  int reserve_connections = 512;
  int request_threads = 2;
  std::size_t request_queue = 64;
  double drain_grace_s = 0;
  agent::AgentOptions agent;
};

Status CheckLimits(const ServeArgs& a) {
  if (a.body_min_rate == 0) return InvalidArgument("--body-min-rate must be positive");
  if (!(a.timeout_s > 0)) return InvalidArgument("--timeout must be positive");
  if (a.max_connections < 1 || a.max_connections_per_client < 1 || a.reserve_connections < 0)
    return InvalidArgument(
        "--max-connections and --max-connections-per-client must be positive, --reserve-connections not negative");
  if (a.request_threads < 1 || a.request_queue < 1)
    return InvalidArgument("--request-threads and --request-queue must be positive");
  if (a.drain_grace_s < 0) return InvalidArgument("--drain-grace must not be negative");
  return Status::Ok();
}

int RunServe(ServeArgs& a) {
  if (Status s = CheckLimits(a); !s.ok()) return Fail(s);
  agent::ServerOptions server;
  if (Status s = agent::ParseListen(a.listen, &server.address, &server.port); !s.ok()) return Fail(s);
  if (!a.token_file.empty()) {
    auto token = io::ReadWholeFile(a.token_file);
    if (!token.ok()) return Fail(token.status());
    std::string t = *token;
    while (!t.empty() && (t.back() == '\n' || t.back() == '\r' || t.back() == ' ')) t.pop_back();
    if (t.empty() || t.find_first_of(" \t\r\n") != std::string::npos)
      return Fail(InvalidArgument(a.token_file + ": the token file must hold one non-empty token"));
    a.agent.token = t;
  }
  a.agent.data_dir = a.data;
  // Block the stop signals in every thread; this one waits for them.
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGTERM);
  sigaddset(&stop_signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);

  auto agent = agent::Agent::Open(a.agent);
  if (!agent.ok()) return Fail(agent.status());
  agent::Agent& ag = **agent;
  server.body_limit = a.max_body;
  server.timeout = std::chrono::milliseconds(static_cast<long long>(a.timeout_s * 1000));
  server.body_min_rate = a.body_min_rate;
  server.body_memory = a.body_memory;
  server.threads = a.threads;
  server.max_connections = a.max_connections;
  server.max_connections_per_client = a.max_connections_per_client;
  server.reserve_connections = a.reserve_connections;
  server.request_threads = a.request_threads;
  server.request_queue = a.request_queue;
  auto http = agent::Serve(ag, server);
  if (!http.ok()) return Fail(http.status());
  const std::uint16_t port = (*http)->port();
  std::cout << "residency agent listening on http://" << server.address << ":" << port << " (data in " << a.data
            << (a.agent.token.empty() ? ", no token" : ", bearer token required for writes") << ")" << std::endl;
  if (a.agent.replay_workers == 0) {
    std::cout << "residency agent: captured traces are stored, not replayed (--replay-workers 0)" << std::endl;
  } else {
    std::cout << "residency agent: captured traces are replayed on their own machine"
              << (a.agent.gate_path.empty() ? " (no --gate: fidelity only)" : " and under the gate " + a.agent.gate_path)
              << std::endl;
  }
  if (server.address != "127.0.0.1" && server.address != "::1" && a.agent.token.empty())
    std::cerr << "residency: warning: listening beyond loopback without --token-file\n";
  if (!a.port_file.empty()) {
    const std::string tmp = a.port_file + ".tmp";
    { std::ofstream(tmp) << port << "\n"; }
    std::rename(tmp.c_str(), a.port_file.c_str());
  }
  int sig = 0;
  sigwait(&stop_signals, &sig);
  std::cout << "residency agent: " << (sig == SIGTERM ? "SIGTERM" : "SIGINT") << ", draining" << std::endl;
  // The listener stays open through the drain: probes read 503 "draining"
  // rather than a refused connection, and /metrics still answers.
  const auto grace_end = std::chrono::steady_clock::now() +
                         std::chrono::milliseconds(static_cast<long long>(a.drain_grace_s * 1000));
  ag.BeginDrain();
  ag.Shutdown();
  std::this_thread::sleep_until(grace_end);
  (*http)->Stop();
  std::cout << "residency agent: stopped" << std::endl;
  return 0;
}

}  // namespace

Subcommand AddServe(CLI::App& app) {
  auto a = std::make_shared<ServeArgs>();
  CLI::App* c = app.add_subcommand("serve", "Run the HTTP agent: trace ingestion, sweeps, runs, /metrics");
  c->add_option("--listen", a->listen, "HOST:PORT (port 0: pick a free one)")->capture_default_str();
  c->add_option("--data", a->data, "Data directory (results.db lives here)")->capture_default_str();
  c->add_option("--token-file", a->token_file, "File holding the bearer token that writes must carry");
  c->add_option("--port-file", a->port_file, "Write the bound port here once listening");
  c->add_option("--max-body", a->max_body, "Largest request body accepted")->transform(ByteSize())->capture_default_str();
  c->add_option("--timeout", a->timeout_s,
                 "Seconds a client may take to send a request header or read a response; the least time for a body")
      ->capture_default_str();
  c->add_option("--body-min-rate", a->body_min_rate,
                "A body of N bytes may take max(--timeout, N / this) seconds (bytes per second)")
      ->transform(ByteSize())
      ->capture_default_str();
  c->add_option("--body-memory", a->body_memory,
                "Bytes all request bodies in flight may hold together (raised to --max-body if lower); more get 503 "
                "with Retry-After")
      ->transform(ByteSize())
      ->capture_default_str();
  c->add_option("--http-threads", a->threads, "I/O threads")->capture_default_str();
  c->add_option("--max-connections", a->max_connections, "Connections served in full, all clients together")
      ->capture_default_str();
  c->add_option("--max-connections-per-client", a->max_connections_per_client,
                "Connections served in full per client address")
      ->capture_default_str();
  c->add_option("--reserve-connections", a->reserve_connections,
                "More connections, which may only ask for /healthz and /metrics")
      ->capture_default_str();
  c->add_option("--request-threads", a->request_threads,
                "Threads that handle requests other than /healthz and /metrics (uploads are validated there)")
      ->capture_default_str();
  c->add_option("--request-queue", a->request_queue, "Such requests queued or running; more get 503")
      ->capture_default_str();
  c->add_option("--drain-grace", a->drain_grace_s,
                "Seconds after SIGTERM during which /healthz still answers 503 draining before the listener closes")
      ->capture_default_str();
  c->add_option("--workers", a->agent.workers, "Sweeps run at once")->capture_default_str();
  c->add_option("--jobs-per-sweep", a->agent.jobs_per_sweep, "Threads per sweep")->capture_default_str();
  c->add_option("--queue", a->agent.queue_limit, "Sweeps that may wait; more are refused with 503")->capture_default_str();
  c->add_option("--gate", a->agent.gate_path,
                "Gate file (JSON: profiles, baseline, candidates, metric, threshold; docs/HARNESS.md): every captured "
                "trace stored is also replayed under it, one verdict per profile and candidate (GET /v1/gate)")
      ->check(CLI::ExistingFile);
  c->add_option("--replay-workers", a->agent.replay_workers,
                "Captured traces replayed at once (fidelity on their own machine, then the gate); 0: store only")
      ->check(CLI::Range(0, 64))
      ->capture_default_str();
  c->add_option("--replay-queue", a->agent.replay_queue_limit,
                "Captured traces that may wait for replay; a new one past it gets 503 with Retry-After (the sender "
                "keeps it)")
      ->check(CLI::Range(std::size_t{1}, std::size_t{1000000}))
      ->capture_default_str();
  c->add_option("--replay-max-wall", a->agent.replay_max_wall_seconds,
                "Wall-time limit in seconds for each simulated run of a replay (the run is stored as an error past it)")
      ->check(CLI::Range(0.1, 3600.0))
      ->capture_default_str();
  return {c, [a] { return RunServe(*a); }};
}

}  // namespace residency::cli
