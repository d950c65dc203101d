#include "harness/agent/agent.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <filesystem>
#include <map>
#include <nlohmann/json.hpp>

#include "harness/agent/client_message.h"
#include "harness/gate/captured_replay.h"
#include "harness/metrics/captured_sample.h"
#include "harness/report/compare.h"
#include "harness/metrics/run_sample.h"
#include "harness/common/build_info.h"
#include "harness/store/run_figures.h"
#include "harness/sweep/sweep_runner.h"
#include "traces/bundled.h"

namespace residency::agent {
namespace {

using nlohmann::json;

HttpResponse Json(int status, const json& body, const std::string& route) {
  return HttpResponse{status, "application/json", body.dump() + "\n", route, ""};
}
HttpResponse Error(int status, const std::string& message, const std::string& route) {
  return Json(status, json{{"error", message}}, route);
}

bool IsHexId(const std::string& s) {
  return s.size() == 16 && s.find_first_not_of("0123456789abcdef") == std::string::npos;
}
bool IsNumericId(const std::string& s) {
  return !s.empty() && s.size() <= 18 && s.find_first_not_of("0123456789") == std::string::npos;
}
// Names that can only ever be a bundled entry, never a path.
bool IsSafeName(const std::string& s) {
  if (s.empty() || s.size() > 64 || s[0] == '.' || s[0] == '-') return false;
  return s.find_first_not_of("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-") ==
             std::string::npos &&
         s.find("..") == std::string::npos;
}

int HexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// "a=1&b=x%20y" -> {a: 1, b: "x y"}; a malformed escape fails the query.
bool ParseQuery(const std::string& q, std::map<std::string, std::string>* out) {
  std::size_t pos = 0;
  while (pos < q.size()) {
    std::size_t amp = q.find('&', pos);
    if (amp == std::string::npos) amp = q.size();
    const std::string pair = q.substr(pos, amp - pos);
    pos = amp + 1;
    if (pair.empty()) continue;
    const auto eq = pair.find('=');
    std::string key = pair.substr(0, eq), value, raw = eq == std::string::npos ? "" : pair.substr(eq + 1);
    for (std::size_t i = 0; i < raw.size(); ++i) {
      if (raw[i] == '+') {
        value += ' ';
      } else if (raw[i] == '%') {
        if (i + 2 >= raw.size()) return false;
        const int hi = HexValue(raw[i + 1]), lo = HexValue(raw[i + 2]);
        if (hi < 0 || lo < 0) return false;
        value += static_cast<char>(hi * 16 + lo);
        i += 2;
      } else {
        value += raw[i];
      }
    }
    (*out)[key] = value;
  }
  return true;
}

json RunJson(const store::RunRow& r) {
  json j{{"id", r.id},           {"trace", r.trace},     {"trace_id", r.trace_hash},
         {"profile", r.profile}, {"policy", r.policy},   {"seed", r.seed},
         {"code_version", r.code_version}, {"host", r.host}, {"started_at", r.started_at},
         {"duration_s", r.duration_s}, {"outcome", r.outcome}};
  for (const auto& [name, value] : r.figures) j[name] = value;
  j["violations"] = r.violations;
  return j;
}

}  // namespace

Result<std::unique_ptr<Agent>> Agent::Open(const AgentOptions& options) {
  std::error_code ec;
  std::filesystem::create_directories(options.data_dir, ec);
  if (ec) return FailedPrecondition("--data " + options.data_dir + ": cannot create: " + ec.message());
  RESIDENCY_ASSIGN_OR_RETURN(std::unique_ptr<store::ResultsStore> store,
                             store::ResultsStore::Open((std::filesystem::path(options.data_dir) / "results.db").string()));
  RESIDENCY_ASSIGN_OR_RETURN(std::vector<store::SweepRow> unfinished, store->UnfinishedSweeps());
  std::optional<gate::GateConfig> gate;
  if (!options.gate_path.empty()) {
    auto g = gate::ReadGateConfig(options.gate_path);
    if (!g.ok()) return InvalidArgument("--gate: " + g.status().message());
    gate = std::move(g).value();
  }
  RESIDENCY_ASSIGN_OR_RETURN(std::vector<store::QueuedTrace> pending, store->PendingCaptured());
  std::unique_ptr<Agent> agent(new Agent(options, std::move(store)));
  agent->gate_ = std::move(gate);
  if (agent->gate_) {
    std::vector<std::string> candidates, failing;
    for (const gate::PolicyChoice& c : agent->gate_->candidates) candidates.push_back(c.name);
    for (harness::Verdict v : harness::AllVerdicts())
      if (harness::Fails(v)) failing.push_back(std::string(harness::Label(v)));
    agent->metrics_.InitVerdicts(agent->gate_->profiles, candidates, failing);
  }
  if (options.replay_workers > 0) {
    // A restart resumes what was queued or running; a replay's stored runs are found, not repeated.
    for (const store::QueuedTrace& q : pending) agent->replay_queue_.push_back(q.trace_id);
    {
      std::lock_guard lock(agent->replay_mu_);
      agent->PublishReplayQueue();
    }
    for (int i = 0; i < options.replay_workers; ++i)
      agent->replay_workers_.emplace_back([a = agent.get()] { a->ReplayLoop(); });
  }
  for (const store::SweepRow& s : unfinished) agent->queue_.push_back(s.id);
  agent->metrics_.SetSweepsQueued(static_cast<std::int64_t>(agent->queue_.size()));
  for (int i = 0; i < std::max(1, options.workers); ++i)
    agent->workers_.emplace_back([a = agent.get()] { a->WorkerLoop(); });
  return agent;
}

Agent::Agent(AgentOptions options, std::unique_ptr<store::ResultsStore> store)
    : options_(std::move(options)), store_(std::move(store)) {
  server_paths_ = {options_.data_dir, (std::filesystem::path(options_.data_dir) / "results.db").string(),
                   traces::DataDir()};
}

std::string Agent::ForClient(const std::string& message) const { return WithoutServerPaths(message, server_paths_); }

HttpResponse Agent::ServerError(const Status& status, const std::string& route) const {
  return Error(500, ForClient(status.message()), route);
}

Agent::~Agent() { Shutdown(); }

void Agent::Shutdown() {
  draining_ = true;
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
  {
    std::lock_guard lock(replay_mu_);
  }
  replay_cv_.notify_all();
  for (std::thread& t : workers_)
    if (t.joinable()) t.join();
  for (std::thread& t : replay_workers_)
    if (t.joinable()) t.join();
}

bool Agent::Authorized(const HttpRequest& request) const {
  if (options_.token.empty()) return true;
  const std::string expected = "Bearer " + options_.token;
  const std::string& got = request.authorization;
  // Constant time in the token's length: no early exit on the first mismatch.
  unsigned diff = got.size() == expected.size() ? 0u : 1u;
  for (std::size_t i = 0; i < expected.size(); ++i) diff |= static_cast<unsigned>(expected[i] ^ (i < got.size() ? got[i] : 0));
  return diff == 0;
}

std::optional<HttpResponse> Agent::CheckHeader(const HttpRequest& head) const {
  const std::string path = head.target.substr(0, head.target.find('?'));
  if (path == "/healthz" || path == "/metrics") {
    if (head.method == "GET") return std::nullopt;
    return Error(405, "method not allowed", path);
  }
  if (head.method == "GET") return std::nullopt;
  if (head.method != "POST") return Error(405, "method not allowed", "unknown");
  if (path != "/v1/traces" && path != "/v1/sweeps") return Error(404, "no such route", "unknown");
  if (!Authorized(head)) {
    HttpResponse r = Error(401, "missing or wrong bearer token", path);
    r.www_authenticate = "Bearer realm=\"residency\"";
    return r;
  }
  if (draining_) {
    HttpResponse r = Error(503, "the agent is shutting down", path);
    r.retry_after_s = 5;
    return r;
  }
  return std::nullopt;
}

HttpResponse Agent::Handle(const HttpRequest& request) {
  const auto qmark = request.target.find('?');
  const std::string path = request.target.substr(0, qmark);
  const std::string query = qmark == std::string::npos ? "" : request.target.substr(qmark + 1);
  const bool get = request.method == "GET", post = request.method == "POST";
  const auto method_not_allowed = [&](const std::string& route) { return Error(405, "method not allowed", route); };

  if (path == "/healthz") {
    if (!get) return method_not_allowed("/healthz");
    if (draining_) return Json(503, json{{"status", "draining"}}, "/healthz");
    return Json(200, json{{"status", "ok"}, {"version", harness::CodeVersion()}}, "/healthz");
  }
  if (path == "/metrics") {
    if (!get) return method_not_allowed("/metrics");
    return HttpResponse{200, "text/plain; version=0.0.4; charset=utf-8", metrics_.Serialize(), "/metrics", ""};
  }
  if (post) {
    if (std::optional<HttpResponse> refused = CheckHeader(request)) return std::move(*refused);
    return path == "/v1/traces" ? PostTrace(request, query) : PostSweep(request);
  }
  if (!get) return method_not_allowed("unknown");
  if (path == "/v1/traces") return GetTraces();
  if (path == "/v1/runs") return GetRuns(query);
  if (path == "/v1/gate") return GetGate(query);
  if (path == "/v1/fidelity") return GetFidelity(query);
  const auto under = [&](const std::string& prefix) {
    return path.size() > prefix.size() && path.compare(0, prefix.size(), prefix) == 0;
  };
  if (under("/v1/traces/")) return GetTrace(path.substr(11));
  if (under("/v1/runs/")) return GetRun(path.substr(9));
  if (under("/v1/sweeps/")) return GetSweep(path.substr(11));
  return Error(404, "no such route", "unknown");
}

HttpResponse Agent::PostTrace(const HttpRequest& request, const std::string& query) {
  const std::string route = "/v1/traces";
  std::map<std::string, std::string> params;
  if (!ParseQuery(query, &params)) return Error(400, "malformed query string", route);
  std::string name = params.count("name") ? params["name"] : "";
  if (!name.empty() && !IsSafeName(name)) return Error(400, "name must be 1-64 of [A-Za-z0-9._-]", route);
  if (request.body.empty()) return Error(400, "empty body: POST a trace (JSON Lines)", route);
  traces::Trace trace;
  auto parsed = sweep::TraceFromText(name, "request body", request.body, &trace);
  if (!parsed.ok()) return Error(400, parsed.status().message(), route);
  bool created = false;
  const bool replayed = parsed->captured && options_.replay_workers > 0;
  Result<std::int64_t> id = std::int64_t{0};
  if (replayed) {
    // Stored and queued in one transaction (committed on return); refused,
    // unstored, when the replay queue is full, so the sender keeps it.
    bool queue_full = false;
    id = store_->PutCapturedTrace(parsed->name, parsed->provenance, request.body, options_.replay_queue_limit,
                                  &created, &queue_full);
    if (id.ok() && queue_full) {
      HttpResponse r = Error(503,
                             "replay queue full (" + std::to_string(options_.replay_queue_limit) +
                                 " captured traces wait); retry later",
                             route);
      r.retry_after_s = 30;
      return r;
    }
  } else {
    id = store_->PutTrace(parsed->name, parsed->provenance, request.body, &created);  // committed on return
  }
  if (!id.ok()) return ServerError(id.status(), route);
  if (created) {
    metrics_.RecordIngest(static_cast<engine::Bytes>(request.body.size()));
    if (parsed->captured) {
      metrics_.RecordCapturedTrace(parsed->captured_host);
      metrics_.RecordCapturedTraffic(metrics::CapturedSampleFromTrace(trace));
    }
    if (replayed) EnqueueReplay(*id);
  }
  return Json(created ? 201 : 200,
              json{{"id", store::ContentHash(request.body)}, {"name", parsed->name}, {"bytes", request.body.size()},
                   {"created", created}},
              route);
}

HttpResponse Agent::GetTraces() {
  auto traces = store_->ListTraces();
  if (!traces.ok()) return ServerError(traces.status(), "/v1/traces");
  json out = json::array();
  for (const store::StoredTrace& t : *traces)
    out.push_back({{"id", t.hash}, {"name", t.name}, {"provenance", t.provenance}});
  return Json(200, out, "/v1/traces");
}

HttpResponse Agent::GetTrace(const std::string& id) {
  const std::string route = "/v1/traces/{id}";
  if (!IsHexId(id)) return Error(400, "a trace id is 16 lowercase hex digits", route);
  auto t = store_->GetTrace(id);
  if (!t.ok()) return ServerError(t.status(), route);
  if (!t->has_value()) return Error(404, "no trace " + id, route);
  return HttpResponse{200, "application/x-ndjson", (*t)->body, route, ""};
}

HttpResponse Agent::PostSweep(const HttpRequest& request) {
  const std::string route = "/v1/sweeps";
  json spec = json::parse(request.body, nullptr, /*allow_exceptions=*/false);
  if (spec.is_discarded() || !spec.is_object()) return Error(400, "body is not a JSON object", route);
  for (const auto& [key, value] : spec.items()) {
    if (key != "traces" && key != "profiles" && key != "policies" && key != "seeds")
      return Error(400, "unknown field '" + key + "' (known: traces, profiles, policies, seeds)", route);
  }
  const auto strings = [&](const char* field, std::vector<std::string>* out) -> std::string {
    if (!spec.contains(field)) return std::string("missing field '") + field + "'";
    const json& a = spec[field];
    if (!a.is_array() || a.empty() || a.size() > 1000) return std::string("'") + field + "' must be a non-empty array";
    for (const json& v : a) {
      if (!v.is_string()) return std::string("'") + field + "' must hold strings";
      out->push_back(v.get<std::string>());
    }
    return "";
  };
  std::vector<std::string> trace_ids, profiles, policies;
  for (auto [field, out] : {std::pair{"traces", &trace_ids}, {"profiles", &profiles}, {"policies", &policies}}) {
    const std::string err = strings(field, out);
    if (!err.empty()) return Error(400, err, route);
  }
  std::vector<std::uint64_t> seeds = {1};
  if (spec.contains("seeds")) {
    seeds.clear();
    if (!spec["seeds"].is_array() || spec["seeds"].empty() || spec["seeds"].size() > 1000)
      return Error(400, "'seeds' must be a non-empty array", route);
    for (const json& s : spec["seeds"]) {
      if (!s.is_number_unsigned()) return Error(400, "'seeds' must hold non-negative integers", route);
      seeds.push_back(s.get<std::uint64_t>());
    }
  }
  for (const std::string& id : trace_ids) {
    if (!IsHexId(id)) return Error(400, "trace id '" + id.substr(0, 40) + "' is not 16 hex digits", route);
    auto t = store_->GetTrace(id);
    if (!t.ok()) return ServerError(t.status(), route);
    if (!t->has_value()) return Error(404, "no trace " + id + "; POST it to /v1/traces first", route);
  }
  for (auto [kind, names] : {std::pair{"profiles", &profiles}, {"policies", &policies}}) {
    for (const std::string& n : *names) {
      bool known = IsSafeName(n);
      if (known) {
        known = false;
        for (const traces::BundledEntry& e : traces::ListBundled(kind)) known = known || e.name == n;
      }
      if (!known) return Error(400, std::string("unknown ") + kind + " name '" + n.substr(0, 64) + "' (bundled names only)", route);
    }
  }
  const std::size_t runs = trace_ids.size() * profiles.size() * policies.size() * seeds.size();
  if (runs > options_.max_runs_per_sweep)
    return Error(400, std::to_string(runs) + " runs is over this agent's limit of " +
                          std::to_string(options_.max_runs_per_sweep), route);
  {
    std::lock_guard lock(mu_);
    if (queue_.size() >= options_.queue_limit) {
      HttpResponse r = Error(503, "sweep queue full; retry later", route);
      r.retry_after_s = 30;
      return r;
    }
  }
  const json stored{{"traces", trace_ids}, {"profiles", profiles}, {"policies", policies}, {"seeds", seeds}};
  auto id = store_->AddSweep(stored.dump());
  if (!id.ok()) return ServerError(id.status(), route);
  Enqueue(*id);
  return Json(202, json{{"id", *id}, {"runs", runs}, {"status", "queued"}}, route);
}

HttpResponse Agent::GetSweep(const std::string& id) {
  const std::string route = "/v1/sweeps/{id}";
  if (!IsNumericId(id)) return Error(400, "a sweep id is a number", route);
  auto s = store_->GetSweep(std::stoll(id));
  if (!s.ok()) return ServerError(s.status(), route);
  if (!s->has_value()) return Error(404, "no sweep " + id, route);
  const store::SweepRow& r = **s;
  return Json(200,
              json{{"id", r.id}, {"status", r.status}, {"runs_total", r.runs_total}, {"runs_done", r.runs_done},
                   {"message", ForClient(r.message)}, {"created_at", r.created_at}, {"spec", json::parse(r.spec, nullptr, false)}},
              route);
}

HttpResponse Agent::GetRuns(const std::string& query) {
  const std::string route = "/v1/runs";
  std::map<std::string, std::string> params;
  if (!ParseQuery(query, &params)) return Error(400, "malformed query string", route);
  store::RunFilter f;
  f.trace = params["trace"];
  f.profile = params["profile"];
  f.policy = params["policy"];
  f.limit = 1000;
  for (auto [key, out] : {std::pair{"limit", &f.limit}, {"offset", &f.offset}}) {
    if (!params.count(key)) continue;
    if (!IsNumericId(params[key])) return Error(400, std::string("'") + key + "' must be a non-negative integer", route);
    *out = std::stoll(params[key]);
  }
  f.limit = std::min<std::int64_t>(f.limit, 10000);
  auto runs = store_->ListRuns(f);
  if (!runs.ok()) return ServerError(runs.status(), route);
  json out = json::array();
  for (const store::RunRow& r : *runs) out.push_back(RunJson(r));
  return Json(200, out, route);
}

HttpResponse Agent::GetRun(const std::string& id) {
  const std::string route = "/v1/runs/{id}";
  if (!IsNumericId(id)) return Error(400, "a run id is a number", route);
  std::string result_json;
  auto r = store_->GetRun(std::stoll(id), &result_json);
  if (!r.ok()) return ServerError(r.status(), route);
  if (!r->has_value()) return Error(404, "no run " + id, route);
  json j = RunJson(**r);
  j["result"] = json::parse(result_json, nullptr, false);
  return Json(200, j, route);
}

namespace {

json VerdictJson(const store::VerdictRow& v) {
  json j{{"trace", v.trace},         {"trace_id", v.trace_hash}, {"profile", v.profile},
         {"baseline", v.baseline},   {"candidate", v.candidate}, {"verdict", v.verdict},
         {"metric", v.metric},       {"threshold_pct", v.threshold_pct},
         {"baseline_outcome", v.baseline_outcome}, {"candidate_outcome", v.candidate_outcome},
         {"baseline_run", v.baseline_run}, {"candidate_run", v.candidate_run},
         {"gate", v.gate},           {"code_version", v.code_version}, {"created_at", v.created_at}};
  j["baseline_value"] = v.baseline_value ? json(*v.baseline_value) : json(nullptr);
  j["candidate_value"] = v.candidate_value ? json(*v.candidate_value) : json(nullptr);
  j["delta_pct"] = v.delta_pct ? json(*v.delta_pct) : json(nullptr);
  return j;
}

json QueueJson(const store::QueueCounts& q) {
  return json{{"queued", q.queued}, {"running", q.running}, {"done", q.done}, {"failed", q.failed}};
}

double Quantile(std::vector<double> v, double q) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  const std::size_t i = static_cast<std::size_t>(std::ceil(q * static_cast<double>(v.size()))) ;
  return v[std::min(v.size() - 1, i == 0 ? 0 : i - 1)];
}

}  // namespace

