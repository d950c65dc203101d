// engine::RunTally alone: what one Outbox's notices and finished ops count.
#include "runtime/engine/run_tally.h"

#include <gtest/gtest.h>

namespace residency::engine {
namespace {

TEST(RunTally, CountsNoticesByKindAndFailedOpsByName) {
  Outbox out;
  out.notices.push_back({NoticeKind::kEvicted, 1, Tier::kDevice, EvictReason::kDevicePressure, 100});
  out.notices.push_back({NoticeKind::kEvicted, 2, Tier::kDevice, EvictReason::kDevicePressure, 50});
  out.notices.push_back({NoticeKind::kEvicted, 2, Tier::kHost, EvictReason::kHostPressure, 70});
  out.notices.push_back({NoticeKind::kRamCacheHit, 1, Tier::kHost, EvictReason::kDevicePressure, 0});
  out.notices.push_back({NoticeKind::kDiskLoad, 3, Tier::kDisk, EvictReason::kDevicePressure, 0});
  out.notices.push_back({NoticeKind::kPinFallback, 3, Tier::kHost, EvictReason::kPinBudget, 0});
  out.notices.push_back({NoticeKind::kFinalized, 4, Tier::kDisk, EvictReason::kDeleted, 0});
  out.finished.push_back({7, OpKind::kLoad, ResourceExhausted("no room")});
  out.finished.push_back({8, OpKind::kCompute, Status::Ok()});
  RunTally t;
  t.Observe(out);
  EXPECT_EQ(t.Notices(NoticeKind::kEvicted), 3);
  EXPECT_EQ(t.Notices(NoticeKind::kSpilled), 0);
  EXPECT_EQ(t.ram_cache_hits, 1);
  EXPECT_EQ(t.disk_loads, 1);
  EXPECT_EQ(t.pin_fallbacks, 1);
  EXPECT_EQ(t.finalizers, 1);
  ASSERT_EQ(t.evictions.size(), 2u);
  const std::string device_key = std::string(ToString(Tier::kDevice)) + "/" +
                                 std::string(ToString(EvictReason::kDevicePressure));
  EXPECT_EQ(t.evictions.at(device_key).count, 2);
  EXPECT_EQ(t.evictions.at(device_key).bytes, 150);
  ASSERT_EQ(t.failed_ops.size(), 1u);
  EXPECT_EQ(t.failed_ops[0], "op 7 (load): " + ResourceExhausted("no room").ToString());
  // A disk load the page cache served moves to the page-cache count.
  t.ServedByPageCache();
  EXPECT_EQ(t.disk_loads, 0);
  EXPECT_EQ(t.page_cache_loads, 1);
}

}  // namespace
}  // namespace residency::engine
