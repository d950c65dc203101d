// The results store, sweeps, merge, the compare gate and the HTML report.
#include <gtest/gtest.h>
#include <sqlite3.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <set>

#include "harness/report/compare.h"
#include "harness/report/html_report.h"
#include "harness/store/results_store.h"
#include "harness/store/schema.h"
#include "harness/sweep/sweep_runner.h"
#include "traces/bundled.h"

namespace residency {
namespace {

namespace fs = std::filesystem;

class ResultsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("residency-results-" + std::to_string(::getpid()) + "-" +
                                        ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }
  std::string Path(const std::string& name) const { return (dir_ / name).string(); }

  static sweep::SweepSpec Spec() {
    const std::string ex = traces::DataDir() + "/examples/";
    auto spec = sweep::LoadSweepSpec({ex + "sdxl-txt2img.jsonl", ex + "chroma-6lora.jsonl"},
                                     {"rtx4090-64g", "rtx5060-16g"}, {"drop", "ram-lru"}, {1, 2});
    EXPECT_TRUE(spec.ok()) << spec.status().ToString();
    return std::move(spec).value();
  }
  static sweep::SweepOptions Options(int jobs = 2) {
    sweep::SweepOptions o;
    o.jobs = jobs;
    o.code_version = "test";
    o.host = "test-host";
    return o;
  }
  // Every run's inputs and figures, independent of row ids and timing.
  static std::multiset<std::string> Fingerprints(store::ResultsStore& s) {
    auto runs = s.ListRuns({});
    EXPECT_TRUE(runs.ok());
    std::multiset<std::string> out;
    for (const store::RunRow& r : *runs) {
      std::string f = r.trace_hash + "|" + r.profile + "|" + r.policy + "|" + std::to_string(r.seed) + "|" + r.outcome;
      for (const auto& [k, v] : r.figures) f += "|" + k + "=" + std::to_string(v);
      for (const std::string& v : r.violations) f += "|" + v;
      out.insert(f);
    }
    return out;
  }

  fs::path dir_;
};

TEST_F(ResultsTest, FreshDatabaseHasTheLatestSchemaAndReopens) {
  { ASSERT_TRUE(store::ResultsStore::Open(Path("a.db")).ok()); }
  auto db = store::Database::Open(Path("a.db"));
  ASSERT_TRUE(db.ok());
  auto st = db->Prepare("PRAGMA user_version");
  ASSERT_TRUE(st.ok());
  ASSERT_TRUE(*st->Step());
  EXPECT_EQ(st->Int(0), store::SchemaVersion());
  EXPECT_TRUE(store::ResultsStore::Open(Path("a.db")).ok());
}

TEST_F(ResultsTest, RefusesADatabaseFromANewerBuild) {
  {
    auto db = store::Database::Open(Path("new.db"));
    ASSERT_TRUE(db.ok());
    ASSERT_TRUE(db->Exec("PRAGMA user_version = 99").ok());
  }
  auto s = store::ResultsStore::Open(Path("new.db"));
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.status().message().find("schema v99 is newer"), std::string::npos) << s.status().message();
}

TEST_F(ResultsTest, MigratesAVersionOneDatabaseKeepingItsRuns) {
  const std::string path = Path("v1.db");
  {
    auto s = store::ResultsStore::Open(path);
    ASSERT_TRUE(s.ok());
    ASSERT_TRUE(sweep::RunSweep(**s, Spec(), Options()).ok());
  }
  {  // Turn it back into a v1 file: drop what v2-v5 added.
    auto db = store::Database::Open(path);
    ASSERT_TRUE(db->Exec("DROP TABLE verdicts; DROP TABLE fidelity; DROP TABLE captured_queue; DROP TABLE sweeps; ALTER TABLE prompts DROP COLUMN disk_read_bytes; "
                         "ALTER TABLE runs DROP COLUMN peak_ram_bytes; PRAGMA user_version = 1").ok());
  }
  auto s = store::ResultsStore::Open(path);
  ASSERT_TRUE(s.ok()) << s.status().ToString();
  EXPECT_EQ(*(*s)->CountRuns(), 16);
  EXPECT_TRUE((*s)->AddSweep("{}").ok());
  // Runs stored before v4 have no peak RAM; new ones do.
  auto runs = (*s)->ListRuns({});
  ASSERT_TRUE(runs.ok()) << runs.status().ToString();
  for (const store::RunRow& r : *runs) EXPECT_FALSE(r.figures.count("peak_ram_bytes")) << r.trace;
}

