#include "harness/metrics/metrics.h"

#include <cctype>
#include <mutex>
#include <set>

#include <prometheus/counter.h>
#include <prometheus/gauge.h>
#include <prometheus/histogram.h>
#include <prometheus/registry.h>
#include <prometheus/text_serializer.h>

#include "harness/metrics/exposition.h"
#include "harness/common/build_info.h"

namespace residency::metrics {

using prometheus::Counter;
using prometheus::Family;
using prometheus::Gauge;
using prometheus::Histogram;
using Labels = std::map<std::string, std::string>;

// Label values in use so far; requests and sweeps record on several threads.
// (Not in the anonymous namespace: Metrics::Families holds two.)
struct LabelSet {
  std::mutex mu;
  std::set<std::string> values;
};

namespace {
// A label value from outside (a host a client names, a trace's name): kept
// printable and short, and the set bounded, so a flood of invented names
// cannot grow the registry without bound. Past the bound: "other".
std::string BoundedLabel(LabelSet& set, const std::string& value) {
  constexpr std::size_t kMaxValues = 256;
  std::string label = value.empty() ? "unknown" : value.substr(0, 64);
  for (char& c : label)
    if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_' || c == '.')) c = '_';
  std::lock_guard lock(set.mu);
  if (!set.values.count(label) && set.values.size() >= kMaxValues) return "other";
  set.values.insert(label);
  return label;
}
}  // namespace

struct Metrics::Families {
  Family<Counter>* runs;
  Family<Counter>* load_bytes;
  Family<Counter>* load_seconds;
  Family<Gauge>* peak_bytes;
  Family<Gauge>* budget_bytes;
  Family<Counter>* cache_hits;
  Family<Counter>* cache_misses;
  Family<Counter>* evictions;
  Family<Counter>* evicted_bytes;
  Family<Counter>* ooms;
  Family<Counter>* violations;
  Family<Counter>* events;
  Family<Counter>* http_requests;
  Family<Histogram>* http_seconds;
  Family<Counter>* ingested;
  Family<Counter>* ingested_bytes;
  Family<Counter>* captured;
  LabelSet captured_hosts, traces;  // label values a client or an input names
  LabelSet gate_names;              // profiles and candidates of the gate (bounded anyway)
  Family<Counter>* captured_prompts;
  Family<Histogram>* captured_prompt_seconds;
  Family<Counter>* captured_loads;
  Family<Counter>* captured_loaded_bytes;
  Family<Counter>* captured_unloads;
  Family<Counter>* captured_load_seconds;
  Family<Histogram>* fidelity_error;
  Family<Counter>* verdicts;
  Family<Gauge>* replay_queue;
  Family<Counter>* replays;
  Family<Histogram>* replay_seconds;
  Family<Gauge>* sweeps_queued;
  Family<Counter>* sweeps;
  Family<Gauge>* build_info;
};

namespace {
template <typename Builder>
auto& Make(Builder b, const char* name, const char* help, prometheus::Registry& r) {
  return b.Name(name).Help(help).Register(r);
}

}  // namespace

Metrics::Metrics() : registry_(std::make_shared<prometheus::Registry>()), f_(std::make_unique<Families>()) {
  auto& r = *registry_;
  using prometheus::BuildCounter;
  using prometheus::BuildGauge;
  using prometheus::BuildHistogram;
  f_->runs = &Make(BuildCounter(), "residency_runs_total", "Runs finished, by source, profile, policy and outcome", r);
  f_->load_bytes = &Make(BuildCounter(), "residency_load_bytes_total",
                         "Bytes read to load model weights, by where they came from (disk, page_cache, spill)", r);
  f_->load_seconds = &Make(BuildCounter(), "residency_load_seconds_total",
                           "Time spent loading model weights (simulated time for source=sim)", r);
  f_->peak_bytes = &Make(BuildGauge(), "residency_memory_peak_bytes",
                         "Peak bytes held by the last run of the trace, by tier (host, pinned, device)", r);
  f_->budget_bytes = &Make(BuildGauge(), "residency_memory_budget_bytes",
                           "The engine's budget for the tier in the last run of the trace (host, pinned, device)", r);
  f_->cache_hits = &Make(BuildCounter(), "residency_ram_cache_hits_total", "Loads served by the RAM cache", r);
  f_->cache_misses = &Make(BuildCounter(), "residency_ram_cache_misses_total",
                           "Loads that had to read from disk or spill", r);
  f_->evictions = &Make(BuildCounter(), "residency_evictions_total", "Evictions, by tier and reason", r);
  f_->evicted_bytes = &Make(BuildCounter(), "residency_evicted_bytes_total", "Bytes evicted, by tier and reason", r);
  f_->ooms = &Make(BuildCounter(), "residency_ooms_total", "Runs that ran out of memory", r);
  f_->violations = &Make(BuildCounter(), "residency_invariant_violations_total", "Engine invariant violations", r);
  f_->events = &Make(BuildCounter(), "residency_simulated_events_total", "Discrete events the simulator processed", r);
  f_->http_requests = &Make(BuildCounter(), "residency_http_requests_total", "HTTP requests, by route and code", r);
  f_->http_seconds = &Make(BuildHistogram(), "residency_http_request_duration_seconds",
                           "HTTP request latency, by route", r);
  f_->ingested = &Make(BuildCounter(), "residency_traces_ingested_total", "Traces accepted by POST /v1/traces", r);
  f_->ingested_bytes = &Make(BuildCounter(), "residency_traces_ingested_bytes_total",
                             "Bytes of traces accepted by POST /v1/traces", r);
  f_->captured = &Make(BuildCounter(), "residency_captured_traces_total",
                       "Captured traces (with a machine record) accepted by POST /v1/traces, by host", r);
  f_->captured_prompts = &Make(BuildCounter(), "residency_captured_prompts_total",
                               "Prompts real servers ran, from captured traces, by host and status (ok, failed, "
                               "interrupted)", r);
  f_->captured_prompt_seconds = &Make(BuildHistogram(), "residency_captured_prompt_seconds",
                                      "Real prompts' wall time as captured, by host", r);
  f_->captured_loads = &Make(BuildCounter(), "residency_captured_model_loads_total",
                             "Real model loads from captured traces, by host and where the bytes came from (disk, "
                             "ram_cache, resident)", r);
  f_->captured_loaded_bytes = &Make(BuildCounter(), "residency_captured_loaded_bytes_total",
                                    "Bytes real servers moved to the device to load models, by host and source", r);
  f_->captured_unloads = &Make(BuildCounter(), "residency_captured_unloads_total",
                               "Real unloads from captured traces, by host and reason", r);
  f_->captured_load_seconds = &Make(BuildCounter(), "residency_captured_load_seconds_total",
                                    "Time real servers spent in nodes outside compute (loading), by host", r);
  f_->fidelity_error = &Make(BuildHistogram(), "residency_fidelity_abs_error_ratio",
                             "Per captured prompt: |simulated - captured| / captured on the captured machine, by host",
                             r);
  f_->verdicts = &Make(BuildCounter(), "residency_gate_verdicts_total",
                       "Gate verdicts on captured traces, by profile, candidate and verdict", r);
  f_->replay_queue = &Make(BuildGauge(), "residency_captured_replay_queue",
                           "Captured traces waiting for or in replay, by state (queued, running)", r);
  f_->replays = &Make(BuildCounter(), "residency_captured_replays_total",
                      "Captured traces replayed (fidelity and gate), by status (done, failed)", r);
  f_->replay_seconds = &Make(BuildHistogram(), "residency_captured_replay_seconds",
                             "Wall time to replay one captured trace (fidelity and gate)", r);
  f_->sweeps_queued = &Make(BuildGauge(), "residency_sweeps_queued", "Sweeps waiting or running in the agent", r);
  f_->sweeps = &Make(BuildCounter(), "residency_sweeps_total", "Sweeps the agent finished, by status", r);
  f_->build_info = &Make(BuildGauge(), "residency_build_info", "Always 1; the version label names the build", r);
  f_->build_info->Add({{"version", harness::CodeVersion()}}).Set(1);
}

Metrics::~Metrics() = default;

void Metrics::RecordRun(const RunSample& s) {
  const Labels base{{"source", s.source}, {"profile", s.profile}, {"policy", s.policy}};
  const auto with = [&](const std::string& k, const std::string& v) {
    Labels l = base;
    l[k] = v;
    return l;
  };
  f_->runs->Add(with("outcome", s.outcome)).Increment();
  f_->load_bytes->Add(with("from", "disk")).Increment(static_cast<double>(s.disk_read_bytes));
  f_->load_bytes->Add(with("from", "page_cache")).Increment(static_cast<double>(s.page_cache_read_bytes));
  f_->load_bytes->Add(with("from", "spill")).Increment(static_cast<double>(s.spill_read_bytes));
  f_->load_seconds->Add(base).Increment(s.load_seconds);
  // Gauges hold the last value: without the trace in their labels, a run of
  // one trace would overwrite another's peak.
  const std::string trace = BoundedLabel(f_->traces, s.trace);
  const auto gauge = [&](const std::string& tier) {
    Labels l = with("tier", tier);
    l["trace"] = trace;
    return l;
  };
  f_->peak_bytes->Add(gauge("host")).Set(static_cast<double>(s.peak_host_bytes));
  f_->peak_bytes->Add(gauge("pinned")).Set(static_cast<double>(s.peak_pinned_bytes));
  f_->peak_bytes->Add(gauge("device")).Set(static_cast<double>(s.peak_device_bytes));
  f_->budget_bytes->Add(gauge("host")).Set(static_cast<double>(s.host_budget_bytes));
  f_->budget_bytes->Add(gauge("pinned")).Set(static_cast<double>(s.pin_budget_bytes));
  f_->budget_bytes->Add(gauge("device")).Set(static_cast<double>(s.device_budget_bytes));
  f_->cache_hits->Add(base).Increment(static_cast<double>(s.ram_cache_hits));
  f_->cache_misses->Add(base).Increment(static_cast<double>(s.ram_cache_misses));
  for (const auto& [key, e] : s.evictions) {
    const auto slash = key.find('/');
    Labels l = base;
    l["tier"] = key.substr(0, slash);
    l["reason"] = slash == std::string::npos ? "unknown" : key.substr(slash + 1);
    f_->evictions->Add(l).Increment(static_cast<double>(e.count));
    f_->evicted_bytes->Add(l).Increment(static_cast<double>(e.bytes));
  }
  f_->ooms->Add(base).Increment(static_cast<double>(s.ooms));
  f_->violations->Add(base).Increment(static_cast<double>(s.violations));
  if (s.source == "sim") f_->events->Add(base).Increment(static_cast<double>(s.events));
}

void Metrics::RecordHttp(const std::string& route, int code, double seconds) {
  f_->http_requests->Add({{"route", route}, {"code", std::to_string(code)}}).Increment();
  static const Histogram::BucketBoundaries kBuckets = {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025,
                                                       0.05,   0.1,   0.25,   0.5,   1,    2.5};
  f_->http_seconds->Add({{"route", route}}, kBuckets).Observe(seconds);
}

void Metrics::RecordIngest(Bytes bytes) {
  f_->ingested->Add({}).Increment();
  f_->ingested_bytes->Add({}).Increment(static_cast<double>(bytes));
}

void Metrics::RecordCapturedTrace(const std::string& host) {
  f_->captured->Add({{"host", BoundedLabel(f_->captured_hosts, host)}}).Increment();
}

void Metrics::RecordCapturedTraffic(const CapturedSample& s) {
  const std::string host = BoundedLabel(f_->captured_hosts, s.host);
  static const Histogram::BucketBoundaries kPromptBuckets = {0.5, 1, 2, 5, 10, 20, 30, 60, 120, 300, 600, 1800};
  for (const CapturedSample::Prompt& p : s.prompts) {
    f_->captured_prompts->Add({{"host", host}, {"status", p.status}}).Increment();
    if (p.seconds >= 0 && p.status == "ok")
      f_->captured_prompt_seconds->Add({{"host", host}}, kPromptBuckets).Observe(p.seconds);
  }
  for (const char* from : {"disk", "ram_cache", "resident"}) {
    const auto n = s.loads.find(from);
    f_->captured_loads->Add({{"host", host}, {"from", from}}).Increment(n == s.loads.end() ? 0.0 : static_cast<double>(n->second));
    const auto b = s.loaded_bytes.find(from);
    f_->captured_loaded_bytes->Add({{"host", host}, {"from", from}})
        .Increment(b == s.loaded_bytes.end() ? 0.0 : static_cast<double>(b->second));
  }
  for (const auto& [reason, n] : s.unloads)
    f_->captured_unloads->Add({{"host", host}, {"reason", reason}}).Increment(static_cast<double>(n));
  f_->captured_load_seconds->Add({{"host", host}}).Increment(s.load_seconds);
}

void Metrics::RecordFidelityError(const std::string& host, double abs_error) {
  static const Histogram::BucketBoundaries kErrorBuckets = {0.02, 0.05, 0.1, 0.15, 0.25, 0.5, 1, 2, 5};
  f_->fidelity_error->Add({{"host", BoundedLabel(f_->captured_hosts, host)}}, kErrorBuckets).Observe(abs_error);
}

void Metrics::RecordVerdict(const std::string& profile, const std::string& candidate, const std::string& verdict) {
  f_->verdicts
      ->Add({{"profile", BoundedLabel(f_->gate_names, profile)},
             {"candidate", BoundedLabel(f_->gate_names, candidate)},
             {"verdict", verdict}})
      .Increment();
}

void Metrics::InitVerdicts(const std::vector<std::string>& profiles, const std::vector<std::string>& candidates,
                           const std::vector<std::string>& verdicts) {
  for (const std::string& p : profiles)
    for (const std::string& c : candidates)
      for (const std::string& v : verdicts)
        f_->verdicts->Add({{"profile", BoundedLabel(f_->gate_names, p)},
                           {"candidate", BoundedLabel(f_->gate_names, c)},
                           {"verdict", v}});
}

void Metrics::SetReplayQueue(std::int64_t queued, std::int64_t running) {
  f_->replay_queue->Add({{"state", "queued"}}).Set(static_cast<double>(queued));
  f_->replay_queue->Add({{"state", "running"}}).Set(static_cast<double>(running));
}

void Metrics::RecordReplay(const std::string& status, double seconds) {
  static const Histogram::BucketBoundaries kReplayBuckets = {0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120};
  f_->replays->Add({{"status", status}}).Increment();
  f_->replay_seconds->Add({}, kReplayBuckets).Observe(seconds);
}

void Metrics::SetSweepsQueued(std::int64_t n) { f_->sweeps_queued->Add({}).Set(static_cast<double>(n)); }
void Metrics::RecordSweep(const std::string& status) { f_->sweeps->Add({{"status", status}}).Increment(); }

std::string Metrics::Serialize() const { return ExpositionText(registry_->Collect()); }
std::string Metrics::SerializeWithPrometheusCpp() const {
  return prometheus::TextSerializer().Serialize(registry_->Collect());
}

}  // namespace residency::metrics
