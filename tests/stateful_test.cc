// A stateful test (rc::state) of the engine against a small model of
// residency: per model, how many handles are live and whether it was deleted.
// RapidCheck generates and shrinks command sequences; after every command the
// engine (driven to idle, completions in random order, watched by the
// outside-in ResidencyChecker) must agree with the model: the op's outcome,
// the handle counts, and finalizers that ran exactly when the model says.
#include <gtest/gtest.h>
#include <rapidcheck/gtest.h>
#include <rapidcheck/state.h>

#include <array>
#include <memory>

#include "harness/proof/residency_checker.h"
#include "runtime/engine/engine.h"
#include "runtime/base/splitmix64.h"

namespace residency::proof {
namespace {

using engine::kGiB;
constexpr int kModels = 3;
constexpr std::array<engine::Bytes, kModels> kSizes = {2 * kGiB, 3 * kGiB, 4 * kGiB};

struct Model {
  std::array<int, kModels> handles{};
  std::array<bool, kModels> deleted{};
};

struct Sut {
  engine::Workload workload;  // the registrations
  std::unique_ptr<engine::Engine> engine;
  std::unique_ptr<ResidencyChecker> checker;
  std::uint64_t rng = 1;
  engine::OpId next_op = 1;

  Sut() {
    engine::MachineLimits m;
    m.ram_bytes = 32 * kGiB;
    m.device_bytes = 8 * kGiB;
    engine::Policy p;
    p.eviction = engine::EvictionKind::kRamLru;
    engine = std::move(engine::Engine::Create(m, p)).value();
    for (int i = 0; i < kModels; ++i) {
      engine::Op op;
      op.kind = engine::OpKind::kRegisterModel;
      op.model = static_cast<engine::ModelId>(i + 1);
      op.name = "m" + std::to_string(i);
      op.files = {{op.name + ".safetensors", kSizes[i], {}}};
      workload.ops.push_back(op);
    }
    for (engine::Op& op : workload.ops) op.id = next_op++;
    checker = std::make_unique<ResidencyChecker>(workload, engine->budgets());
    for (const engine::Op& op : workload.ops) Run(op);
  }
  // Submits one op and completes commands in random order until idle.
  engine::OpResult Run(const engine::Op& op) {
    engine::Outbox out;
    std::vector<engine::CommandId> pending;
    std::vector<engine::OpResult> finished;
    auto take = [&] {
      checker->Observe(*engine, out);
      for (const auto& c : out.commands) pending.push_back(c.id);
      for (const auto& f : out.finished) finished.push_back(f);
      out.Clear();
    };
    checker->AddOp(op);
    engine->Submit(op, out);
    take();
    while (!pending.empty()) {
      const std::size_t i = static_cast<std::size_t>(SplitMix64(rng) % pending.size());
      const engine::CommandId id = pending[i];
      pending[i] = pending.back();
      pending.pop_back();
      checker->Completed(id);
      engine->Complete({id, Status::Ok()}, out);
      take();
    }
    RC_ASSERT(finished.size() == 1u);
    return finished.front();
  }
  engine::ModelView View(int m) const {
    for (const engine::ModelView& v : engine->Models())
      if (v.id == static_cast<engine::ModelId>(m + 1)) return v;
    return {};
  }
};

// Checks every model after a command; the checker's violations too.
void Agree(const Model& model, const Sut& sut) {
  for (int i = 0; i < kModels; ++i) {
    const engine::ModelView v = sut.View(i);
    RC_ASSERT(v.handles == model.handles[i]);
    RC_ASSERT(v.deleted == model.deleted[i]);
    RC_ASSERT(v.finalizer_runs == (model.deleted[i] && model.handles[i] == 0 ? 1 : 0));
  }
  RC_ASSERT(sut.engine->CheckInvariants().empty());
}

struct Op : rc::state::Command<Model, Sut> {
  int m = *rc::gen::inRange(0, kModels);
  engine::Op Make(Sut& sut, engine::OpKind kind) const {
    engine::Op op;
    op.id = sut.next_op++;
    op.kind = kind;
    op.model = static_cast<engine::ModelId>(m + 1);
    return op;
  }
};

struct Load : Op {
  engine::LoadMode mode = *rc::gen::element(engine::LoadMode::kFull, engine::LoadMode::kPartial);
  void apply(Model& model) const override {
    if (!model.deleted[m]) ++model.handles[m];
  }
  void run(const Model& model, Sut& sut) const override {
    engine::Op op = Make(sut, engine::OpKind::kLoad);
    op.mode = mode;
    op.device_bytes = 1 * kGiB;
    const engine::OpResult r = sut.Run(op);
    if (model.deleted[m]) {
      RC_ASSERT(r.status.code() == StatusCode::kFailedPrecondition);
      return;
    }
    RC_ASSERT(r.status.ok());  // every model fits the 8 GiB device alone or streamed
    Model next = model;
    apply(next);
    Agree(next, sut);
  }
  void show(std::ostream& os) const override { os << "load m" << m << (mode == engine::LoadMode::kPartial ? " partial" : ""); }
};

struct Release : Op {
  void apply(Model& model) const override {
    if (model.handles[m] > 0) --model.handles[m];
  }
  void run(const Model& model, Sut& sut) const override {
    const engine::OpResult r = sut.Run(Make(sut, engine::OpKind::kRelease));
    RC_ASSERT(r.status.ok() == (model.handles[m] > 0));
    Model next = model;
    apply(next);
    Agree(next, sut);
  }
  void show(std::ostream& os) const override { os << "release m" << m; }
};

struct Delete : Op {
  void apply(Model& model) const override { model.deleted[m] = true; }
  void run(const Model& model, Sut& sut) const override {
    const engine::OpResult r = sut.Run(Make(sut, engine::OpKind::kDelete));
    if (!model.deleted[m]) RC_ASSERT(r.status.ok());
    Model next = model;
    apply(next);
    Agree(next, sut);
  }
  void show(std::ostream& os) const override { os << "delete m" << m; }
};

struct Compute : Op {
  void run(const Model& model, Sut& sut) const override {
    engine::Op op = Make(sut, engine::OpKind::kCompute);
    op.models.clear();
    for (int i = 0; i < kModels; ++i)
      if (model.handles[i] > 0 && !model.deleted[i]) {
        op.models = {static_cast<engine::ModelId>(i + 1)};  // one model at a time fits
        break;
      }
    op.steps = 2;
    op.step_ns = 1'000'000;
    op.activation_bytes = 256 * 1024 * 1024;
    const engine::OpResult r = sut.Run(op);
    RC_ASSERT(r.status.ok());
    Agree(model, sut);
  }
  void show(std::ostream& os) const override { os << "compute"; }
};

RC_GTEST_PROP(Stateful, EngineAgreesWithAModelOfResidency, ()) {
  Model model;
  Sut sut;
  rc::state::check(model, sut, rc::state::gen::execOneOfWithArgs<Load, Release, Delete, Compute>());
  RC_ASSERT(sut.checker->violations().empty());
}

}  // namespace
}  // namespace residency::proof
