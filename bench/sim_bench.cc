// Simulator speed: the bare event queue (hold model) and the engine plus
// simulator end to end on a large synthetic workload. Figures go to
// docs/BENCHMARKS.md; goals are >= 5M events/s bare, >= 1M/s end to end.
#include <benchmark/benchmark.h>

#include <random>

#include "sim/event_queue.h"
#include "sim/simulator.h"
#include "traces/bundled.h"

namespace residency {
namespace {

void BM_EventQueueHold(benchmark::State& state) {
  const auto pending = static_cast<std::size_t>(state.range(0));
  sim::EventQueue q;
  std::mt19937_64 rng(1);
  std::exponential_distribution<double> gap(1.0 / 100.0);
  for (std::size_t i = 0; i < pending; ++i) q.Push(static_cast<engine::Nanos>(gap(rng)), sim::EventKind::kTimer, i);
  for (auto _ : state) {
    const sim::Event e = q.Pop();
    q.Push(e.time + static_cast<engine::Nanos>(gap(rng)) + 1, sim::EventKind::kTimer, e.payload);
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_EventQueueHold)->Arg(100)->Arg(10'000)->Arg(100'000);

// Many models, many prompts, small chunks: lots of events per second of wall time.
engine::Workload SyntheticWorkload(int models, int prompts) {
  engine::Workload w;
  w.name = "synthetic";
  engine::OpId id = 1;
  for (int m = 1; m <= models; ++m) {
    engine::Op op;
    op.id = id++;
    op.kind = engine::OpKind::kRegisterModel;
    op.model = static_cast<engine::ModelId>(m);
    op.name = "m" + std::to_string(m);
    op.files.push_back({"m" + std::to_string(m), (2 + m % 5) * engine::kGiB, {}});
    w.ops.push_back(op);
  }
  for (int p = 1; p <= prompts; ++p) {
    for (int m = 1; m <= models; ++m) {
      engine::Op load;
      load.id = id++;
      load.kind = engine::OpKind::kLoad;
      load.model = static_cast<engine::ModelId>((p * 7 + m) % models + 1);
      w.ops.push_back(load);
      engine::Op compute;
      compute.id = id++;
      compute.kind = engine::OpKind::kCompute;
      compute.models = {load.model};
      compute.steps = 4;
      compute.step_ns = 10'000'000;
      compute.activation_bytes = engine::kGiB;
      w.ops.push_back(compute);
      engine::Op release = load;
      release.id = id++;
      release.kind = engine::OpKind::kRelease;
      w.ops.push_back(release);
    }
  }
  return w;
}

void BM_ReplayEndToEnd(benchmark::State& state) {
  auto profile = traces::LoadProfile("rtx4090-64g");
  auto policy = traces::LoadPolicy(state.range(0) ? "ram-lru" : "drop");
  if (!profile.ok() || !policy.ok()) {
    state.SkipWithError("bundled data not found; set RESIDENCY_DATA_DIR");
    return;
  }
  const engine::Workload w = SyntheticWorkload(12, 10);
  sim::SimOptions options;
  options.record_timeline = false;
  std::uint64_t events = 0;
  for (auto _ : state) {
    auto r = sim::Simulate(w, *profile, *policy, options);
    if (!r.ok() || !r->violations.empty()) {
      state.SkipWithError("simulation failed");
      return;
    }
    events += r->events;
  }
  state.counters["events_per_s"] = benchmark::Counter(static_cast<double>(events), benchmark::Counter::kIsRate);
  state.SetItemsProcessed(static_cast<std::int64_t>(events));
}
BENCHMARK(BM_ReplayEndToEnd)->Arg(0)->Arg(1)->Unit(benchmark::kMillisecond);

}  // namespace
}  // namespace residency

BENCHMARK_MAIN();
