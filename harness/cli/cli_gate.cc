// `residency gate --agent URL`: the verdicts an agent's gate reached on the
// captured traffic it stored (GET /v1/gate), as a table; --html writes them
// in front of the report of the runs behind them. Exit 1 when a verdict
// fails the gate, as `residency compare` does.
#include <iostream>
#include <memory>

#include <nlohmann/json.hpp>

#include "harness/cli/cli.h"
#include "harness/fleet/agent_client.h"
#include "harness/report/gate_report.h"
#include "harness/report/html_report.h"
#include "harness/store/run_figures.h"

namespace residency::cli {
namespace {

using nlohmann::json;

struct GateArgs {
  std::string agent, token_file, html, candidate, profile;
  bool json = false, all = false;
  double timeout_s = 30;
};

std::string Str(const json& j, const char* key) {
  return j.contains(key) && j[key].is_string() ? j[key].get<std::string>() : "";
}
std::optional<std::int64_t> OptInt(const json& j, const char* key) {
  if (j.contains(key) && j[key].is_number_integer()) return j[key].get<std::int64_t>();
  return std::nullopt;
}

Result<std::vector<store::VerdictRow>> ParseVerdicts(const json& j, const std::string& where) {
  if (!j.contains("verdicts") || !j["verdicts"].is_array()) return InvalidArgument(where + ": no verdicts array");
  std::vector<store::VerdictRow> out;
  for (const json& v : j["verdicts"]) {
    if (!v.is_object()) return InvalidArgument(where + ": a verdict is not an object");
    store::VerdictRow r;
    r.trace = Str(v, "trace");
    r.trace_hash = Str(v, "trace_id");
    r.profile = Str(v, "profile");
    r.baseline = Str(v, "baseline");
    r.candidate = Str(v, "candidate");
    r.verdict = Str(v, "verdict");
    r.metric = Str(v, "metric");
    r.gate = Str(v, "gate");
    r.code_version = Str(v, "code_version");
    r.baseline_outcome = Str(v, "baseline_outcome");
    r.candidate_outcome = Str(v, "candidate_outcome");
    r.baseline_value = OptInt(v, "baseline_value");
    r.candidate_value = OptInt(v, "candidate_value");
    if (v.contains("delta_pct") && v["delta_pct"].is_number()) r.delta_pct = v["delta_pct"].get<double>();
    if (v.contains("threshold_pct") && v["threshold_pct"].is_number()) r.threshold_pct = v["threshold_pct"].get<double>();
    out.push_back(std::move(r));
  }
  return out;
}

// GET /v1/runs, every page, as the HTML report reads runs.
Result<std::vector<store::RunRow>> FetchRuns(const fleet::AgentUrl& url, const fleet::AgentClientOptions& o) {
  std::vector<store::RunRow> runs;
  constexpr int kPage = 10000;
  for (std::int64_t offset = 0;; offset += kPage) {
    RESIDENCY_ASSIGN_OR_RETURN(std::string body, fleet::AgentGet(url, "/v1/runs?limit=" + std::to_string(kPage) +
                                                                          "&offset=" + std::to_string(offset), o));
    const json j = json::parse(body, nullptr, false);
    if (!j.is_array()) return InvalidArgument(url.text + "/v1/runs: the answer is not a JSON array");
    for (const json& r : j) {
      store::RunRow row;
      row.id = r.value("id", std::int64_t{0});
      row.trace = Str(r, "trace");
      row.trace_hash = Str(r, "trace_id");
      row.profile = Str(r, "profile");
      row.policy = Str(r, "policy");
      row.seed = r.value("seed", std::uint64_t{0});
      row.code_version = Str(r, "code_version");
      row.host = Str(r, "host");
      row.started_at = Str(r, "started_at");
      row.outcome = Str(r, "outcome");
      for (const store::FigureColumn& c : store::FigureColumns())
        if (auto v = OptInt(r, c.name)) row.figures[c.name] = *v;
      if (r.contains("violations") && r["violations"].is_array())
        for (const json& v : r["violations"])
          if (v.is_string()) row.violations.push_back(v.get<std::string>());
      runs.push_back(std::move(row));
    }
    if (static_cast<int>(j.size()) < kPage) return runs;
  }
}

int RunGate(const GateArgs& a) {
  auto url = fleet::ParseAgentUrl(a.agent);
  if (!url.ok()) return Fail(url.status());
  fleet::AgentClientOptions o;
  o.timeout_s = a.timeout_s;
  if (!a.token_file.empty()) {
    auto token = fleet::ReadTokenFile(a.token_file);
    if (!token.ok()) return Fail(token.status());
    o.token = *token;
  }
  std::string target = "/v1/gate?";
  if (a.all) target += "all=1&";
  if (!a.candidate.empty()) target += "candidate=" + a.candidate + "&";
  if (!a.profile.empty()) target += "profile=" + a.profile + "&";
  target.pop_back();
  auto body = fleet::AgentGet(*url, target, o);
  if (!body.ok()) return Fail(body.status());
  if (a.json) std::cout << *body;
  const json j = json::parse(*body, nullptr, false);
  if (!j.is_object()) return Fail(InvalidArgument(a.agent + "/v1/gate: the answer is not a JSON object"));
  auto verdicts = ParseVerdicts(j, a.agent + "/v1/gate");
  if (!verdicts.ok()) return Fail(verdicts.status());
  harness::GateSummary s;
  s.agent = a.agent;
  if (j.contains("gate") && j["gate"].is_object()) {
    const json& g = j["gate"];
    s.gate = Str(g, "hash");
    s.baseline = Str(g, "baseline");
    s.metric = Str(g, "metric");
    s.threshold_pct = g.value("threshold_pct", 0.0);
  } else {
    s.gate = "(none: the agent runs without --gate)";
    s.metric = "makespan";
  }
  if (j.contains("queue") && j["queue"].is_object()) {
    const json& q = j["queue"];
    s.queue = {q.value("queued", std::int64_t{0}), q.value("running", std::int64_t{0}), q.value("done", std::int64_t{0}),
               q.value("failed", std::int64_t{0})};
  }
  if (!a.json) std::cout << harness::FormatVerdictTable(s, *verdicts);
  if (!a.html.empty()) {
    auto runs = FetchRuns(*url, o);
    if (!runs.ok()) return Fail(runs.status());
    if (!WriteTextFile(a.html, harness::HtmlReport(*runs, "Residency gate on " + a.agent, harness::VerdictHtml(s, *verdicts))))
      return 2;
    std::cerr << "report of " << verdicts->size() << " verdicts and " << runs->size() << " runs written to " << a.html
              << "\n";
  }
  return harness::FailingVerdicts(*verdicts) > 0 ? 1 : 0;
}

}  // namespace

Subcommand AddGate(CLI::App& app) {
  auto a = std::make_shared<GateArgs>();
  CLI::App* c = app.add_subcommand("gate", "The verdicts an agent's gate reached on the captured traffic it stores");
  c->add_option("--agent", a->agent, "The agent, http://HOST:PORT")->required();
  c->add_option("--token-file", a->token_file, "File holding the agent's bearer token");
  c->add_option("--candidate", a->candidate, "Only this candidate's verdicts");
  c->add_option("--profile", a->profile, "Only this profile's verdicts");
  c->add_flag("--all", a->all, "Every stored verdict, also of other gates and builds (default: the agent's current ones)");
  c->add_flag("--json", a->json, "Print the agent's JSON answer instead of the table");
  c->add_option("--html", a->html, "Also write one HTML page: the verdicts, then the report of every run behind them");
  c->add_option("--timeout", a->timeout_s, "Seconds per request to the agent")->capture_default_str();
  c->footer("Exit 1 when a verdict fails the gate (regressed, new_oom, new_infeasible, violation, error); 2 when the "
            "agent cannot be read.");
  return {c, [a] { return RunGate(*a); }};
}

}  // namespace residency::cli