HttpResponse Agent::GetGate(const std::string& query) {
  const std::string route = "/v1/gate";
  std::map<std::string, std::string> params;
  if (!ParseQuery(query, &params)) return Error(400, "malformed query string", route);
  store::VerdictFilter f;
  f.trace_hash = params["trace"];
  f.profile = params["profile"];
  f.candidate = params["candidate"];
  f.verdict = params["verdict"];
  if (!f.trace_hash.empty() && !IsHexId(f.trace_hash)) return Error(400, "a trace id is 16 lowercase hex digits", route);
  const bool all = params["all"] == "1";
  auto rows = store_->ListVerdicts(f);
  if (!rows.ok()) return ServerError(rows.status(), route);
  auto queue = store_->CountCaptured();
  if (!queue.ok()) return ServerError(queue.status(), route);
  json out;
  if (gate_) {
    json candidates = json::array();
    for (const gate::PolicyChoice& c : gate_->candidates) candidates.push_back(c.name);
    out["gate"] = json{{"hash", gate_->hash},           {"profiles", gate_->profiles},
                       {"baseline", gate_->baseline.name}, {"candidates", candidates},
                       {"metric", gate_->metric},       {"threshold_pct", gate_->threshold_pct}};
  } else {
    out["gate"] = nullptr;
  }
  out["code_version"] = harness::CodeVersion();
  out["queue"] = QueueJson(*queue);
  json verdicts = json::array();
  std::map<std::string, std::map<std::string, int>> summary;  // candidate -> verdict -> count
  for (const store::VerdictRow& v : *rows) {
    // By default the verdicts of this gate and this build; all=1: every one stored.
    if (!all && (!gate_ || v.gate != gate_->hash || v.code_version != harness::CodeVersion())) continue;
    verdicts.push_back(VerdictJson(v));
    ++summary[v.candidate][v.verdict];
  }
  out["verdicts"] = std::move(verdicts);
  out["summary"] = summary;
  return Json(200, out, route);
}

