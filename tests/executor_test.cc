// The real executor against the simulator: same workload, same limits, same
// policy, so the engine must make the same decisions (hits, evictions, pin
// fallbacks, spills, finalizers, op results) in the same order, whatever the
// real threads' timing. Also: what the real run leaves behind.
#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <map>

#include "runtime/device/device_backend.h"
#include "runtime/executor/real_executor.h"
#include "sim/simulator.h"
#include "tests/runtime_fixture.h"
#include "traces/bundled.h"
#include "traces/trace.h"

namespace residency {
namespace {

using testing::ScratchDir;

engine::Workload TinyWorkload() {
  auto trace = traces::ReadTraceFile(RESIDENCY_TEST_DATA_DIR "/tiny-swap.jsonl");
  EXPECT_TRUE(trace.ok()) << trace.status().message();
  auto w = traces::ToWorkload(trace.value(), "tiny-swap.jsonl");
  EXPECT_TRUE(w.ok()) << w.status().message();
  return w.value();
}

// Policy tuned for small models: small staging slots and no device reserve.
engine::Policy SmallPolicy(const std::string& name) {
  auto p = traces::LoadPolicy(name);
  EXPECT_TRUE(p.ok()) << p.status().message();
  engine::Policy policy = p.value();
  policy.staging_bytes = 8 << 20;
  policy.device_reserve_bytes = 0;
  policy.host_headroom_bytes = 256 << 20;
  return policy;
}

traces::Profile SmallProfile() {
  auto p = traces::LoadProfile("sandbox-2c-24g");
  EXPECT_TRUE(p.ok()) << p.status().message();
  traces::Profile profile = p.value();
  profile.vram_bytes = 64 << 20;
  profile.ram_bytes = 4ll << 30;
  profile.os_reserve_bytes = 1ll << 30;
  return profile;
}

// (prompt, command kind) -> (commands, bytes): what both sides must agree on;
// their times are what a fidelity run compares.
std::map<std::pair<int, engine::CommandKind>, std::pair<std::int64_t, engine::Bytes>> CommandCounts(
    const engine::CommandTimesByPrompt& t) {
  std::map<std::pair<int, engine::CommandKind>, std::pair<std::int64_t, engine::Bytes>> out;
  for (const auto& [prompt, kinds] : t)
    for (const auto& [kind, c] : kinds) out[{prompt, kind}] = {c.count, c.bytes};
  return out;
}

std::string FirstDivergence(const std::vector<std::string>& a, const std::vector<std::string>& b) {
  const std::size_t n = std::min(a.size(), b.size());
  for (std::size_t i = 0; i < n; ++i)
    if (a[i] != b[i]) return "line " + std::to_string(i) + ": sim '" + a[i] + "' vs real '" + b[i] + "'";
  return "lengths differ: sim " + std::to_string(a.size()) + " lines, real " + std::to_string(b.size());
}

class Differential : public ::testing::TestWithParam<std::string> {};

TEST_P(Differential, RealRunMakesTheSimulatorsDecisions) {
  const engine::Workload w = TinyWorkload();
  ScratchDir dir("diff");
  testing::WriteModelFiles(w, dir);
  if (::testing::Test::HasFatalFailure()) return;
  engine::Policy policy = SmallPolicy(GetParam());
  if (policy.direct_io && !testing::DirectIoWorks(dir.File("a.safetensors")))
    GTEST_SKIP() << "the scratch filesystem refuses O_DIRECT; " << GetParam() << " not run";
  const traces::Profile profile = SmallProfile();

  sim::SimOptions sim_options;
  sim_options.record_decisions = true;
  sim_options.record_timeline = false;
  auto simulated = sim::Simulate(w, profile, policy, sim_options);
  ASSERT_TRUE(simulated.ok()) << simulated.status().message();
  ASSERT_TRUE(simulated->violations.empty()) << simulated->violations.front();

  auto dev = device::MakeHostDevice(static_cast<std::uint64_t>(profile.vram_bytes));
  executor::RunOptions options;
  options.models_dir = dir.path();
  options.time_scale = 0.1;
  options.record_timeline = true;  // recorded from the worker threads too (TSan runs this)
  // Plenty of free RAM, whatever this machine has: the simulated machine
  // sends no host pressure either, so the decisions must match.
  options.available_memory = [] { return std::int64_t{1} << 40; };
  auto real = executor::RunWorkload(w, profile.Limits(), policy, *dev, options);
  ASSERT_TRUE(real.ok()) << real.status().message();
  // The timeline's record: every command once, in completion order, inside
  // the run; the memory tracks reach the executor's own peaks.
  const executor::RunTimeline& tl = real->timeline;
  EXPECT_EQ(tl.commands.size(), real->tally.commands);
  std::int64_t last_end = 0;
  for (const auto& c : tl.commands) {
    EXPECT_LE(c.start_ns, c.end_ns);
    EXPECT_GE(c.end_ns, last_end) << "commands are recorded as they complete";
    last_end = c.end_ns;
  }
  EXPECT_LE(last_end, real->wall_ns);
  std::uint64_t device_peak = 0, pinned_peak = 0;
  std::int64_t last_sample = 0;
  for (const auto& m : tl.memory) {
    EXPECT_GE(m.time_ns, last_sample);
    last_sample = m.time_ns;
    device_peak = std::max(device_peak, m.device_bytes);
    pinned_peak = std::max(pinned_peak, m.pinned_bytes);
  }
  EXPECT_EQ(device_peak, real->tally.peak_device_bytes);
  EXPECT_EQ(pinned_peak, real->tally.peak_pinned_bytes);
  std::int64_t notices = 0;
  for (const auto& [kind, n] : real->tally.notices) notices += n;
  EXPECT_EQ(static_cast<std::int64_t>(tl.notices.size()), notices);
  // One tally on both sides: the same notices by kind, hits, evictions by
  // tier and reason, and budgets.
  EXPECT_EQ(real->tally.notices, simulated->tally.notices);
  EXPECT_EQ(real->tally.ram_cache_hits, simulated->tally.ram_cache_hits);
  EXPECT_EQ(real->tally.device_hits, simulated->tally.device_hits);
  EXPECT_EQ(real->tally.spill_loads, simulated->tally.spill_loads);
  EXPECT_EQ(real->tally.disk_loads, simulated->tally.disk_loads + simulated->tally.page_cache_loads)
      << "the real side cannot tell a page-cache read from a disk read";
  ASSERT_EQ(real->tally.evictions.size(), simulated->tally.evictions.size());
  for (const auto& [key, e] : simulated->tally.evictions) {
    EXPECT_EQ(real->tally.evictions.at(key).count, e.count) << key;
    EXPECT_EQ(real->tally.evictions.at(key).bytes, e.bytes) << key;
  }
  EXPECT_EQ(real->tally.budgets.host_limit_bytes, simulated->tally.budgets.host_limit_bytes);
  EXPECT_EQ(real->tally.budgets.pin_budget_bytes, simulated->tally.budgets.pin_budget_bytes);
  EXPECT_EQ(real->tally.budgets.device_limit_bytes, simulated->tally.budgets.device_limit_bytes);
  EXPECT_EQ(real->tally.host_pressure_signals, 0);
  EXPECT_TRUE(real->violations.empty()) << real->violations.front();
  EXPECT_EQ(real->tally.failed_ops, simulated->tally.failed_ops);
  EXPECT_EQ(real->decisions, simulated->decisions) << FirstDivergence(simulated->decisions, real->decisions);
  // Every byte is accounted: the executor's own peaks equal the simulator's.
  EXPECT_EQ(static_cast<engine::Bytes>(real->tally.peak_device_bytes), simulated->tally.peak_device_bytes);
  EXPECT_EQ(static_cast<engine::Bytes>(real->tally.peak_pinned_bytes), simulated->tally.peak_pinned_bytes);
  EXPECT_EQ(static_cast<engine::Bytes>(real->tally.peak_host_bytes), simulated->tally.peak_host_bytes);
  EXPECT_GT(real->tally.disk_read_bytes, 0u);
  // The same commands, attributed to the same prompts, on both sides.
  const auto counts = CommandCounts(real->tally.command_times);
  EXPECT_EQ(counts, CommandCounts(simulated->tally.command_times));
  std::int64_t total = 0;
  for (const auto& [key, c] : counts) total += c.first;
  EXPECT_EQ(static_cast<std::uint64_t>(total), real->tally.commands);
  EXPECT_GT(counts.size(), 4u) << "commands from several prompts and kinds";
  EXPECT_EQ(real->tally.finalizers, 1) << "model b is deleted once";
  EXPECT_EQ(dev->used_bytes(), 0u) << "device memory left behind";
}

INSTANTIATE_TEST_SUITE_P(Policies, Differential,
                         ::testing::Values("drop", "ram-lru", "ram-cost-aware", "spill", "mmap-pageable",
                                           "read-into", "read-into-dontneed", "threaded-direct"),
                         [](const auto& info) {
                           std::string n = info.param;
                           std::replace(n.begin(), n.end(), '-', '_');
                           return n;
                         });

// Free RAM below the policy's headroom reaches the engine from a real run as
// from a simulated one: cached host copies go, named as host pressure.
TEST(RealExecutor, LowFreeMemoryTellsTheEngineAndCachedCopiesGo) {
  const engine::Workload w = TinyWorkload();
  ScratchDir dir("pressure");
  testing::WriteModelFiles(w, dir);
  if (::testing::Test::HasFatalFailure()) return;
  auto dev = device::MakeHostDevice(64 << 20);
  executor::RunOptions options;
  options.models_dir = dir.path();
  options.time_scale = 0;
  int asked = 0;
  options.available_memory = [&asked] {
    ++asked;
    return std::int64_t{16} << 20;  // 16 MiB free: below the 256 MiB headroom
  };
  auto r = executor::RunWorkload(w, SmallProfile().Limits(), SmallPolicy("ram-lru"), *dev, options);
  ASSERT_TRUE(r.ok()) << r.status().message();
  EXPECT_GT(asked, 0);
  EXPECT_GT(r->tally.host_pressure_signals, 0);
  std::int64_t by_pressure = 0;
  for (const auto& [key, e] : r->tally.evictions)
    if (key.find("host-pressure") != std::string::npos) by_pressure += e.count;
  EXPECT_GT(by_pressure, 0) << "a cached host copy should have gone";
  EXPECT_TRUE(r->violations.empty()) << r->violations.front();
  // With free memory to spare nothing is signalled.
  options.available_memory = [] { return std::int64_t{1} << 40; };
  auto calm = executor::RunWorkload(w, SmallProfile().Limits(), SmallPolicy("ram-lru"), *dev, options);
  ASSERT_TRUE(calm.ok()) << calm.status().message();
  EXPECT_EQ(calm->tally.host_pressure_signals, 0);
  for (const auto& [key, e] : calm->tally.evictions) EXPECT_EQ(key.find("host-pressure"), std::string::npos) << key;
}

TEST(RealExecutor, MissingModelFileIsAClearError) {
  const engine::Workload w = TinyWorkload();
  ScratchDir dir("missing");
  auto dev = device::MakeHostDevice(64 << 20);
  executor::RunOptions options;
  options.models_dir = dir.path();
  auto r = executor::RunWorkload(w, SmallProfile().Limits(), SmallPolicy("drop"), *dev, options);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("a.safetensors"), std::string::npos) << r.status().message();
  EXPECT_NE(r.status().message().find("gen-model"), std::string::npos);
}

TEST(RealExecutor, AnInfeasibleLoadFailsTypedAndTheRunGoesOn) {
  const engine::Workload w = TinyWorkload();
  ScratchDir dir("infeasible");
  testing::WriteModelFiles(w, dir);
  engine::MachineLimits limits = SmallProfile().Limits();
  limits.device_bytes = 40 << 20;  // model a (50 MB) cannot fit fully
  auto dev = device::MakeHostDevice(40 << 20);
  executor::RunOptions options;
  options.models_dir = dir.path();
  options.time_scale = 0;
  auto r = executor::RunWorkload(w, limits, SmallPolicy("drop"), *dev, options);
  ASSERT_TRUE(r.ok()) << r.status().message();
  ASSERT_FALSE(r->tally.failed_ops.empty());
  EXPECT_NE(r->tally.failed_ops.front().find("MiB"), std::string::npos) << r->tally.failed_ops.front();
  EXPECT_TRUE(r->violations.empty());
}

// A command the executor cannot carry out (the device is smaller than the
// engine was told) fails its op, the run goes on to the end, and the run
// reports the failure instead of a clean result; nothing is left allocated.
TEST(RealExecutor, ACommandTheDeviceCannotCarryOutFailsTheRun) {
  const engine::Workload w = TinyWorkload();
  ScratchDir dir("short-device");
  testing::WriteModelFiles(w, dir);
  engine::MachineLimits limits = SmallProfile().Limits();
  limits.device_bytes = 512 << 20;
  auto dev = device::MakeHostDevice(16 << 20);
  executor::RunOptions options;
  options.models_dir = dir.path();
  options.time_scale = 0;
  auto r = executor::RunWorkload(w, limits, SmallPolicy("drop"), *dev, options);
  ASSERT_FALSE(r.ok()) << "a failed device allocation must fail the run";
  EXPECT_FALSE(r.status().message().empty());
  EXPECT_EQ(dev->used_bytes(), 0u) << "device memory left behind";
}

}  // namespace
}  // namespace residency