TEST_F(ResultsTest, NotADatabaseIsAClearError) {
  { std::ofstream(Path("junk.db")) << "this is not sqlite, just text that is long enough to have a header.....\n"; }
  auto s = store::ResultsStore::Open(Path("junk.db"));
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.status().message().find("junk.db"), std::string::npos) << s.status().message();
}

TEST_F(ResultsTest, InputsAreStoredOncePerContent) {
  auto s = store::ResultsStore::Open(Path("a.db"));
  ASSERT_TRUE(s.ok());
  auto a = (*s)->PutTrace("t", "synthesized", "{\"x\":1}\n");
  auto b = (*s)->PutTrace("t-again", "synthesized", "{\"x\":1}\n");
  auto c = (*s)->PutTrace("t", "synthesized", "{\"x\":2}\n");
  ASSERT_TRUE(a.ok() && b.ok() && c.ok());
  EXPECT_EQ(*a, *b);
  EXPECT_NE(*a, *c);
  auto got = (*s)->GetTrace(store::ContentHash("{\"x\":2}\n"));
  ASSERT_TRUE(got.ok() && got->has_value());
  EXPECT_EQ((*got)->body, "{\"x\":2}\n");
}

TEST_F(ResultsTest, SweepStoresEveryRunAndASecondSweepSkipsThemAll) {
  auto s = store::ResultsStore::Open(Path("a.db"));
  ASSERT_TRUE(s.ok());
  auto first = sweep::RunSweep(**s, Spec(), Options());
  ASSERT_TRUE(first.ok()) << first.status().ToString();
  EXPECT_EQ(first->planned, 16u);
  EXPECT_EQ(first->ran, 16u);
  // Chroma on a 16 GB laptop cannot hold its working set: typed refusals.
  EXPECT_GT(first->infeasible, 0u);
  auto second = sweep::RunSweep(**s, Spec(), Options());
  ASSERT_TRUE(second.ok());
  EXPECT_EQ(second->skipped, 16u);
  EXPECT_EQ(second->ran, 0u);
  EXPECT_EQ(*(*s)->CountRuns(), 16);
  // Every run keeps its prompts.
  auto db = store::Database::Open(Path("a.db"));
  auto st = db->Prepare("SELECT count(*) FROM runs r WHERE r.outcome = 'ok' AND NOT EXISTS "
                        "(SELECT 1 FROM prompts p WHERE p.run_id = r.id)");
  ASSERT_TRUE(*st->Step());
  EXPECT_EQ(st->Int(0), 0);
}

TEST_F(ResultsTest, AnInterruptedSweepResumesToTheSameResults) {
  auto full = store::ResultsStore::Open(Path("full.db"));
  ASSERT_TRUE(sweep::RunSweep(**full, Spec(), Options()).ok());

  auto s = store::ResultsStore::Open(Path("resumed.db"));
  std::atomic<bool> stop{false};
  sweep::SweepOptions o = Options(1);
  o.stop = &stop;
  o.on_run = [&](const sweep::RunDone&, std::size_t done, std::size_t) {
    if (done == 5) stop = true;
  };
  auto partial = sweep::RunSweep(**s, Spec(), o);
  ASSERT_TRUE(partial.ok());
  EXPECT_TRUE(partial->stopped);
  EXPECT_EQ(partial->ran, 5u);
  auto rest = sweep::RunSweep(**s, Spec(), Options());
  ASSERT_TRUE(rest.ok());
  EXPECT_EQ(rest->skipped, 5u);
  EXPECT_EQ(rest->ran, 11u);
  EXPECT_EQ(Fingerprints(**s), Fingerprints(**full));
}