HttpResponse Agent::GetFidelity(const std::string& query) {
  const std::string route = "/v1/fidelity";
  std::map<std::string, std::string> params;
  if (!ParseQuery(query, &params)) return Error(400, "malformed query string", route);
  const std::string trace = params["trace"];
  if (!trace.empty() && !IsHexId(trace)) return Error(400, "a trace id is 16 lowercase hex digits", route);
  auto rows = store_->ListFidelity(trace, 100000);
  if (!rows.ok()) return ServerError(rows.status(), route);
  json prompts = json::array();
  std::map<std::string, std::vector<double>> by_host;
  for (const store::FidelityRow& r : *rows) {
    json j{{"trace", r.trace}, {"trace_id", r.trace_hash}, {"host", r.host}, {"prompt", r.prompt},
           {"status", r.status}, {"simulated_ns", r.simulated_ns}, {"policy", r.policy_detail},
           {"code_version", r.code_version}};
    j["captured_ns"] = r.captured_ns >= 0 ? json(r.captured_ns) : json(nullptr);
    j["error"] = r.error ? json(*r.error) : json(nullptr);
    if (r.error) by_host[r.host].push_back(std::fabs(*r.error));
    prompts.push_back(std::move(j));
  }
  json hosts = json::object();
  for (const auto& [host, errors] : by_host)
    hosts[host] = json{{"compared", errors.size()}, {"median_abs_error", Quantile(errors, 0.5)},
                       {"p90_abs_error", Quantile(errors, 0.9)}};
  return Json(200, json{{"hosts", hosts}, {"prompts", prompts}}, route);
}

