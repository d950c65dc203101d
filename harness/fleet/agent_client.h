// A client of `residency serve` for the CLI: `residency gate --agent URL`
// reads the gate's verdicts, and `sweep`/`slurm submit --traces-from URL`
// fetch the captured traces an agent stores. Blocking, one connection per
// request, bounded in time and in the size of what it reads.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "runtime/base/status.h"

namespace residency::fleet {

struct AgentUrl {
  std::string host;  // a name or an address
  std::uint16_t port = 80;
  std::string base_path;  // "" or "/prefix" (no trailing slash)
  std::string text;       // as given, for messages
};
// "http://host:port[/prefix]"; https is refused (the agent speaks plain HTTP
// behind a proxy that terminates TLS).
Result<AgentUrl> ParseAgentUrl(const std::string& url);

struct AgentClientOptions {
  std::string token;           // bearer token; "" sends none
  double timeout_s = 30;       // connect + request + response
  std::size_t max_body = 1u << 30;
};

// GET base_path + target; a status other than 200 is an error naming the
// URL, the status and the agent's message.
Result<std::string> AgentGet(const AgentUrl& agent, const std::string& target, const AgentClientOptions& options);

// A bearer token from a file (one line; surrounding whitespace trimmed).
Result<std::string> ReadTokenFile(const std::string& path);

struct FetchedTrace {
  std::string id, name, body;
};
// Every captured trace an agent stores (provenance "captured:..."), bodies included.
Result<std::vector<FetchedTrace>> FetchCapturedTraces(const AgentUrl& agent, const AgentClientOptions& options);

// The captured traces of several agents (`--traces-from URL...`): the same
// bytes from two agents once; two different traces of one name told apart
// by their ids (NAME-ID).
Result<std::vector<FetchedTrace>> FetchFromAgents(const std::vector<std::string>& urls, const std::string& token_file,
                                                  double timeout_s);

}  // namespace residency::fleet