TEST_F(ResultsTest, ShardsPartitionTheRunsAndMergeToTheFullSweep) {
  const sweep::SweepSpec spec = Spec();
  std::set<std::tuple<std::size_t, std::size_t, std::size_t, std::uint64_t>> seen;
  std::size_t total = 0;
  for (int i = 0; i < 3; ++i) {
    for (const sweep::PlannedRun& r : sweep::PlanRuns(spec, {i, 3})) {
      EXPECT_TRUE(seen.insert({r.trace, r.profile, r.policy, r.seed}).second) << "a run in two shards";
      ++total;
    }
  }
  EXPECT_EQ(total, sweep::PlanRuns(spec, {}).size());

  auto full = store::ResultsStore::Open(Path("full.db"));
  ASSERT_TRUE(sweep::RunSweep(**full, spec, Options()).ok());
  auto merged = store::ResultsStore::Open(Path("merged.db"));
  for (int i = 0; i < 3; ++i) {
    const std::string shard_db = Path("shard" + std::to_string(i) + ".db");
    auto shard = store::ResultsStore::Open(shard_db);
    sweep::SweepOptions o = Options();
    o.shard = {i, 3};
    ASSERT_TRUE(sweep::RunSweep(**shard, spec, o).ok());
  }
  for (int round = 0; round < 2; ++round) {  // merging twice changes nothing
    for (int i = 0; i < 3; ++i)
      ASSERT_TRUE((*merged)->MergeFrom(Path("shard" + std::to_string(i) + ".db")).ok());
    EXPECT_EQ(Fingerprints(**merged), Fingerprints(**full));
  }
  EXPECT_FALSE((*merged)->MergeFrom(Path("missing.db")).ok());
}

TEST_F(ResultsTest, ShardOrderDoesNotDependOnArgumentOrder) {
  const std::string ex = traces::DataDir() + "/examples/";
  auto a = sweep::LoadSweepSpec({ex + "sdxl-txt2img.jsonl", ex + "wan22-14b-t2v.jsonl"}, {"rtx4090-64g", "rtx5060-16g"},
                                {"drop", "ram-lru"}, {1});
  auto b = sweep::LoadSweepSpec({ex + "wan22-14b-t2v.jsonl", ex + "sdxl-txt2img.jsonl"}, {"rtx5060-16g", "rtx4090-64g"},
                                {"ram-lru", "drop"}, {1});
  ASSERT_TRUE(a.ok() && b.ok());
  const auto names = [](const sweep::SweepSpec& s, const std::vector<sweep::PlannedRun>& runs) {
    std::vector<std::string> out;
    for (const auto& r : runs)
      out.push_back(s.traces[r.trace].name + s.profiles[r.profile].name + s.policies[r.policy].name);
    return out;
  };
  EXPECT_EQ(names(*a, sweep::PlanRuns(*a, {1, 3})), names(*b, sweep::PlanRuns(*b, {1, 3})));
}

TEST_F(ResultsTest, BadSweepInputsAreNamed) {
  EXPECT_FALSE(sweep::ParseShard("3/3").ok());
  EXPECT_FALSE(sweep::ParseShard("-1/3").ok());
  EXPECT_FALSE(sweep::ParseShard("1").ok());
  EXPECT_FALSE(sweep::ParseShard("1/x").ok());
  EXPECT_TRUE(sweep::ParseShard("2/3").ok());
  auto missing = sweep::LoadSweepSpec({Path("nope.jsonl")}, {"rtx4090-64g"}, {"drop"}, {1});
  ASSERT_FALSE(missing.ok());
  EXPECT_NE(missing.status().message().find("nope.jsonl"), std::string::npos);
  {
    std::ofstream(Path("bad.jsonl")) << "{\"format\": \"residency-trace\", \"version\": 1, \"name\": \"b\", "
                                        "\"source\": \"synthesized\"}\n{not json\n";
  }
  auto bad = sweep::LoadSweepSpec({Path("bad.jsonl")}, {"rtx4090-64g"}, {"drop"}, {1});
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("bad.jsonl:2"), std::string::npos) << bad.status().message();
  auto profile = sweep::LoadSweepSpec({traces::DataDir() + "/examples"}, {"no-such-box"}, {"drop"}, {1});
  ASSERT_FALSE(profile.ok());
  EXPECT_NE(profile.status().message().find("no-such-box"), std::string::npos);
}

store::RunRow Row(const std::string& trace, const std::string& policy, const std::string& outcome,
                  std::int64_t makespan) {
  store::RunRow r;
  r.trace = trace;
  r.profile = "box";
  r.policy = policy;
  r.seed = 1;
  r.outcome = outcome;
  r.figures["makespan_ns"] = makespan;
  if (outcome == "violation") r.violations.push_back("invariant: pinned over budget");
  return r;
}

