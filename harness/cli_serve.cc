// `residency serve`: the HTTP agent (harness/agent). Runs until SIGTERM or
// SIGINT, then drains: stops accepting, lets running sweeps finish their
// current run and leaves the rest queued in the database for the next start.
#include <pthread.h>

#include <csignal>
#include <fstream>
#include <iostream>
#include <memory>

#include "harness/agent/agent.h"
#include "harness/cli.h"
#include "traces/json_fields.h"

namespace residency::cli {
namespace {

struct ServeArgs {
  std::string listen = "127.0.0.1:9464";
  std::string data = "residency-data";
  std::string token_file;
  std::string port_file;
  std::size_t max_body = 64u << 20;
  double timeout_s = 10;
  int threads = 2;
  agent::AgentOptions agent;
};

int RunServe(ServeArgs& a) {
  agent::ServerOptions server;
  if (Status s = agent::ParseListen(a.listen, &server.address, &server.port); !s.ok()) return Fail(s);
  if (!a.token_file.empty()) {
    auto token = traces::ReadWholeFile(a.token_file);
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
  server.threads = a.threads;
  server.observe = [&ag](const std::string& route, int status, double seconds) {
    ag.metrics().RecordHttp(route, status, seconds);
  };
  auto http = agent::HttpServer::Start(server, [&ag](const agent::HttpRequest& r) { return ag.Handle(r); });
  if (!http.ok()) return Fail(http.status());
  const std::uint16_t port = (*http)->port();
  std::cout << "residency agent listening on http://" << server.address << ":" << port << " (data in " << a.data
            << (a.agent.token.empty() ? ", no token" : ", bearer token required for writes") << ")" << std::endl;
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
  ag.BeginDrain();
  (*http)->Stop();
  ag.Shutdown();
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
  c->add_option("--timeout", a->timeout_s, "Seconds a client may take per request or response")->capture_default_str();
  c->add_option("--http-threads", a->threads, "I/O threads")->capture_default_str();
  c->add_option("--workers", a->agent.workers, "Sweeps run at once")->capture_default_str();
  c->add_option("--jobs-per-sweep", a->agent.jobs_per_sweep, "Threads per sweep")->capture_default_str();
  c->add_option("--queue", a->agent.queue_limit, "Sweeps that may wait; more are refused with 503")->capture_default_str();
  return {c, [a] { return RunServe(*a); }};
}

}  // namespace residency::cli
