// Golden figures per bundled trace: a change to the engine or simulator that
// moves any key figure fails here and shows old and new. After an intended
// change, regenerate with RESIDENCY_UPDATE_GOLDEN=1 and review the diff.
#include <gtest/gtest.h>

#include <cstdlib>
#include <fstream>
#include <sstream>

#include "harness/report/replay.h"
#include "harness/report/report.h"
#include "traces/bundled.h"

namespace residency {
namespace {

nlohmann::ordered_json KeyFigures(const sim::SimResult& r) {
  const auto full = harness::ResultJson(r);
  nlohmann::ordered_json j;
  for (const char* key : {"makespan_ns", "load_ns", "disk_read_bytes", "page_cache_read_bytes",
                          "h2d_bytes", "ram_cache_hits", "device_hits", "disk_loads",
                          "peak_host_bytes", "peak_pinned_bytes", "peak_device_bytes",
                          "peak_page_cache_bytes", "oom", "violations", "failed_ops",
                          "event_log_hash"})
    j[key] = full[key];
  nlohmann::ordered_json walls = nlohmann::ordered_json::array();
  for (const auto& p : r.prompts) walls.push_back(p.wall_ns());
  j["prompt_wall_ns"] = walls;
  return j;
}

TEST(Golden, BundledTracesKeepTheirFigures) {
  const bool update = std::getenv("RESIDENCY_UPDATE_GOLDEN") != nullptr;
  for (const auto& e : traces::ListBundled("examples")) {
    for (const char* policy : {"drop", "ram-lru"}) {
      harness::ReplayRequest req;
      req.trace_path = e.path;
      req.profile = "rtx4090-64g";
      req.policy = policy;
      auto r = harness::Replay(req);
      ASSERT_TRUE(r.ok()) << r.status().ToString();
      const auto figures = KeyFigures(*r);
      const std::string path = std::string(RESIDENCY_GOLDEN_DIR) + "/" + e.name + "." + policy + ".json";
      if (update) {
        std::ofstream(path) << figures.dump(2) << "\n";
        continue;
      }
      std::ifstream in(path);
      ASSERT_TRUE(in) << "missing golden file " << path << " (run with RESIDENCY_UPDATE_GOLDEN=1)";
      std::stringstream text;
      text << in.rdbuf();
      const auto expected = nlohmann::ordered_json::parse(text.str());
      EXPECT_EQ(figures, expected) << e.name << " / " << policy << "\nnow:      " << figures.dump()
                                   << "\nexpected: " << expected.dump();
    }
  }
}

}  // namespace
}  // namespace residency
