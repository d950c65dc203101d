#include "harness/fleet/agent_client.h"

#include <cctype>
#include <chrono>
#include <map>

#include <boost/asio/connect.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <nlohmann/json.hpp>

#include "runtime/base/input_text.h"
#include "runtime/io/whole_file.h"

namespace residency::fleet {

namespace beast = boost::beast;
namespace http = beast::http;
using tcp = boost::asio::ip::tcp;

Result<AgentUrl> ParseAgentUrl(const std::string& url) {
  const auto bad = [&](const std::string& why) {
    return InvalidArgument("agent URL '" + Printable(url, 200) + "': " + why + " (expected http://HOST:PORT)");
  };
  if (url.rfind("https://", 0) == 0) return bad("https is not spoken; reach the agent over plain http");
  if (url.rfind("http://", 0) != 0) return bad("not an http:// URL");
  AgentUrl u;
  u.text = url;
  std::string rest = url.substr(7);
  const std::size_t slash = rest.find('/');
  if (slash != std::string::npos) {
    u.base_path = rest.substr(slash);
    rest = rest.substr(0, slash);
    while (!u.base_path.empty() && u.base_path.back() == '/') u.base_path.pop_back();
  }
  std::string port = "80";
  if (!rest.empty() && rest.front() == '[') {  // [::1]:9464
    const std::size_t close = rest.find(']');
    if (close == std::string::npos) return bad("unclosed [");
    u.host = rest.substr(1, close - 1);
    if (close + 1 < rest.size()) {
      if (rest[close + 1] != ':') return bad("junk after ]");
      port = rest.substr(close + 2);
    }
  } else {
    const std::size_t colon = rest.rfind(':');
    u.host = rest.substr(0, colon);
    if (colon != std::string::npos) port = rest.substr(colon + 1);
  }
  if (u.host.empty()) return bad("no host");
  if (port.empty() || port.size() > 5 || port.find_first_not_of("0123456789") != std::string::npos)
    return bad("bad port");
  const long p = std::stol(port);
  if (p < 1 || p > 65535) return bad("port out of range");
  u.port = static_cast<std::uint16_t>(p);
  return u;
}

Result<std::string> AgentGet(const AgentUrl& agent, const std::string& target, const AgentClientOptions& options) {
  const std::string where = agent.text + target;
  boost::asio::io_context ioc;
  tcp::resolver resolver(ioc);
  beast::tcp_stream stream(ioc);
  beast::error_code ec;
  const auto deadline = std::chrono::milliseconds(static_cast<long long>(options.timeout_s * 1000));
  auto endpoints = resolver.resolve(agent.host, std::to_string(agent.port), ec);
  if (ec) return Unavailable(where + ": cannot resolve " + agent.host + ": " + ec.message());
  stream.expires_after(deadline);
  stream.connect(endpoints, ec);
  if (ec) return Unavailable(where + ": cannot connect: " + ec.message());
  http::request<http::empty_body> req(http::verb::get, agent.base_path + target, 11);
  req.set(http::field::host, agent.host);
  if (!options.token.empty()) req.set(http::field::authorization, "Bearer " + options.token);
  http::write(stream, req, ec);
  if (ec) return Unavailable(where + ": sending the request: " + ec.message());
  beast::flat_buffer buffer;
  http::response_parser<http::string_body> parser;
  parser.body_limit(options.max_body);
  http::read(stream, buffer, parser, ec);
  if (ec) return Unavailable(where + ": reading the answer: " + ec.message());
  beast::error_code ignored;
  stream.socket().shutdown(tcp::socket::shutdown_both, ignored);
  const int status = static_cast<int>(parser.get().result_int());
  std::string body = std::move(parser.get().body());
  if (status != 200) {
    std::string message = Printable(body, 300);
    const nlohmann::json j = nlohmann::json::parse(body, nullptr, false);
    if (j.is_object() && j.contains("error") && j["error"].is_string()) message = Printable(j["error"].get<std::string>(), 300);
    return Unavailable(where + ": HTTP " + std::to_string(status) + ": " + message);
  }
  return body;
}

Result<std::string> ReadTokenFile(const std::string& path) {
  RESIDENCY_ASSIGN_OR_RETURN(std::string t, io::ReadWholeFile(path));
  while (!t.empty() && (t.back() == '\n' || t.back() == '\r' || t.back() == ' ' || t.back() == '\t')) t.pop_back();
  std::size_t start = t.find_first_not_of(" \t");
  t = start == std::string::npos ? "" : t.substr(start);
  if (t.empty() || t.find_first_of(" \t\r\n") != std::string::npos)
    return InvalidArgument(path + ": the token file must hold one non-empty token");
  return t;
}

Result<std::vector<FetchedTrace>> FetchCapturedTraces(const AgentUrl& agent, const AgentClientOptions& options) {
  RESIDENCY_ASSIGN_OR_RETURN(std::string list, AgentGet(agent, "/v1/traces", options));
  const nlohmann::json j = nlohmann::json::parse(list, nullptr, false);
  if (!j.is_array()) return InvalidArgument(agent.text + "/v1/traces: the answer is not a JSON array");
  std::vector<FetchedTrace> out;
  for (const nlohmann::json& t : j) {
    if (!t.is_object() || !t.contains("id") || !t["id"].is_string() || !t.contains("provenance") ||
        !t["provenance"].is_string())
      return InvalidArgument(agent.text + "/v1/traces: an entry without id or provenance");
    if (t["provenance"].get<std::string>().rfind("captured:", 0) != 0) continue;
    FetchedTrace f;
    f.id = t["id"].get<std::string>();
    if (f.id.size() != 16 || f.id.find_first_not_of("0123456789abcdef") != std::string::npos)
      return InvalidArgument(agent.text + "/v1/traces: trace id '" + Printable(f.id, 40) + "' is not 16 hex digits");
    f.name = t.contains("name") && t["name"].is_string() ? t["name"].get<std::string>() : f.id;
    RESIDENCY_ASSIGN_OR_RETURN(f.body, AgentGet(agent, "/v1/traces/" + f.id, options));
    out.push_back(std::move(f));
  }
  return out;
}

Result<std::vector<FetchedTrace>> FetchFromAgents(const std::vector<std::string>& urls, const std::string& token_file,
                                                  double timeout_s) {
  AgentClientOptions options;
  options.timeout_s = timeout_s;
  if (!token_file.empty()) {
    RESIDENCY_ASSIGN_OR_RETURN(options.token, ReadTokenFile(token_file));
  }
  std::vector<FetchedTrace> all;
  for (const std::string& u : urls) {
    RESIDENCY_ASSIGN_OR_RETURN(AgentUrl url, ParseAgentUrl(u));
    RESIDENCY_ASSIGN_OR_RETURN(std::vector<FetchedTrace> got, FetchCapturedTraces(url, options));
    for (FetchedTrace& t : got) {
      bool seen = false;
      for (const FetchedTrace& a : all) seen = seen || a.id == t.id;
      if (!seen) all.push_back(std::move(t));
    }
  }
  // Names become file names and sweep names: plain, and one per trace.
  for (FetchedTrace& t : all) {
    std::string n;
    for (char c : t.name) n += std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_' || c == '.' ? c : '_';
    if (n.empty() || n[0] == '.') n = "trace-" + n;
    t.name = n.substr(0, 64);
  }
  std::map<std::string, int> uses;
  for (const FetchedTrace& t : all) ++uses[t.name];
  for (FetchedTrace& t : all)
    if (uses[t.name] > 1) t.name = t.name.substr(0, 47) + "-" + t.id;
  return all;
}

}  // namespace residency::fleet