void Agent::PublishReplayQueue() {
  metrics_.SetReplayQueue(static_cast<std::int64_t>(replay_queue_.size()), static_cast<std::int64_t>(replay_running_));
}

void Agent::EnqueueReplay(std::int64_t trace_id) {
  {
    std::lock_guard lock(replay_mu_);
    replay_queue_.push_back(trace_id);
    PublishReplayQueue();
  }
  replay_cv_.notify_one();
}

void Agent::ReplayLoop() {
  for (;;) {
    std::int64_t id = 0;
    {
      std::unique_lock lock(replay_mu_);
      replay_cv_.wait(lock, [&] { return stopping_ || !replay_queue_.empty(); });
      if (stopping_) return;
      id = replay_queue_.front();
      replay_queue_.pop_front();
      ++replay_running_;
      PublishReplayQueue();
    }
    ReplayOne(id);
    std::lock_guard lock(replay_mu_);
    --replay_running_;
    PublishReplayQueue();
  }
}

void Agent::ReplayOne(std::int64_t trace_id) {
  const auto t0 = std::chrono::steady_clock::now();
  const auto seconds = [&] { return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count(); };
  const auto failed = [&](const std::string& message) {
    (void)store_->SetCapturedState(trace_id, "failed", ForClient(message));
    metrics_.RecordReplay("failed", seconds());
  };
  (void)store_->SetCapturedState(trace_id, "running", "");
  auto stored = store_->GetTraceById(trace_id);
  if (!stored.ok()) return failed(stored.status().message());
  if (!stored->has_value()) return failed("trace " + std::to_string(trace_id) + " is gone");
  gate::ReplaySettings settings;
  settings.code_version = harness::CodeVersion();
  settings.host = harness::HostName();
  settings.max_wall_seconds = options_.replay_max_wall_seconds;
  auto replay = gate::ReplayCaptured(*store_, **stored, gate_ ? &*gate_ : nullptr, settings);
  if (!replay.ok()) return failed(replay.status().message());
  if (Status s = store_->PutFidelity(trace_id, replay->fidelity); !s.ok()) return failed(s.message());
  if (Status s = store_->PutVerdicts(trace_id, replay->verdicts); !s.ok()) return failed(s.message());
  for (const gate::ReplayedRun& r : replay->runs)
    metrics_.RecordRun(metrics::SampleFromSim(r.result, r.outcome, r.profile, r.policy));
  for (const store::FidelityRow& f : replay->fidelity)
    if (f.error) metrics_.RecordFidelityError(replay->host, std::fabs(*f.error));
  for (const store::VerdictRow& v : replay->verdicts) metrics_.RecordVerdict(v.profile, v.candidate, v.verdict);
  std::string note;
  for (std::size_t i = 0; i < replay->warnings.size() && i < 4; ++i) note += (note.empty() ? "" : "; ") + replay->warnings[i];
  (void)store_->SetCapturedState(trace_id, "done", ForClient(note));
  metrics_.RecordReplay("done", seconds());
}

