// `residency serve`: the agent. Routes:
//   GET  /healthz              200 {"status":"ok"}; 503 while draining
//   GET  /metrics              Prometheus text format
//   POST /v1/traces[?name=N]   validated, committed to SQLite before the 2xx; {"id": <content hash>}
//   GET  /v1/traces            stored traces; GET /v1/traces/{id}: the trace's bytes
//   POST /v1/sweeps            {"traces":[ids], "profiles":[names], "policies":[names], "seeds":[n]}
//                              queued on a bounded worker pool (202), 503 when full
//   GET  /v1/sweeps/{id}       status and progress
//   GET  /v1/runs[?trace=&profile=&policy=&limit=&offset=], GET /v1/runs/{id}
//   GET  /v1/gate[?trace=&profile=&candidate=&verdict=&all=1]   the gate's verdicts on captured traces
//   GET  /v1/fidelity[?trace=]  per captured prompt: simulated against captured time, by host
// A captured trace (one with a machine record) is queued when stored (the
// queue lives in the store, so a restart resumes it) and replayed by
// bounded workers: on its own machine under its own settings (fidelity), and
// under the --gate matrix (verdicts); docs/HARNESS.md.
// Writes need "Authorization: Bearer <token>" when a token is configured;
// CheckHeader refuses a write on its header alone, before its body is read.
// Nothing a request carries becomes a path: traces live in SQLite under the
// data directory, profiles and policies are bundled names only; and no path
// of the server's is shown to a client (client_message.h).
#pragma once

#include <atomic>
#include <condition_variable>
#include <deque>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "harness/agent/http_server.h"
#include "harness/gate/gate_config.h"
#include "harness/metrics/metrics.h"
#include "harness/store/results_store.h"

namespace residency::agent {

struct AgentOptions {
  std::string data_dir;
  std::string token;            // empty: writes need no token
  int workers = 1;              // sweeps run at once
  int jobs_per_sweep = 1;       // threads per sweep
  std::size_t queue_limit = 16; // sweeps waiting; more get 503
  std::size_t max_runs_per_sweep = 10000;
  std::string gate_path;                  // --gate: replay captured traces under this gate ("" : fidelity only)
  int replay_workers = 1;                 // captured traces replayed at once; 0: stored, never replayed
  std::size_t replay_queue_limit = 1000;  // captured traces waiting; a new one past it gets 503
  double replay_max_wall_seconds = 120;   // wall time per simulated run of a replay
};

class Agent {
 public:
  // Opens DATA/results.db, re-queues sweeps a previous agent left queued or
  // running, and starts the workers.
  static Result<std::unique_ptr<Agent>> Open(const AgentOptions& options);
  ~Agent();

  HttpResponse Handle(const HttpRequest& request);
  // On a request's header alone (its body not read yet): the answer when the
  // request would be refused whatever its body holds (no such route, a wrong
  // token, draining); nothing when its body should be read.
  std::optional<HttpResponse> CheckHeader(const HttpRequest& head) const;
  metrics::Metrics& metrics() { return metrics_; }
  // Refuse new work (healthz 503, writes 503); then Shutdown() lets each
  // running sweep finish its current run and leaves the rest queued in the
  // database for the next start.
  void BeginDrain() { draining_ = true; }
  void Shutdown();

 private:
  Agent(AgentOptions options, std::unique_ptr<store::ResultsStore> store);
  HttpResponse PostTrace(const HttpRequest& request, const std::string& query);
  HttpResponse GetTraces();
  HttpResponse GetTrace(const std::string& id);
  HttpResponse PostSweep(const HttpRequest& request);
  HttpResponse GetSweep(const std::string& id);
  HttpResponse GetRuns(const std::string& query);
  HttpResponse GetRun(const std::string& id);
  HttpResponse GetGate(const std::string& query);
  HttpResponse GetFidelity(const std::string& query);
  bool Authorized(const HttpRequest& request) const;
  // A store or sweep failure as a client may see it: no server paths.
  std::string ForClient(const std::string& message) const;
  HttpResponse ServerError(const Status& status, const std::string& route) const;
  void Enqueue(std::int64_t sweep_id);
  void WorkerLoop();
  void RunOneSweep(std::int64_t sweep_id);
  void EnqueueReplay(std::int64_t trace_id);
  void ReplayLoop();
  void ReplayOne(std::int64_t trace_id);
  void PublishReplayQueue();  // with replay_mu_ held

  AgentOptions options_;
  std::vector<std::string> server_paths_;  // hidden from clients
  std::unique_ptr<store::ResultsStore> store_;
  metrics::Metrics metrics_;
  std::atomic<bool> draining_{false};
  std::atomic<bool> stopping_{false};
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::int64_t> queue_;
  std::size_t running_ = 0;
  std::vector<std::thread> workers_;
  // Captured-trace replays: their own queue and workers, apart from sweeps.
  std::optional<gate::GateConfig> gate_;
  std::mutex replay_mu_;
  std::condition_variable replay_cv_;
  std::deque<std::int64_t> replay_queue_;
  std::size_t replay_running_ = 0;
  std::vector<std::thread> replay_workers_;
};

// An HTTP server for `agent`: its handler, its header check and its metrics.
Result<std::unique_ptr<HttpServer>> Serve(Agent& agent, ServerOptions options);

}  // namespace residency::agent
