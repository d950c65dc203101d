// libFuzzer target: any request the agent's router can be handed. The first
// byte picks the method, the bytes up to the first newline are the target,
// the rest is the body. Every answer must be a 2xx/4xx/503 with a JSON body
// (or the metrics text, or a stored trace): never a 500, never a crash, and
// never a file outside the agent's data directory.
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <string>

#include "harness/agent/agent.h"

namespace {

residency::agent::Agent& TheAgent() {
  static std::unique_ptr<residency::agent::Agent> agent = [] {
    residency::agent::AgentOptions o;
    o.data_dir = (std::filesystem::temp_directory_path() / ("residency-agent-fuzz-" + std::to_string(getpid()))).string();
    std::filesystem::remove_all(o.data_dir);
    // No sweep ever queues (503): a worker simulating in the background would
    // still run while static objects are destroyed at exit. The sweep spec's
    // validation, which is what takes request bytes, runs before the queue.
    o.queue_limit = 0;
    o.max_runs_per_sweep = 4;
    auto a = residency::agent::Agent::Open(o);
    if (!a.ok()) __builtin_trap();
    return std::move(a).value();
  }();
  return *agent;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  static const char* kMethods[] = {"GET", "POST", "PUT", "DELETE"};
  residency::agent::HttpRequest req;
  req.method = kMethods[data[0] % 4];
  const std::string rest(reinterpret_cast<const char*>(data) + 1, size - 1);
  const auto nl = rest.find('\n');
  req.target = rest.substr(0, nl);
  req.body = nl == std::string::npos ? "" : rest.substr(nl + 1);
  const residency::agent::HttpResponse r = TheAgent().Handle(req);
  if (r.status >= 500 && r.status != 503) __builtin_trap();
  if (r.status < 200 || r.route.empty()) __builtin_trap();
  if (r.content_type == "application/json" && nlohmann::json::parse(r.body, nullptr, false).is_discarded())
    __builtin_trap();
  return 0;
}
