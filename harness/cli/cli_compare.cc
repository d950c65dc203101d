// `residency compare` (the regression gate) and `residency report --html`.
#include <filesystem>
#include <iostream>
#include <memory>

#include "harness/cli/cli.h"
#include "harness/report/compare.h"
#include "harness/report/html_report.h"

namespace residency::cli {
namespace {

struct CompareArgs {
  std::string db = "results.db";
  std::string baseline, candidate;
  std::string metric = "makespan";
  double threshold = 5.0;
};

Result<std::unique_ptr<store::ResultsStore>> OpenExisting(const std::string& path) {
  if (!std::filesystem::exists(path)) return NotFound(path + ": no such results database");
  return store::ResultsStore::Open(path);
}

int RunCompare(const CompareArgs& a) {
  auto store = OpenExisting(a.db);
  if (!store.ok()) return Fail(store.status());
  auto runs = (*store)->ListRuns({});
  if (!runs.ok()) return Fail(runs.status());
  auto c = harness::Compare(*runs, a.baseline, a.candidate, a.metric, a.threshold);
  if (!c.ok()) return Fail(c.status());
  std::cout << harness::FormatComparisonTable(*c);
  for (const harness::CompareRow& r : c->rows) {
    if (!r.fails || !r.candidate) continue;
    for (const std::string& v : r.candidate->violations)
      std::cout << "  " << r.trace << " on " << r.profile << ": " << v << "\n";
  }
  return c->failures > 0 ? 1 : 0;
}

int RunReport(const std::string& db, const std::string& html) {
  auto store = OpenExisting(db);
  if (!store.ok()) return Fail(store.status());
  auto runs = (*store)->ListRuns({});
  if (!runs.ok()) return Fail(runs.status());
  if (!WriteTextFile(html, harness::HtmlReport(*runs, "Residency results: " + db))) return 2;
  std::cerr << "report of " << runs->size() << " runs written to " << html << "\n";
  return 0;
}

}  // namespace

Subcommand AddCompare(CLI::App& app) {
  auto a = std::make_shared<CompareArgs>();
  CLI::App* c = app.add_subcommand("compare", "Regression gate: a candidate policy against a baseline");
  c->add_option("--db", a->db, "Results database")->capture_default_str();
  c->add_option("--baseline", a->baseline, "Baseline policy name")->required();
  c->add_option("--candidate", a->candidate, "Candidate policy name")->required();
  std::string metrics;
  for (const std::string& m : harness::MetricNames()) metrics += (metrics.empty() ? "" : "|") + m;
  c->add_option("--metric", a->metric, metrics)->check(CLI::IsMember(harness::MetricNames()))->capture_default_str();
  c->add_option("--threshold", a->threshold, "Allowed worsening in percent")->capture_default_str();
  c->footer("Exit 1 on a regression beyond the threshold, a new OOM, an invariant violation or a failed run.");
  return {c, [a] { return RunCompare(*a); }};
}

Subcommand AddReport(CLI::App& app) {
  auto db = std::make_shared<std::string>("results.db");
  auto html = std::make_shared<std::string>();
  CLI::App* c = app.add_subcommand("report", "Write one self-contained HTML page of a results database");
  c->add_option("--db", *db, "Results database")->capture_default_str();
  c->add_option("--html", *html, "Output HTML file")->required();
  return {c, [db, html] { return RunReport(*db, *html); }};
}

}  // namespace residency::cli