TEST(Compare, VerdictsAndExitCondition) {
  const std::vector<store::RunRow> runs = {
      Row("same", "base", "ok", 1000),      Row("same", "cand", "ok", 1040),       // +4 %: within 5 %
      Row("slower", "base", "ok", 1000),    Row("slower", "cand", "ok", 1100),     // +10 %
      Row("faster", "base", "ok", 1000),    Row("faster", "cand", "ok", 500),      // -50 %
      Row("oom", "base", "ok", 1000),       Row("oom", "cand", "oom", 10),         // new OOM
      Row("both", "base", "oom", 1000),     Row("both", "cand", "oom", 10),        // OOM either way
      Row("viol", "base", "ok", 1000),      Row("viol", "cand", "violation", 900), // invariant broken
      Row("inf", "base", "ok", 1000),       Row("inf", "cand", "infeasible", 9),   // newly refused
      Row("alone", "base", "ok", 1000),
  };
  auto c = harness::Compare(runs, "base", "cand", "makespan", 5.0);
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  std::map<std::string, std::string> verdict;
  for (const harness::CompareRow& r : c->rows) verdict[r.trace] = r.verdict;
  EXPECT_EQ(verdict["same"], "ok");
  EXPECT_EQ(verdict["slower"], "REGRESSION");
  EXPECT_EQ(verdict["faster"], "better");
  EXPECT_EQ(verdict["oom"], "NEW-OOM");
  EXPECT_EQ(verdict["both"], "oom-both");
  EXPECT_EQ(verdict["viol"], "VIOLATION");
  EXPECT_EQ(verdict["inf"], "NEW-INFEASIBLE");
  EXPECT_EQ(verdict["alone"], "missing-candidate");
  EXPECT_EQ(c->failures, 4);
  EXPECT_EQ(c->missing, 1);
  // A looser threshold forgives the 10 % but never an OOM or a violation.
  auto loose = harness::Compare(runs, "base", "cand", "makespan", 20.0);
  EXPECT_EQ(loose->failures, 3);
  EXPECT_NE(harness::FormatComparisonTable(*c).find("REGRESSION"), std::string::npos);
  EXPECT_FALSE(harness::Compare(runs, "base", "cand", "speed", 5.0).ok());
  EXPECT_FALSE(harness::Compare(runs, "nope", "cand", "makespan", 5.0).ok());
}

TEST(Compare, PeakHostSaysWhatItLeavesOutAndPeakRamComparesAllRam) {
  std::vector<store::RunRow> runs = {Row("t", "copies", "ok", 1000), Row("t", "maps", "ok", 1000)};
  runs[0].figures["peak_host_bytes"] = 7'000'000'000;
  runs[0].figures["peak_ram_bytes"] = 14'000'000'000;
  runs[1].figures["peak_host_bytes"] = 0;  // mmap'd weights: page cache
  runs[1].figures["peak_ram_bytes"] = 7'000'000'000;
  auto host = harness::Compare(runs, "copies", "maps", "peak-host", 5.0);
  ASSERT_TRUE(host.ok());
  EXPECT_NE(harness::FormatComparisonTable(*host).find("mmap are page cache"), std::string::npos);
  auto ram = harness::Compare(runs, "copies", "maps", "peak-ram", 5.0);
  ASSERT_TRUE(ram.ok()) << ram.status().ToString();
  ASSERT_EQ(ram->rows.size(), 1u);
  EXPECT_DOUBLE_EQ(ram->rows[0].delta_pct, -50.0);
  EXPECT_EQ(harness::FormatComparisonTable(*ram).find("mmap are page cache"), std::string::npos);
}

TEST(Compare, NewestRunPerInputWins) {
  std::vector<store::RunRow> runs = {Row("t", "base", "ok", 1000), Row("t", "cand", "ok", 2000),
                                     Row("t", "cand", "ok", 1000)};
  for (std::size_t i = 0; i < runs.size(); ++i) runs[i].id = static_cast<std::int64_t>(i + 1);
  auto c = harness::Compare(runs, "base", "cand", "makespan", 1.0);
  ASSERT_TRUE(c.ok());
  EXPECT_EQ(c->failures, 0);
}