void Agent::Enqueue(std::int64_t sweep_id) {
  {
    std::lock_guard lock(mu_);
    queue_.push_back(sweep_id);
    metrics_.SetSweepsQueued(static_cast<std::int64_t>(queue_.size() + running_));
  }
  cv_.notify_one();
}

void Agent::WorkerLoop() {
  for (;;) {
    std::int64_t id = 0;
    {
      std::unique_lock lock(mu_);
      cv_.wait(lock, [&] { return stopping_ || !queue_.empty(); });
      if (stopping_) return;
      id = queue_.front();
      queue_.pop_front();
      ++running_;
    }
    RunOneSweep(id);
    std::lock_guard lock(mu_);
    --running_;
    metrics_.SetSweepsQueued(static_cast<std::int64_t>(queue_.size() + running_));
  }
}

void Agent::RunOneSweep(std::int64_t sweep_id) {
  const auto finish = [&](const std::string& status, std::int64_t total, std::int64_t done, const std::string& msg) {
    (void)store_->UpdateSweep(sweep_id, status, total, done, ForClient(msg));
    if (status == "done" || status == "failed") metrics_.RecordSweep(status);
  };
  auto row = store_->GetSweep(sweep_id);
  if (!row.ok() || !row->has_value()) return;
  const json spec = json::parse((*row)->spec, nullptr, false);
  sweep::SweepSpec s;
  try {
    for (const json& id : spec.at("traces")) {
      auto t = store_->GetTrace(id.get<std::string>());
      if (!t.ok() || !t->has_value()) return finish("failed", 0, 0, "trace " + id.get<std::string>() + " is gone");
      auto in = sweep::TraceFromText((*t)->name, "agent:" + (*t)->hash, (*t)->body);
      if (!in.ok()) return finish("failed", 0, 0, in.status().message());
      s.traces.push_back(std::move(*in));
    }
    for (const json& n : spec.at("profiles")) {
      auto in = sweep::LoadProfileInput(n.get<std::string>());
      if (!in.ok()) return finish("failed", 0, 0, in.status().message());
      s.profiles.push_back(std::move(*in));
    }
    for (const json& n : spec.at("policies")) {
      auto in = sweep::LoadPolicyInput(n.get<std::string>());
      if (!in.ok()) return finish("failed", 0, 0, in.status().message());
      s.policies.push_back(std::move(*in));
    }
    s.seeds = spec.at("seeds").get<std::vector<std::uint64_t>>();
  } catch (const std::exception& e) {
    return finish("failed", 0, 0, std::string("stored spec unreadable: ") + e.what());
  }
  const auto total = static_cast<std::int64_t>(sweep::PlanRuns(s, {}).size());
  (void)store_->UpdateSweep(sweep_id, "running", total, 0, "");
  sweep::SweepOptions o;
  o.jobs = options_.jobs_per_sweep;
  o.code_version = harness::CodeVersion();
  o.host = harness::HostName();
  o.stop = &stopping_;
  // Runs of this sweep in the store: each one reported was stored (or found
  // there). RunSweep calls on_run under its lock and joins its threads
  // before it returns, so reading this afterwards is race-free.
  std::size_t stored = 0;
  o.on_run = [&](const sweep::RunDone& d, std::size_t done, std::size_t) {
    stored = done;
    if (d.result) {
      metrics_.RecordRun(metrics::SampleFromSim(*d.result, d.outcome, s.profiles[d.run->profile].name,
                                                s.policies[d.run->policy].name));
    }
    (void)store_->UpdateSweep(sweep_id, "running", total, static_cast<std::int64_t>(done), "");
  };
  auto summary = sweep::RunSweep(*store_, s, o);
  if (!summary.ok()) {
    return finish("failed", total, static_cast<std::int64_t>(stored),
                  "stopped after " + std::to_string(stored) + " of " + std::to_string(total) +
                      " runs: " + summary.status().message());
  }
  const auto done = static_cast<std::int64_t>(summary->ran + summary->skipped);
  if (summary->stopped) return finish("queued", total, done, "interrupted by shutdown; resumes on restart");
  finish("done", total, done, "");
}

}  // namespace residency::agent

namespace residency::agent {

Result<std::unique_ptr<HttpServer>> Serve(Agent& agent, ServerOptions options) {
  options.check_header = [&agent](const HttpRequest& head) { return agent.CheckHeader(head); };
  options.observe = [&agent](const std::string& route, int status, double seconds) {
    agent.metrics().RecordHttp(route, status, seconds);
  };
  return HttpServer::Start(options, [&agent](const HttpRequest& r) { return agent.Handle(r); });
}

}  // namespace residency::agent
