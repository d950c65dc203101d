// Engine unit tests: loads, hits, evictions, the RAM cache, finalizers,
// infeasible working sets and bad input, with completions in any order.
#include <gtest/gtest.h>

#include <algorithm>

#include "runtime/engine/engine.h"
#include "tests/engine_driver.h"

namespace residency {
namespace {

using engine::Bytes;
using engine::CommandKind;
using engine::kGiB;
using engine::kMiB;
using engine::NoticeKind;
using engine::OpKind;
using testing::Compute;
using testing::EngineDriver;
using testing::Register;
using testing::Simple;

engine::MachineLimits Machine(Bytes ram, Bytes device, bool unified = false) {
  engine::MachineLimits m;
  m.ram_bytes = ram;
  m.os_reserve_bytes = 2 * kGiB;
  m.device_bytes = device;
  m.unified = unified;
  return m;
}

engine::Policy PolicyWith(engine::EvictionKind eviction,
                          engine::LoaderKind loader = engine::LoaderKind::kThreadedPinned) {
  engine::Policy p;
  p.name = "test";
  p.eviction = eviction;
  p.loader = loader;
  p.device_reserve_bytes = 0;
  return p;
}

std::unique_ptr<engine::Engine> Make(const engine::MachineLimits& m, const engine::Policy& p) {
  auto e = engine::Engine::Create(m, p);
  EXPECT_TRUE(e.ok()) << e.status().ToString();
  return std::move(e).value();
}

// Two 5 GiB models and a LoRA on an 8 GiB device (ops 1-7): model 1 loaded,
// patched with model 3 and released, then model 2 loaded, which moves model
// 1's patched device copy out.
void SubmitPatchedModelThenAnother(EngineDriver& d) {
  d.Submit(Register(1, 1, 5 * kGiB));
  d.Submit(Register(2, 2, 5 * kGiB));
  d.Submit(Register(3, 3, 256 * kMiB));
  d.Submit(Simple(4, OpKind::kLoad, 1));
  engine::Op patch = Simple(5, OpKind::kPatch, 1);
  patch.patch_model = 3;
  d.Submit(patch);
  d.Submit(Simple(6, OpKind::kRelease, 1));
  d.Submit(Simple(7, OpKind::kLoad, 2));
}


TEST(Engine, FullLoadReachesDeviceThenHits) {
  auto e = Make(Machine(32 * kGiB, 8 * kGiB), PolicyWith(engine::EvictionKind::kDrop));
  EngineDriver d(*e);
  d.Submit(Register(1, 1, 1 * kGiB));
  d.Submit(Simple(2, OpKind::kLoad, 1));
  d.RunToIdle();
  ASSERT_NE(d.log().Result(2), nullptr);
  EXPECT_TRUE(d.log().Result(2)->status.ok());
  EXPECT_EQ(e->accounting().device_bytes, 1 * kGiB);
  EXPECT_EQ(d.log().Count(NoticeKind::kDiskLoad), 1);
  // Every byte went through a read and a copy.
  Bytes read = 0, copied = 0;
  for (const auto& c : d.log().commands) {
    if (c.kind == CommandKind::kReadFile) read += c.bytes;
    if (c.kind == CommandKind::kCopyToDevice) copied += c.bytes;
  }
  EXPECT_EQ(read, 1 * kGiB);
  EXPECT_EQ(copied, 1 * kGiB);
  d.Submit(Simple(3, OpKind::kLoad, 1));
  d.RunToIdle();
  EXPECT_EQ(d.log().Count(NoticeKind::kDeviceHit), 1);
  EXPECT_TRUE(e->Idle());
  EXPECT_TRUE(d.log().violations.empty()) << d.log().violations.front();
}

TEST(Engine, InfeasibleLoadFailsWithTheNumbers) {
  auto e = Make(Machine(32 * kGiB, 8 * kGiB), PolicyWith(engine::EvictionKind::kDrop));
  EngineDriver d(*e);
  d.Submit(Register(1, 1, 10 * kGiB));
  d.Submit(Simple(2, OpKind::kLoad, 1));
  d.RunToIdle();
  const auto* r = d.log().Result(2);
  ASSERT_NE(r, nullptr);
  EXPECT_EQ(r->status.code(), StatusCode::kResourceExhausted);
  EXPECT_NE(r->status.message().find("10240 MiB"), std::string::npos) << r->status.message();
  EXPECT_NE(r->status.message().find("8192 MiB"), std::string::npos) << r->status.message();
  EXPECT_EQ(e->accounting().device_bytes, 0);
  EXPECT_TRUE(e->Idle());
  // The failed load holds no handle: a release is refused.
  d.Submit(Simple(3, OpKind::kRelease, 1));
  EXPECT_EQ(d.log().Result(3)->status.code(), StatusCode::kFailedPrecondition);
}

// Two 5 GiB models on an 8 GiB device: load A, then B (which evicts A), then A again.
void SwapAndBack(EngineDriver& d) {
  d.Submit(Register(1, 1, 5 * kGiB));
  d.Submit(Register(2, 2, 5 * kGiB));
  d.Submit(Simple(3, OpKind::kLoad, 1));
  d.Submit(Simple(4, OpKind::kRelease, 1));
  d.Submit(Simple(5, OpKind::kLoad, 2));
  d.Submit(Simple(6, OpKind::kRelease, 2));
  d.Submit(Simple(7, OpKind::kLoad, 1));
  d.RunToIdle();
}

TEST(Engine, DropEvictsAndReloadsFromDisk) {
  auto e = Make(Machine(32 * kGiB, 8 * kGiB), PolicyWith(engine::EvictionKind::kDrop));
  EngineDriver d(*e);
  SwapAndBack(d);
  EXPECT_EQ(d.log().Count(NoticeKind::kDiskLoad), 3);
  EXPECT_EQ(d.log().Count(NoticeKind::kRamCacheHit), 0);
  EXPECT_EQ(d.log().Count(NoticeKind::kEvicted), 2);
  EXPECT_EQ(e->accounting().host_bytes(), e->accounting().staging_bytes);  // no cached copies
  EXPECT_TRUE(d.log().violations.empty()) << d.log().violations.front();
}

TEST(Engine, RamLruServesTheSecondLoadFromRam) {
  auto e = Make(Machine(64 * kGiB, 8 * kGiB), PolicyWith(engine::EvictionKind::kRamLru));
  EngineDriver d(*e);
  SwapAndBack(d);
  EXPECT_EQ(d.log().Count(NoticeKind::kDiskLoad), 2);
  EXPECT_EQ(d.log().Count(NoticeKind::kRamCacheHit), 1);
  EXPECT_LE(e->RamCacheBytes(), e->budgets().ram_cache_bytes);
  EXPECT_TRUE(d.log().violations.empty()) << d.log().violations.front();
}

// The auto rules of FORMAT.md at points where each term decides.
TEST(Budgets, AutoRulesAtTheirBreakpoints) {
  engine::Policy p;
  p.host_headroom_bytes = 0;
  p.device_reserve_bytes = 0;
  auto budgets = [&](Bytes ram) { return engine::ComputeBudgets(Machine(ram, 8 * kGiB), p); };
  // Pin: max(40 % RAM, min(90 % RAM, RAM - 4 GiB)); under ~6.7 GiB the 40 % term wins.
  EXPECT_EQ(budgets(6 * kGiB).pin_budget_bytes, 6 * kGiB * 4 / 10);
  EXPECT_EQ(budgets(16 * kGiB).pin_budget_bytes, 12 * kGiB);
  EXPECT_EQ(budgets(256 * kGiB).pin_budget_bytes, 256 * kGiB * 9 / 10);
  // RAM cache: clamp(75 % RAM, 12 GiB, 96 GiB), never above the host limit (RAM - os_reserve).
  EXPECT_EQ(budgets(64 * kGiB).ram_cache_bytes, 48 * kGiB);
  EXPECT_EQ(budgets(14 * kGiB).ram_cache_bytes, 12 * kGiB);
  EXPECT_EQ(budgets(256 * kGiB).ram_cache_bytes, 96 * kGiB);
  EXPECT_EQ(budgets(8 * kGiB).ram_cache_bytes, 6 * kGiB) << "12 GiB floor, capped by the 6 GiB host limit";
  // Pinned bytes are host bytes: the pin budget, auto or given, never exceeds the host limit.
  p.host_headroom_bytes = 8 * kGiB;
  EXPECT_EQ(budgets(16 * kGiB).pin_budget_bytes, 6 * kGiB) << "auto 12 GiB, capped by the 6 GiB host limit";
  p.pin_budget_bytes = 100 * kGiB;
  EXPECT_EQ(budgets(32 * kGiB).pin_budget_bytes, 22 * kGiB) << "100 GiB asked, capped by the 22 GiB host limit";
}

// A pin squeeze unpins inactive models' copies least recently used first,
// and frees at least the hysteresis so pressure is consolidated.
TEST(Engine, PinSqueezeUnpinsLeastRecentlyUsedFirstAndHonoursHysteresis) {
  for (const Bytes hysteresis : {Bytes{0}, 2 * kGiB}) {
    auto policy = PolicyWith(engine::EvictionKind::kRamLru);
    policy.pin_budget_bytes = 3 * kGiB + policy.staging_buffers * policy.staging_bytes;
    policy.pin_hysteresis_bytes = hysteresis;
    auto e = Make(Machine(64 * kGiB, 64 * kGiB), policy);
    EngineDriver d(*e);
    engine::OpId op = 1;
    for (engine::ModelId m = 1; m <= 4; ++m) d.Submit(Register(op++, m, 1 * kGiB));
    for (engine::ModelId m = 1; m <= 3; ++m) {
      d.Submit(Simple(op++, OpKind::kLoad, m));
      d.Submit(Simple(op++, OpKind::kRelease, m));
    }
    d.RunToIdle();
    ASSERT_EQ(d.log().Count(CommandKind::kUnpin), 0) << "three 1 GiB copies fit the pin budget";
    d.Submit(Simple(op++, OpKind::kLoad, 4));
    d.RunToIdle();
    std::vector<engine::ModelId> unpinned;
    for (const auto& c : d.log().commands)
      if (c.kind == CommandKind::kUnpin) unpinned.push_back(c.model);
    if (hysteresis == 0)
      EXPECT_EQ(unpinned, (std::vector<engine::ModelId>{1})) << "the oldest copy, and only what is needed";
    else
      EXPECT_EQ(unpinned, (std::vector<engine::ModelId>{1, 2})) << "at least 2 GiB, oldest first";
    EXPECT_TRUE(d.log().violations.empty()) << d.log().violations.front();
  }
}

TEST(Engine, RamCacheStaysWithinItsBudget) {
  auto policy = PolicyWith(engine::EvictionKind::kRamLru);
  policy.ram_cache_bytes = 6 * kGiB;
  auto e = Make(Machine(64 * kGiB, 8 * kGiB), policy);
  EngineDriver d(*e);
  engine::OpId op = 1;
  for (engine::ModelId m = 1; m <= 4; ++m) d.Submit(Register(op++, m, 4 * kGiB));
  for (engine::ModelId m = 1; m <= 4; ++m) {
    d.Submit(Simple(op++, OpKind::kLoad, m));
    d.Submit(Simple(op++, OpKind::kRelease, m));
  }
  d.RunToIdle();
  EXPECT_LE(e->RamCacheBytes(), 6 * kGiB);
  EXPECT_GT(d.log().Count(NoticeKind::kEvicted), 0);
  EXPECT_TRUE(d.log().violations.empty()) << d.log().violations.front();
}

TEST(Engine, FinalizerRunsOnceAfterTheLastHandle) {
  auto e = Make(Machine(64 * kGiB, 8 * kGiB), PolicyWith(engine::EvictionKind::kRamLru));
  EngineDriver d(*e);
  d.Submit(Register(1, 1, 2 * kGiB));
  d.Submit(Simple(2, OpKind::kLoad, 1));
  d.Submit(Simple(3, OpKind::kLoad, 1));
  d.Submit(Simple(4, OpKind::kDelete, 1));
  d.Submit(Simple(5, OpKind::kRelease, 1));
  d.RunToIdle();
  EXPECT_EQ(d.log().Count(CommandKind::kRunFinalizer), 0) << "a handle is still live";
  d.Submit(Simple(6, OpKind::kRelease, 1));
  d.RunToIdle();
  EXPECT_EQ(d.log().Count(CommandKind::kRunFinalizer), 1);
  EXPECT_EQ(e->accounting().device_bytes, 0);
  // A cache must not keep a deleted model alive (its finalizer ran above, and
  // it holds nothing); its clean weights stay cached under its files, for a
  // model built again from them.
  for (const engine::ModelView& v : e->Models()) {
    if (v.id == 1) {
      EXPECT_EQ(v.host_bytes + v.device_bytes, 0) << "the deleted model holds nothing";
    }
  }
  EXPECT_EQ(e->RamCacheBytes(), 2 * kGiB) << "its weights are cached by file";
  EXPECT_EQ(d.log().Count(CommandKind::kAdoptHost), 1);
  // A deleted model cannot be loaded or deleted again; the finalizer stays at one.
  d.Submit(Simple(7, OpKind::kLoad, 1));
  d.Submit(Simple(8, OpKind::kDelete, 1));
  d.RunToIdle();
  EXPECT_EQ(d.log().Result(7)->status.code(), StatusCode::kFailedPrecondition);
  EXPECT_EQ(d.log().Result(8)->status.code(), StatusCode::kFailedPrecondition);
  EXPECT_EQ(d.log().Count(CommandKind::kRunFinalizer), 1);
  EXPECT_TRUE(d.log().violations.empty()) << d.log().violations.front();
}

TEST(Engine, BadInputIsAnsweredNotFatal) {
  auto e = Make(Machine(16 * kGiB, 8 * kGiB), PolicyWith(engine::EvictionKind::kDrop));
  EngineDriver d(*e);
  d.Submit(Simple(1, OpKind::kLoad, 42));
  d.Submit(Simple(2, OpKind::kRelease, 42));
  auto bad = Register(3, 1, 1 * kGiB);
  bad.files[0].tensor_bytes.push_back(1);  // tensors no longer sum to the file
  d.Submit(bad);
  auto empty = Register(4, 2, 1 * kGiB);
  empty.files.clear();
  d.Submit(empty);
  d.Submit(Register(5, 3, 1 * kGiB));
  d.Submit(Register(6, 3, 1 * kGiB));
  d.Submit(Compute(7, {99}, 0));
  d.RunToIdle();
  EXPECT_EQ(d.log().Result(1)->status.code(), StatusCode::kNotFound);
  EXPECT_EQ(d.log().Result(2)->status.code(), StatusCode::kNotFound);
  EXPECT_EQ(d.log().Result(3)->status.code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(d.log().Result(4)->status.code(), StatusCode::kInvalidArgument);
  EXPECT_TRUE(d.log().Result(5)->status.ok());
  EXPECT_EQ(d.log().Result(6)->status.code(), StatusCode::kFailedPrecondition);
  EXPECT_EQ(d.log().Result(7)->status.code(), StatusCode::kNotFound);
  EXPECT_TRUE(e->Idle());
}

TEST(Engine, ComputeStreamsWhatDoesNotFit) {
  auto e = Make(Machine(64 * kGiB, 8 * kGiB), PolicyWith(engine::EvictionKind::kDrop));
  EngineDriver d(*e);
  d.Submit(Register(1, 1, 12 * kGiB));
  auto load = Simple(2, OpKind::kLoad, 1);
  load.mode = engine::LoadMode::kPartial;
  load.device_bytes = 6 * kGiB;
  d.Submit(load);
  d.Submit(Compute(3, {1}, 1 * kGiB, 3));
  d.RunToIdle();
  EXPECT_TRUE(d.log().Result(3)->status.ok()) << d.log().Result(3)->status.ToString();
  EXPECT_EQ(d.log().Count(NoticeKind::kStreamed), 3);
  EXPECT_EQ(d.log().Count(CommandKind::kCompute), 3);
  EXPECT_EQ(e->accounting().activation_bytes, 0) << "activations are freed after compute";
  EXPECT_TRUE(d.log().violations.empty()) << d.log().violations.front();
}

// A mapped model one byte short of fully resident streams that byte: a few
// commands per step, not a walk over the whole file in 1-byte windows (which
// hung a replay of an imported log).
TEST(Engine, StreamingATinyRemainderFromAMappingIsCheap) {
  engine::Policy p = PolicyWith(engine::EvictionKind::kDrop, engine::LoaderKind::kMmapPageable);
  p.hold_mapping = true;
  auto e = Make(Machine(64 * kGiB, 16 * kGiB), p);
  EngineDriver d(*e);
  d.Submit(Register(1, 1, 7 * kGiB));
  auto load = Simple(2, OpKind::kLoad, 1);
  load.mode = engine::LoadMode::kPartial;
  load.device_bytes = 7 * kGiB - 1;
  d.Submit(load);
  const std::size_t before = d.log().commands.size();
  d.Submit(Compute(3, {1}, 0, 4));
  d.RunToIdle(100'000);
  ASSERT_NE(d.log().Result(3), nullptr) << "the compute finished";
  EXPECT_TRUE(d.log().Result(3)->status.ok()) << d.log().Result(3)->status.ToString();
  EXPECT_EQ(d.log().Count(NoticeKind::kStreamed), 4);
  EXPECT_LT(d.log().commands.size() - before, 60u);
  EXPECT_TRUE(d.log().violations.empty()) << d.log().violations.front();
}

TEST(Engine, UnifiedMemoryKeepsOneCopy) {
  auto e = Make(Machine(128 * kGiB, 0, true), PolicyWith(engine::EvictionKind::kRamLru));
  EngineDriver d(*e);
  d.Submit(Register(1, 1, 20 * kGiB));
  d.Submit(Simple(2, OpKind::kLoad, 1));
  d.RunToIdle();
  for (const auto& m : e->Models()) {
    EXPECT_TRUE(m.device_valid);
    EXPECT_EQ(m.host_bytes, 0) << "a host copy beside the device copy is double residency";
  }
  EXPECT_TRUE(d.log().violations.empty()) << d.log().violations.front();
}

TEST(Engine, PatchedWeightsSpillAndComeBackDirty) {
  auto policy = PolicyWith(engine::EvictionKind::kSpill);
  policy.ram_cache_bytes = 0;  // no room in RAM: dirty weights must spill
  auto e = Make(Machine(64 * kGiB, 8 * kGiB), policy);
  EngineDriver d(*e);
  SubmitPatchedModelThenAnother(d);  // ops 1-7
  d.Submit(Simple(8, OpKind::kRelease, 2));
  d.Submit(Simple(9, OpKind::kLoad, 1));
  d.RunToIdle();
  for (engine::OpId op = 4; op <= 9; ++op)
    EXPECT_TRUE(d.log().Result(op)->status.ok()) << op << ": " << d.log().Result(op)->status.ToString();
  EXPECT_EQ(d.log().Count(NoticeKind::kSpilled), 1);
  EXPECT_EQ(d.log().Count(NoticeKind::kSpillLoad), 1);
  EXPECT_GT(d.log().Count(CommandKind::kSpillWrite), 0);
  EXPECT_TRUE(d.log().violations.empty()) << d.log().violations.front();
}

TEST(Engine, FailedReadFailsTheLoadAndFreesItsMemory) {
  auto e = Make(Machine(32 * kGiB, 8 * kGiB), PolicyWith(engine::EvictionKind::kRamLru));
  EngineDriver d(*e);
  d.Submit(Register(1, 1, 1 * kGiB));
  d.Submit(Simple(2, OpKind::kLoad, 1));
  d.RunToIdle();
  ASSERT_TRUE(d.log().Result(2)->status.ok());
  d.Submit(Register(3, 2, 1 * kGiB));
  d.FailFirstRead(2);
  d.Submit(Simple(4, OpKind::kLoad, 2));
  d.RunToIdle();
  EXPECT_EQ(d.log().Result(4)->status.code(), StatusCode::kInternal);
  for (const auto& m : e->Models()) {
    if (m.id != 2) continue;
    EXPECT_EQ(m.device_bytes, 0);
    EXPECT_EQ(m.host_bytes, 0);
    EXPECT_EQ(m.handles, 0);
  }
  EXPECT_TRUE(e->Idle());
  EXPECT_TRUE(d.log().violations.empty()) << d.log().violations.front();
}

// Found by Stateful.AnyMachineAnyPolicyAgreesWithAModelOfResidency: a failed
// dynamic load of a model its holder had loaded in full left it marked
// dynamic, so the next compute shrank it under its own steps. A failed load
// must leave the model as its holders loaded it.
TEST(Engine, AFailedLoadLeavesTheModelAsItsHoldersLoadedIt) {
  auto e = Make(Machine(64 * kGiB, 8 * kGiB), PolicyWith(engine::EvictionKind::kDrop));
  EngineDriver d(*e);
  d.Submit(Register(1, 1, 6 * kGiB));
  d.Submit(Register(2, 2, 6 * kGiB));
  d.Submit(Simple(3, OpKind::kLoad, 1));  // in full
  d.Submit(Simple(4, OpKind::kLoad, 2));  // evicts model 1 from the device
  d.RunToIdle();
  ASSERT_TRUE(d.log().Result(4)->status.ok());
  d.FailFirstRead(1);
  engine::Op dynamic = Simple(5, OpKind::kLoad, 1);
  dynamic.mode = engine::LoadMode::kDynamic;
  d.Submit(dynamic);
  d.RunToIdle();
  ASSERT_EQ(d.log().Result(5)->status.code(), StatusCode::kInternal);
  const std::size_t before = d.log().notices.size();
  // 6 GiB in full and 3 GiB of activations do not fit 8 GiB: the compute must
  // fail, not shrink model 1 below what its holder loaded.
  d.Submit(Compute(6, {1}, 3 * kGiB));
  d.RunToIdle();
  EXPECT_EQ(d.log().Result(6)->status.code(), StatusCode::kResourceExhausted)
      << d.log().Result(6)->status.ToString();
  for (std::size_t i = before; i < d.log().notices.size(); ++i) {
    const engine::Notice& n = d.log().notices[i];
    EXPECT_FALSE(n.model == 1 && n.kind == NoticeKind::kEvicted && n.tier == engine::Tier::kDevice)
        << "model 1's device copy was cut under its compute";
  }
  EXPECT_TRUE(d.log().violations.empty()) << d.log().violations.front();
}

// Host pressure frees clean cached copies only: a patched (dirty) host copy
// would cost its patches again, and under the spill policy a spill write that
// runs inside ops only. (Mutant "host pressure drops dirty copies" survived.)
TEST(Engine, HostPressureFreesCleanCopiesAndKeepsPatchedOnes) {
  auto e = Make(Machine(64 * kGiB, 8 * kGiB), PolicyWith(engine::EvictionKind::kRamLru));
  EngineDriver d(*e);
  SubmitPatchedModelThenAnother(d);  // ops 1-7: model 1's patched device copy goes back to host
  d.Submit(Simple(8, OpKind::kRelease, 2));
  d.Submit(Simple(9, OpKind::kLoad, 3));  // model 2 leaves the device: a clean host copy
  d.RunToIdle();
  for (engine::OpId op = 4; op <= 9; ++op) ASSERT_TRUE(d.log().Result(op)->status.ok()) << op;
  bool dirty_on_host = false;
  for (const auto& m : e->Models())
    if (m.id == 1) dirty_on_host = m.host_bytes > 0 && m.dirty;
  ASSERT_TRUE(dirty_on_host) << "the test needs model 1's patched copy in host memory";
  const std::size_t before = d.log().notices.size();
  d.Pressure(64 * kGiB);
  d.RunToIdle();
  int clean_freed = 0;
  for (std::size_t i = before; i < d.log().notices.size(); ++i) {
    const engine::Notice& n = d.log().notices[i];
    if (n.kind != NoticeKind::kEvicted || n.reason != engine::EvictReason::kHostPressure) continue;
    EXPECT_NE(n.model, 1u) << "host pressure freed the patched copy of model 1";
    clean_freed += n.model == 2;
  }
  EXPECT_EQ(clean_freed, 1) << "host pressure must free model 2's clean copy";
  EXPECT_TRUE(d.log().violations.empty()) << d.log().violations.front();
}

// GreedyDual-Size: a patched copy costs more to rebuild than a plain one, so
// the RAM cache keeps it over newer plain copies at first, but each eviction
// raises the floor (the inflation), and a copy nobody touches again is in the
// end evicted before the newer ones. Without the aging it would stay forever.
TEST(Engine, CostAwareCacheKeepsCostlyCopiesAtFirstButAgesThemOut) {
  auto policy = PolicyWith(engine::EvictionKind::kRamCostAware);
  policy.ram_cache_bytes = 2 * kGiB + 512 * kMiB;  // two 1 GiB copies and change
  auto e = Make(Machine(64 * kGiB, 1 * kGiB + 512 * kMiB), policy);
  EngineDriver d(*e);
  d.Submit(Register(1, 1, 1 * kGiB));      // P, patched below
  d.Submit(Register(2, 2, 256 * kMiB));    // the LoRA
  d.Submit(Simple(3, OpKind::kLoad, 1));
  engine::Op patch = Simple(4, OpKind::kPatch, 1);
  patch.patch_model = 2;
  d.Submit(patch);
  d.Submit(Compute(5, {1}, 0));  // its use after the patch prices it patched
  d.Submit(Simple(6, OpKind::kRelease, 1));
  engine::OpId op = 7;
  constexpr engine::ModelId kFirstPlain = 10;
  for (engine::ModelId m = kFirstPlain; m < kFirstPlain + 6; ++m) {
    d.Submit(Register(op++, m, 1 * kGiB));
    d.Submit(Simple(op++, OpKind::kLoad, m));
    d.Submit(Simple(op++, OpKind::kRelease, m));
  }
  d.RunToIdle();
  for (engine::OpId i = 3; i < op; ++i)
    ASSERT_TRUE(d.log().Result(i)->status.ok()) << i << ": " << d.log().Result(i)->status.ToString();
  std::vector<engine::ModelId> cache_victims;  // host copies evicted for the RAM cache budget
  for (const engine::Notice& n : d.log().notices)
    if (n.kind == NoticeKind::kEvicted && n.reason == engine::EvictReason::kRamCacheBudget)
      cache_victims.push_back(n.model);
  ASSERT_GE(cache_victims.size(), 2u) << "the test needs the RAM cache budget to bind";
  EXPECT_NE(cache_victims.front(), 1u) << "the costly patched copy went first, before a plain one";
  EXPECT_NE(std::find(cache_victims.begin(), cache_victims.end(), 1u), cache_victims.end())
      << "the patched copy outlived every newer plain copy: GreedyDual-Size never aged it";
  EXPECT_TRUE(d.log().violations.empty()) << d.log().violations.front();
}

// Completions in any order, as real threads deliver them: same outcome.
TEST(Engine, RandomCompletionOrderKeepsInvariants) {
  for (std::uint64_t seed = 1; seed <= 30; ++seed) {
    auto policy = PolicyWith(seed % 2 ? engine::EvictionKind::kRamLru : engine::EvictionKind::kSpill);
    policy.loader = static_cast<engine::LoaderKind>(seed % 3);
    policy.pin_budget_bytes = 6 * kGiB;
    auto e = Make(Machine(48 * kGiB, 8 * kGiB), policy);
    EngineDriver d(*e, seed);
    engine::OpId op = 1;
    for (engine::ModelId m = 1; m <= 3; ++m) d.Submit(Register(op++, m, (2 + m) * kGiB, 7));
    for (int round = 0; round < 3; ++round) {
      for (engine::ModelId m = 1; m <= 3; ++m) {
        d.Submit(Simple(op++, OpKind::kLoad, m));
        d.Submit(Compute(op++, {m}, 512 * kMiB));
        d.Submit(Simple(op++, OpKind::kRelease, m));
      }
    }
    d.RunToIdle();
    EXPECT_TRUE(e->Idle()) << "seed " << seed;
    ASSERT_TRUE(d.log().violations.empty()) << "seed " << seed << ": " << d.log().violations.front();
    for (const auto& r : d.log().finished)
      EXPECT_TRUE(r.status.ok()) << "seed " << seed << " op " << r.op << ": " << r.status.ToString();
  }
}

// The policy's loading regime replaces the modes a trace asks for (ComfyUI's
// dynamic VRAM on or off, --novram).
engine::Op LoadAs(engine::OpId id, engine::ModelId model, engine::LoadMode mode, Bytes device_bytes = 0) {
  engine::Op op = Simple(id, OpKind::kLoad, model);
  op.mode = mode;
  op.device_bytes = device_bytes;
  return op;
}

TEST(Engine, ClassicLoadingMakesADynamicLoadFullWhenItFitsAndPartialWhenNot) {
  engine::Policy p = PolicyWith(engine::EvictionKind::kDrop);
  p.load_modes = engine::LoadModeRule::kClassic;
  auto e = Make(Machine(32 * kGiB, 8 * kGiB), p);
  EngineDriver d(*e);
  d.Submit(Register(1, 1, 2 * kGiB));
  d.Submit(LoadAs(2, 1, engine::LoadMode::kDynamic));
  d.RunToIdle();
  ASSERT_TRUE(d.log().Result(2)->status.ok()) << d.log().Result(2)->status.ToString();
  EXPECT_EQ(e->accounting().device_bytes, 2 * kGiB);  // all of it: a full load
  d.Submit(Register(3, 2, 12 * kGiB));
  d.Submit(LoadAs(4, 2, engine::LoadMode::kDynamic));
  d.RunToIdle();
  ASSERT_TRUE(d.log().Result(4)->status.ok()) << d.log().Result(4)->status.ToString();
  // 12 GiB on an 8 GiB device: the rest of the device, the remainder streams.
  EXPECT_EQ(e->accounting().device_bytes, 8 * kGiB);
  EXPECT_TRUE(d.log().violations.empty()) << d.log().violations.front();
}

TEST(Engine, DynamicLoadingTakesWhatAFullLoadCouldNot) {
  for (const auto rule : {engine::LoadModeRule::kAsTraced, engine::LoadModeRule::kDynamic}) {
    engine::Policy p = PolicyWith(engine::EvictionKind::kDrop);
    p.load_modes = rule;
    auto e = Make(Machine(32 * kGiB, 8 * kGiB), p);
    EngineDriver d(*e);
    d.Submit(Register(1, 1, 10 * kGiB));
    d.Submit(LoadAs(2, 1, engine::LoadMode::kFull));
    d.RunToIdle();
    const auto* r = d.log().Result(2);
    ASSERT_NE(r, nullptr);
    if (rule == engine::LoadModeRule::kAsTraced) {
      EXPECT_EQ(r->status.code(), StatusCode::kResourceExhausted);  // a full 10 GiB load cannot fit
    } else {
      EXPECT_TRUE(r->status.ok()) << r->status.ToString();
      EXPECT_EQ(e->accounting().device_bytes, 8 * kGiB);
    }
  }
}

TEST(Engine, NoVramLoadingKeepsNothingResidentAndStreamsEachStep) {
  engine::Policy p = PolicyWith(engine::EvictionKind::kRamLru);
  p.load_modes = engine::LoadModeRule::kNoVram;
  auto e = Make(Machine(32 * kGiB, 8 * kGiB), p);
  EngineDriver d(*e);
  d.Submit(Register(1, 1, 2 * kGiB));
  d.Submit(LoadAs(2, 1, engine::LoadMode::kFull));
  d.Submit(Compute(3, {1}, 64 * kMiB, 3));
  d.RunToIdle();
  ASSERT_TRUE(d.log().Result(3)->status.ok()) << d.log().Result(3)->status.ToString();
  Bytes copied = 0;
  for (const auto& c : d.log().commands)
    if (c.kind == CommandKind::kCopyToDevice) copied += c.bytes;
  // Three steps each stream the whole model (less its 1-byte resident part).
  EXPECT_GE(copied, 3 * (2 * kGiB - 1));
  EXPECT_TRUE(d.log().violations.empty()) << d.log().violations.front();
}

TEST(Engine, FreeDeviceAfterPromptUnloadsIdleModelsAtPromptEnd) {
  for (const bool free_after : {false, true}) {
    engine::Policy p = PolicyWith(engine::EvictionKind::kRamLru);
    p.free_device_after_prompt = free_after;
    auto e = Make(Machine(32 * kGiB, 8 * kGiB), p);
    EngineDriver d(*e);
    d.Submit(Register(1, 1, 2 * kGiB));
    d.Submit(Register(2, 2, 1 * kGiB));
    engine::Op begin = Simple(3, OpKind::kPromptBegin, 0);
    begin.prompt = 1;
    d.Submit(begin);
    d.Submit(Simple(4, OpKind::kLoad, 1));
    d.Submit(Simple(5, OpKind::kLoad, 2));
    d.Submit(Simple(6, OpKind::kRelease, 1));  // model 2 keeps its handle across the prompt's end
    engine::Op end = Simple(7, OpKind::kPromptEnd, 0);
    end.prompt = 1;
    d.Submit(end);
    d.RunToIdle();
    ASSERT_TRUE(d.log().Result(7)->status.ok());
    int prompt_end_evictions = 0;
    for (const auto& n : d.log().notices)
      if (n.kind == NoticeKind::kEvicted && n.reason == engine::EvictReason::kPromptEnd) {
        ++prompt_end_evictions;
        EXPECT_EQ(n.model, 1u);  // the held model stays
      }
    EXPECT_EQ(prompt_end_evictions, free_after ? 1 : 0);
    EXPECT_EQ(e->accounting().device_bytes, free_after ? 1 * kGiB : 3 * kGiB);
    EXPECT_TRUE(d.log().violations.empty()) << d.log().violations.front();
  }
}

}  // namespace
}  // namespace residency