TEST(HtmlReport, EscapesNamesAndShowsEveryRun) {
  std::vector<store::RunRow> runs = {Row("<script>alert(1)</script>", "base", "ok", 1000),
                                     Row("t2", "cand", "oom", 5)};
  const std::string html = harness::HtmlReport(runs, "r & d");
  EXPECT_EQ(html.find("<script>"), std::string::npos);
  EXPECT_NE(html.find("&lt;script&gt;"), std::string::npos);
  EXPECT_NE(html.find("r &amp; d"), std::string::npos);
  EXPECT_NE(html.find("<svg"), std::string::npos);
  EXPECT_NE(html.find("class='oom'"), std::string::npos);
  EXPECT_EQ(html.rfind("</html>\n"), html.size() - 8);
}

// Every number after `key='` in `text`, in order.
std::vector<int> Attributes(const std::string& text, const std::string& key) {
  std::vector<int> out;
  for (std::size_t at = text.find(key + "='"); at != std::string::npos; at = text.find(key + "='", at + 1))
    out.push_back(std::stoi(text.substr(at + key.size() + 2)));
  return out;
}

// A profile where every run failed has no makespan to chart: no axis of
// "0.0 us" ticks, a sentence instead, and "-" for the durations.
TEST(HtmlReport, AllFailedRunsGetASentenceNotAnAxisOfZeros) {
  std::vector<store::RunRow> runs = {Row("t1", "drop", "oom", 0), Row("t1", "ram-lru", "infeasible", 0)};
  const std::string html = harness::HtmlReport(runs, "failed");
  EXPECT_EQ(html.find("0.0 us"), std::string::npos) << html;
  EXPECT_NE(html.find("No run on this profile finished"), std::string::npos);
}

// Failed-op lists fold into one line per run; the first 20 open, the rest are counted.
TEST(HtmlReport, FailedOpListsAreFoldedAndBounded) {
  store::RunRow r = Row("t", "drop", "infeasible", 0);
  for (int i = 0; i < 300; ++i) r.violations.push_back("failed op " + std::to_string(i) + ": no room");
  const std::string html = harness::HtmlReport({r}, "folded");
  EXPECT_NE(html.find("<details><summary>300 problems in this run</summary>"), std::string::npos) << html;
  EXPECT_NE(html.find("failed op 19:"), std::string::npos);
  EXPECT_EQ(html.find("failed op 20:"), std::string::npos);
  EXPECT_NE(html.find("and 280 more"), std::string::npos);
}

// A chart is at least 640 px wide, its ticks are round, and the legend of
// many long policy names wraps inside it instead of running off the edge.
TEST(HtmlReport, ChartsAreReadableAndLegendsFitInside) {
  std::vector<store::RunRow> runs;
  for (int p = 0; p < 8; ++p)
    runs.push_back(Row("one-trace", "a-policy-with-a-long-name-" + std::to_string(p), "ok", 1'234'000'000 + p));
  const std::string html = harness::HtmlReport(runs, "wide");
  const auto svg_at = html.find("<svg");
  ASSERT_NE(svg_at, std::string::npos);
  const std::string svg = html.substr(svg_at, html.find("</svg>") - svg_at);
  const int width = Attributes(svg, "width").front();
  EXPECT_GE(width, 640);
  // Legend items: text at x, as long as its name (7 px a character).
  const std::string name = "a-policy-with-a-long-name-0";
  for (std::size_t at = svg.find("<text x='"); at != std::string::npos; at = svg.find("<text x='", at + 1)) {
    const int x = std::stoi(svg.substr(at + 9));
    const auto close = svg.find('>', at);
    const std::string text = svg.substr(close + 1, svg.find('<', close) - close - 1);
    if (text.rfind("a-policy", 0) == 0) {
      EXPECT_LE(x + static_cast<int>(name.size()) * 7, width) << text;
    }
  }
  EXPECT_NE(svg.find(">1.50 s<"), std::string::npos) << "round ticks (0.5 s steps up to 1.5 s)\n" << svg;
  EXPECT_NE(svg.find(">1 s<"), std::string::npos) << "no trailing zeros on a round tick";
}

}  // namespace
}  // namespace residency
