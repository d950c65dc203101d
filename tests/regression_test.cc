// The regression corpus: every case in traces/regressions (NAME.jsonl with
// NAME.profile.json and NAME.policy.json), each a counterexample the property
// tests shrank or a named failure mode, replayed with every check on, in the
// simulator and on the engine alone under several completion orders.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <set>

#include "harness/proof/case_check.h"

namespace residency::proof {
namespace {

std::vector<std::string> CaseNames() {
  std::set<std::string> names;
  for (const auto& e : std::filesystem::directory_iterator(RESIDENCY_REGRESSION_DIR)) {
    const std::string f = e.path().filename().string();
    if (f.size() > 6 && f.ends_with(".jsonl")) names.insert(f.substr(0, f.size() - 6));
  }
  return {names.begin(), names.end()};
}

class Regression : public ::testing::TestWithParam<std::string> {};

// Seeds 1-16, plus those in NAME.seeds (one a line): the completion orders
// and host-pressure moments under which the case was found.
std::vector<std::uint64_t> SeedsFor(const std::string& name) {
  std::vector<std::uint64_t> seeds;
  for (std::uint64_t s = 1; s <= 16; ++s) seeds.push_back(s);
  std::ifstream in(std::filesystem::path(RESIDENCY_REGRESSION_DIR) / (name + ".seeds"));
  for (std::uint64_t s; in >> s;) seeds.push_back(s);
  return seeds;
}

TEST_P(Regression, ReplaysCleanUnderEveryCheck) {
  auto c = ReadCase(RESIDENCY_REGRESSION_DIR, GetParam());
  ASSERT_TRUE(c.ok()) << c.status().message();
  for (const std::uint64_t seed : SeedsFor(GetParam())) {
    const CaseResult r = CheckCase(c.value(), seed);
    for (const std::string& p : r.problems) ADD_FAILURE() << GetParam() << " seed " << seed << ": " << p;
    if (!r.problems.empty()) return;
  }
}

TEST(RegressionCorpus, HoldsTheNamedFailureModes) {
  const auto names = CaseNames();
  for (const char* needed : {"pin-budget-underflow-racing", "finalizer-cache-strong-ref",
                             "unified-read-into-double-residency", "host-pressure-frees-staged-unpin"})
    EXPECT_NE(std::find(names.begin(), names.end(), needed), names.end()) << needed;
}

INSTANTIATE_TEST_SUITE_P(Corpus, Regression, ::testing::ValuesIn(CaseNames()), [](const auto& info) {
  std::string n = info.param;
  std::replace(n.begin(), n.end(), '-', '_');
  return n;
});

}  // namespace
}  // namespace residency::proof
