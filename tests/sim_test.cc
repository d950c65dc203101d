// Simulator: event order, max-min sharing, page cache, determinism and the
// scenarios the bundled data must show.
#include <gtest/gtest.h>

#include "harness/replay.h"
#include "sim/event_queue.h"
#include "sim/fluid_model.h"
#include "sim/page_cache.h"
#include "traces/bundled.h"

namespace residency::sim {
namespace {

TEST(EventQueue, OrdersByTimeThenPushOrder) {
  EventQueue q;
  q.Push(30, EventKind::kTimer, 1);
  q.Push(10, EventKind::kTimer, 2);
  q.Push(10, EventKind::kTimer, 3);
  q.Push(20, EventKind::kTimer, 4);
  std::vector<std::uint64_t> order;
  while (!q.empty()) order.push_back(q.Pop().payload);
  EXPECT_EQ(order, (std::vector<std::uint64_t>{2, 3, 4, 1}));
}

ActivitySpec DiskActivity(double bytes, double cap_bytes_per_second) {
  ActivitySpec a;
  a.bytes = bytes;
  a.cap_bytes_per_second = cap_bytes_per_second;
  a.weight[kDisk] = 1;
  return a;
}

TEST(FluidModel, MaxMinSharesAndCaps) {
  FluidModel f;
  f.SetCapacity(kDisk, [](int) { return 10e9; });
  const ActivitySpec a = DiskActivity(10e9, 8e9);
  const auto x = f.Start(a, 0);
  EXPECT_DOUBLE_EQ(f.rate(x), 8e9);
  const auto y = f.Start(a, 0);
  EXPECT_DOUBLE_EQ(f.rate(x), 5e9);
  EXPECT_DOUBLE_EQ(f.rate(y), 5e9);
  const auto z = f.Start(DiskActivity(10e9, 2e9), 0);
  EXPECT_DOUBLE_EQ(f.rate(z), 2e9);
  EXPECT_DOUBLE_EQ(f.rate(x), 4e9);  // the capped one frees bandwidth for the others
  EXPECT_GT(f.NextCompletion(), 0);
}

TEST(FluidModel, CompletesAtTheComputedTime) {
  FluidModel f;
  f.SetCapacity(kDisk, [](int) { return 1e9; });
  f.Start(DiskActivity(1e9, 1e12), 0);
  EXPECT_EQ(f.NextCompletion(), 1'000'000'000);
  EXPECT_TRUE(f.AdvanceTo(999'000'000).empty());
  EXPECT_EQ(f.AdvanceTo(1'000'000'000).size(), 1u);
  EXPECT_EQ(f.active(), 0u);
}

TEST(PageCache, ReclaimsLeastRecentlyUsedFileFirst) {
  PageCache c;
  const Bytes mb = engine::kMiB;
  c.Insert(1, 100 * mb, 0, 100 * mb, 1000 * mb);
  c.Insert(2, 100 * mb, 0, 100 * mb, 1000 * mb);
  EXPECT_EQ(c.CachedBytes(1, 0, 100 * mb), 100 * mb);
  c.Touch(1);
  c.ShrinkTo(120 * mb);
  EXPECT_EQ(c.CachedBytes(1, 0, 100 * mb), 100 * mb);
  EXPECT_EQ(c.CachedBytes(2, 0, 100 * mb), 20 * mb);
  c.Drop(1);
  EXPECT_EQ(c.total(), 20 * mb);
}

harness::ReplayRequest Request(const std::string& trace, const std::string& profile,
                               const std::string& policy, std::uint64_t seed = 1) {
  harness::ReplayRequest r;
  r.trace_path = traces::DataDir() + "/examples/" + trace + ".jsonl";
  r.profile = profile;
  r.policy = policy;
  r.seed = seed;
  return r;
}

TEST(Simulation, SameSeedSameEventLog) {
  auto req = Request("wan22-14b-t2v", "rtx4090-64g", "ram-lru");
  req.keep_event_log = true;
  auto a = harness::Replay(req);
  auto b = harness::Replay(req);
  ASSERT_TRUE(a.ok() && b.ok());
  EXPECT_EQ(a->event_log_hash, b->event_log_hash);
  ASSERT_EQ(a->event_log.size(), b->event_log.size());
  for (std::size_t i = 0; i < a->event_log.size(); ++i)
    ASSERT_EQ(a->event_log[i], b->event_log[i]) << "first divergent event at line " << i;
  auto other = harness::Replay(Request("wan22-14b-t2v", "rtx4090-64g", "ram-lru", 2));
  ASSERT_TRUE(other.ok());
  EXPECT_NE(a->event_log_hash, other->event_log_hash) << "the seed must matter";
}

TEST(Simulation, RamCacheAvoidsDiskReadsOnAWorkstation) {
  auto drop = harness::Replay(Request("wan22-14b-t2v", "rtx5090-96g", "drop"));
  auto lru = harness::Replay(Request("wan22-14b-t2v", "rtx5090-96g", "ram-lru"));
  ASSERT_TRUE(drop.ok() && lru.ok());
  EXPECT_EQ(drop->ram_cache_hits, 0);
  EXPECT_GT(lru->ram_cache_hits, 0);
  EXPECT_LT(lru->load_ns, drop->load_ns);
  EXPECT_FALSE(drop->oom.happened);
  EXPECT_FALSE(lru->oom.happened);
  EXPECT_TRUE(drop->violations.empty());
  EXPECT_TRUE(lru->violations.empty());
}

}  // namespace
}  // namespace residency::sim
