// Prometheus metrics (prometheus-cpp), named per the Prometheus conventions:
// base units, _total for counters, _bytes and _seconds. The agent records
// every simulated run here and `residency run --metrics-file` records a real
// run with the same names, so one dashboard reads both (source="sim"|"real").
#pragma once

#include <map>
#include <memory>
#include <string>

#include "harness/metrics/captured_sample.h"
#include "runtime/engine/types.h"

namespace prometheus {
class Registry;
}

namespace residency::metrics {

using engine::Bytes;

// One run's figures, from the simulator or from a real run.
struct RunSample {
  std::string source = "sim";  // sim | real
  std::string profile, policy, outcome;
  std::string trace;  // labels the peak and budget gauges, so traces do not overwrite each other
  double load_seconds = 0;
  Bytes disk_read_bytes = 0, page_cache_read_bytes = 0, spill_read_bytes = 0;
  std::int64_t ram_cache_hits = 0, ram_cache_misses = 0;
  Bytes peak_host_bytes = 0, peak_pinned_bytes = 0, peak_device_bytes = 0;
  Bytes host_budget_bytes = 0, pin_budget_bytes = 0, device_budget_bytes = 0;
  struct Eviction {
    std::int64_t count = 0;
    Bytes bytes = 0;
  };
  std::map<std::string, Eviction> evictions;  // "tier/reason"
  std::int64_t ooms = 0, violations = 0, events = 0;
};

class Metrics {
 public:
  Metrics();
  ~Metrics();
  void RecordRun(const RunSample& s);
  void RecordHttp(const std::string& route, int code, double seconds);
  void RecordIngest(Bytes bytes);
  // A newly stored trace that a capture hook wrote, by the host it names.
  void RecordCapturedTrace(const std::string& host);
  // What a real server did, from a newly stored captured trace (by host).
  void RecordCapturedTraffic(const CapturedSample& s);
  // One prompt's |simulated - captured| / captured, from the replay of a
  // captured trace on its own machine.
  void RecordFidelityError(const std::string& host, double abs_error);
  // One gate verdict: a candidate against the baseline on a profile.
  void RecordVerdict(const std::string& profile, const std::string& candidate, const std::string& verdict);
  // The verdict series of a gate, at 0 before any verdict: an alert on their
  // increase sees the first one even when it comes before the first scrape.
  void InitVerdicts(const std::vector<std::string>& profiles, const std::vector<std::string>& candidates,
                    const std::vector<std::string>& verdicts);
  void SetReplayQueue(std::int64_t queued, std::int64_t running);
  void RecordReplay(const std::string& status, double seconds);
  void SetSweepsQueued(std::int64_t n);
  void RecordSweep(const std::string& status);
  // The text exposition format (version 0.0.4).
  std::string Serialize() const;
  // The same through prometheus-cpp's TextSerializer (tests compare them).
  std::string SerializeWithPrometheusCpp() const;

 private:
  struct Families;
  std::shared_ptr<prometheus::Registry> registry_;
  std::unique_ptr<Families> f_;
};

}  // namespace residency::metrics
