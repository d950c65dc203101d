// The engine's BufferLedger alone: staged bytes, holds, what issuing and
// settling commands does to the counters, and the recount that checks them.
#include "runtime/engine/buffer_ledger.h"

#include <gtest/gtest.h>

namespace residency::engine {
namespace {

using Route = BufferLedger::Route;

Command Cmd(CommandKind kind, Bytes bytes, BufferId buffer, BufferId device_buffer = 0) {
  Command c;
  c.kind = kind;
  c.model = 7;
  c.bytes = bytes;
  c.buffer = buffer;
  c.device_buffer = device_buffer;
  return c;
}

Budgets Roomy() { return {.host_limit_bytes = 1 << 30, .device_limit_bytes = 1 << 30, .pin_budget_bytes = 1 << 30}; }

TEST(BufferLedger, StagedBytesCountUntilIssuedAndHoldTheirBuffers) {
  BufferLedger l;
  const Command alloc = Cmd(CommandKind::kAllocHost, 100, 1);
  l.Stage(alloc);
  EXPECT_EQ(l.staged().host_alloc, 100);
  EXPECT_EQ(l.HostHeld(), 100) << "staged bytes count against the budget before they are issued";
  EXPECT_TRUE(l.Busy(1)) << "not allocated yet";
  l.Unhold(alloc);
  ASSERT_TRUE(l.Issue(alloc, Route::kStaged).send);
  EXPECT_EQ(l.staged().host_alloc, 0);
  EXPECT_EQ(l.totals().pageable_bytes, 100);
  EXPECT_EQ(l.HostHeld(), 100);
  EXPECT_FALSE(l.Busy(1));
  // A staged unpin or free of the buffer holds it: host pressure must not free it.
  const Command read = Cmd(CommandKind::kReadFile, 100, 1);
  l.Stage(read);
  EXPECT_TRUE(l.Busy(1));
  l.Unhold(read);
  ASSERT_TRUE(l.Issue(read, Route::kStaged).send);
  EXPECT_TRUE(l.Busy(1)) << "in flight";
  l.Settle(CommandKind::kReadFile, 1, 0);
  EXPECT_FALSE(l.Busy(1));
  EXPECT_TRUE(l.Check(Roomy()).empty());
}

TEST(BufferLedger, PinMovesBytesBetweenKindsAndFreeReturnsThem) {
  BufferLedger l;
  ASSERT_TRUE(l.Issue(Cmd(CommandKind::kAllocHost, 64, 1), Route::kDirect).send);
  ASSERT_TRUE(l.Issue(Cmd(CommandKind::kPin, 64, 1), Route::kDirect).send);
  EXPECT_EQ(l.totals().pageable_bytes, 0);
  EXPECT_EQ(l.totals().pinned_bytes, 64);
  EXPECT_TRUE(l.Busy(1)) << "a pin is in flight until it completes";
  l.Settle(CommandKind::kPin, 1, 0);
  ASSERT_TRUE(l.Issue(Cmd(CommandKind::kAllocDevice, 64, 0, 2), Route::kDirect).send);
  ASSERT_TRUE(l.Issue(Cmd(CommandKind::kCopyToDevice, 64, 1, 2), Route::kDirect).send);
  EXPECT_TRUE(l.Busy(1));
  EXPECT_TRUE(l.Busy(2));
  l.Settle(CommandKind::kCopyToDevice, 1, 2);
  EXPECT_FALSE(l.Busy(2));
  ASSERT_TRUE(l.Issue(Cmd(CommandKind::kFreeHost, 64, 1), Route::kDirect).send);
  EXPECT_EQ(l.totals().pinned_bytes, 0);
  EXPECT_EQ(l.totals().device_bytes, 64);
  EXPECT_EQ(l.Find(1), nullptr);
  EXPECT_TRUE(l.Check(Roomy()).empty());
}

TEST(BufferLedger, AFreeOfADiscardedAllocationIsMootAndAMissingBufferIsAFault) {
  BufferLedger l;
  const Command alloc = Cmd(CommandKind::kAllocDevice, 50, 0, 3);
  l.Stage(alloc);
  l.Discard(alloc);  // its op failed before issuing it
  EXPECT_EQ(l.staged().device_alloc, 0);
  EXPECT_FALSE(l.Issue(Cmd(CommandKind::kFreeDevice, 50, 0, 3), Route::kDirect).send);
  EXPECT_EQ(l.totals().device_bytes, 0);
  // The same free again is no longer moot: the buffer does not exist.
  const BufferLedger::Issued again = l.Issue(Cmd(CommandKind::kFreeDevice, 50, 0, 3), Route::kDirect);
  EXPECT_FALSE(again.send);
  EXPECT_NE(again.fault.find("names buffer 3, which does not exist"), std::string::npos) << again.fault;
}

TEST(BufferLedger, CheckNamesEachBudgetExceeded) {
  BufferLedger l;
  ASSERT_TRUE(l.Issue(Cmd(CommandKind::kAllocHost, 300, 1), Route::kDirect).send);
  ASSERT_TRUE(l.Issue(Cmd(CommandKind::kPin, 300, 1), Route::kDirect).send);
  Command act = Cmd(CommandKind::kAllocDevice, 200, 0, 2);
  act.activation = true;
  ASSERT_TRUE(l.Issue(act, Route::kDirect).send);
  EXPECT_EQ(l.totals().activation_bytes, 200);
  const Budgets tight{.host_limit_bytes = 250, .device_limit_bytes = 100, .pin_budget_bytes = 299};
  const std::vector<std::string> v = l.Check(tight);
  ASSERT_EQ(v.size(), 3u);
  EXPECT_EQ(v[0], "pinned 300 exceeds pin budget 299");
  EXPECT_EQ(v[1], "device 200 exceeds device limit 100");
  EXPECT_EQ(v[2], "host 300 exceeds host limit 250");
  // On unified memory the device's bytes come out of the host's.
  Budgets unified = Roomy();
  unified.host_limit_bytes = 450;
  unified.unified = true;
  EXPECT_EQ(l.Check(unified), (std::vector<std::string>{"host 500 exceeds host limit 450"}));
}

}  // namespace
}  // namespace residency::engine
