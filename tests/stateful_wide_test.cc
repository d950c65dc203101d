// The stateful test (rc::state) widened: any generated machine and policy
// (harness/proof/case_gen.h), 1-5 models sized against the device so the
// budgets bind, and every op a server sends, in any order: loads (full,
// partial, dynamic), computes, patches, releases, deletes, models built again
// from the same files, host pressure, and injected command failures.
//
// Whether a load fits depends on what the engine evicted, so the model of
// residency here is a shadow updated by each op's outcome under rules that do
// not depend on the engine: a deleted model refuses loads, computes and
// patches; a release without a handle and a second delete are refused; a
// failed load takes no handle; a release always drops one; an executor
// failure (INTERNAL) only where one was injected; a finalizer exactly once,
// once a deleted model has no handle. After every op the engine's view, the
// engine's own invariants and the outside-in checker must agree with the
// shadow; at the end every model is released and deleted and nothing a model
// owned may be left in any tier.
#include <gtest/gtest.h>
#include <rapidcheck/gtest.h>
#include <rapidcheck/state.h>

#include <algorithm>
#include <memory>
#include <sstream>

#include "harness/proof/case_gen.h"
#include "harness/proof/residency_checker.h"
#include "harness/proof/spec_budgets.h"
#include "runtime/engine/engine.h"
#include "runtime/base/splitmix64.h"
#include "traces/policy_file.h"

namespace residency::proof {
namespace {

using engine::Bytes;
using engine::kGiB;
using engine::kMiB;
using engine::OpKind;

constexpr int kMaxModels = 10;  // registered over a sequence, rebuilt ones included

// The generated world: machine, policy, the file sets models are built from,
// and how often a command fails.
struct World {
  traces::Profile profile;
  engine::Policy policy;
  std::vector<std::vector<engine::FileSpec>> file_sets;
  std::uint32_t fail_permille = 0;
  bool pressure_mid_op = false;  // host pressure now and then while commands are in flight
};

rc::Gen<World> GenWorld() {
  return rc::gen::exec([] {
    World w;
    w.profile = *GenProfile();
    w.policy = *GenPolicy();
    // Machines up to 16 GiB of VRAM (32 GiB unified) and reads of 4 MiB or
    // more: a sequence holds dozens of loads, and a 76 GiB model in 256 KiB
    // reads is 300,000 commands a load (the property tests cover those).
    if (w.profile.unified) {
      w.profile.ram_bytes = std::min(w.profile.ram_bytes, 32 * kGiB);
      w.profile.vram_bytes = std::min(w.profile.vram_bytes, w.profile.ram_bytes);
    } else {
      w.profile.vram_bytes = std::min(w.profile.vram_bytes, 16 * kGiB);
    }
    w.policy.chunk_bytes = std::max(w.policy.chunk_bytes, 4 * kMiB);
    w.policy.staging_bytes = std::max(w.policy.staging_bytes, w.policy.chunk_bytes);
    // Sizes against the device (the pool on unified machines), 5-95 % of it,
    // so two or three models overflow it; LoRA-sized ones now and then.
    const Bytes device = w.profile.vram_bytes;
    const int sets = *rc::gen::inRange(1, 6);
    for (int s = 0; s < sets; ++s) {
      const bool lora = *rc::gen::weightedElement<bool>({{1, true}, {3, false}});
      const Bytes bytes = lora ? *rc::gen::inRange<Bytes>(1, 513) * kMiB
                               : std::max<Bytes>(kMiB, device / 100 * *rc::gen::inRange<Bytes>(5, 96) / kMiB * kMiB);
      const int files = *rc::gen::inRange(1, 3);
      std::vector<engine::FileSpec> set;
      for (int f = 0; f < files; ++f) {
        engine::FileSpec spec;
        spec.path = "set" + std::to_string(s) + "-" + std::to_string(f) + ".safetensors";
        spec.bytes = bytes / files + (f == 0 ? bytes % files : 0);
        const int tensors = *rc::gen::inRange(1, 9);
        for (int t = 0; t < tensors; ++t) spec.tensor_bytes.push_back(spec.bytes / tensors);
        spec.tensor_bytes.back() += spec.bytes - spec.bytes / tensors * tensors;
        set.push_back(spec);
      }
      w.file_sets.push_back(set);
    }
    // A load issues tens to hundreds of commands: at 3 % most fail, at 0.2 %
    // a few do; FailNext aims one failure at the next op in any case.
    w.fail_permille = *rc::gen::element<std::uint32_t>(0, 0, 2, 2, 30);
    w.pressure_mid_op = *rc::gen::arbitrary<bool>();
    return w;
  });
}

// RapidCheck's model: only what generating commands needs (how many models
// there are, and of which file set each is built).
struct Model {
  std::vector<int> model_set;  // per registered model
  int sets = 1;
};

struct Shadow {
  int handles = 0;
  bool deleted = false;
  Bytes bytes = 0;
};

struct Sut {
  World world;
  std::unique_ptr<engine::Engine> engine;
  std::unique_ptr<ResidencyChecker> checker;
  std::vector<Shadow> shadow;  // per registered model, index = ModelId - 1
  std::uint64_t rng = 1;
  engine::OpId next_op = 1;
  bool fail_next = false;  // the next command that can fail, fails
  bool injected = false;   // a failure was injected since the last op began

  explicit Sut(World w) : world(std::move(w)) {
    auto created = engine::Engine::Create(world.profile.Limits(), world.policy);
    RC_ASSERT(created.ok());
    engine = std::move(created).value();
    checker = std::make_unique<ResidencyChecker>(engine::Workload{}, SpecBudgets(world.profile, world.policy),
                                                 world.policy.load_modes);
    rng = world.fail_permille * 7919u + world.file_sets.size();
  }

  // Completes every pending command in random order, failing some.
  void Drain(engine::Outbox& out) {
    std::vector<engine::Command> pending;
    auto take = [&] {
      checker->Observe(*engine, out);
      for (const auto& c : out.commands) pending.push_back(c);
      for (const auto& f : out.finished) finished.push_back(f);
      out.Clear();
    };
    take();
    for (int steps = 0; !pending.empty(); ++steps) {
      if (steps > 5'000'000) RC_FAIL("no progress: 5,000,000 completions and still " + std::to_string(pending.size()) +
                                   " command(s) pending: " + engine->DescribeOutstanding());
      // The OS asks for memory back while an op runs, too (as in the simulator).
      if (world.pressure_mid_op && SplitMix64(rng) % 32 == 0) {
        engine->HostPressure(static_cast<Bytes>(SplitMix64(rng) % static_cast<std::uint64_t>(world.profile.ram_bytes)), out);
        take();
      }
      const std::size_t i = static_cast<std::size_t>(SplitMix64(rng) % pending.size());
      const engine::Command c = pending[i];
      pending[i] = pending.back();
      pending.pop_back();
      checker->Completed(c.id);
      bool fail = false;
      if (engine::CanFail(c.kind))
        fail = std::exchange(fail_next, false) || SplitMix64(rng) % 1000 < world.fail_permille;
      injected = injected || fail;
      engine->Complete({c.id, fail ? Internal("injected failure of a " + std::string(ToString(c.kind)))
                                   : Status::Ok()},
                       out);
      take();
    }
  }
  engine::OpResult Run(engine::Op op) {
    op.id = next_op++;
    finished.clear();
    injected = false;
    checker->AddOp(op);
    engine::Outbox out;
    engine->Submit(op, out);
    Drain(out);
    RC_ASSERT(finished.size() == 1u);
    RC_ASSERT(engine->Idle());
    return finished.front();
  }
  void Register(int set) {
    engine::Op op;
    op.kind = OpKind::kRegisterModel;
    op.model = static_cast<engine::ModelId>(shadow.size() + 1);
    op.name = "m" + std::to_string(op.model);
    op.files = world.file_sets[static_cast<std::size_t>(set)];
    Shadow s;
    for (const auto& f : op.files) s.bytes += f.bytes;
    const engine::OpResult r = Run(op);
    RC_ASSERT(r.status.ok());
    shadow.push_back(s);
  }
  // The engine, its own invariants and the checker agree with the shadow.
  void Agree() const {
    const std::vector<engine::ModelView> views = engine->Models();
    for (std::size_t i = 0; i < shadow.size(); ++i) {
      const auto v = std::find_if(views.begin(), views.end(),
                                  [&](const engine::ModelView& mv) { return mv.id == i + 1; });
      RC_ASSERT(v != views.end());
      RC_ASSERT(v->handles == shadow[i].handles);
      RC_ASSERT(v->deleted == shadow[i].deleted);
      RC_ASSERT(v->finalizer_runs == (shadow[i].deleted && shadow[i].handles == 0 ? 1 : 0));
    }
    const std::vector<std::string> own = engine->CheckInvariants();
    if (!own.empty()) RC_FAIL("engine invariant: " + own.front());
    if (!checker->violations().empty()) RC_FAIL("checker: " + checker->violations().front());
  }
  // An op the environment may refuse: ok, out of memory, or an executor
  // failure where one was injected. Anything else is a bug.
  void ExpectOkOrEnvironment(const engine::OpResult& r) const {
    // A command of this op failed: the op must say so, not carry on as if it had not.
    if (r.status.ok() && injected) RC_FAIL("an injected failure was swallowed: the op reported OK");
    if (r.status.ok() || r.status.code() == StatusCode::kResourceExhausted) return;
    if (r.status.code() == StatusCode::kInternal && injected) return;
    RC_FAIL("unexpected " + std::string(ToString(r.status.code())) + (injected ? " (a failure was injected)" : "") +
            ": " + r.status.message());
  }

  std::vector<engine::OpResult> finished;
};

engine::ModelId Id(int m) { return static_cast<engine::ModelId>(m + 1); }

struct Cmd : rc::state::Command<Model, Sut> {
  int m = 0;
  explicit Cmd(const Model& model) : m(*rc::gen::inRange(0, static_cast<int>(model.model_set.size()))) {}
  // A shrunk world may have fewer models than the sequence was built for.
  void checkPreconditions(const Model& model) const override {
    RC_PRE(m < static_cast<int>(model.model_set.size()));
  }
  engine::Op Make(OpKind kind) const {
    engine::Op op;
    op.kind = kind;
    op.model = Id(m);
    return op;
  }
};

struct Load : Cmd {
  using Cmd::Cmd;
  engine::LoadMode mode = *rc::gen::element(engine::LoadMode::kFull, engine::LoadMode::kPartial,
                                            engine::LoadMode::kDynamic);
  int partial_percent = *rc::gen::inRange(1, 101);
  void run(const Model&, Sut& sut) const override {
    engine::Op op = Make(OpKind::kLoad);
    op.mode = mode;
    Shadow& s = sut.shadow[static_cast<std::size_t>(m)];
    op.device_bytes = std::max<Bytes>(1, s.bytes / 100 * partial_percent);
    const engine::OpResult r = sut.Run(op);
    if (s.deleted) {
      RC_ASSERT(r.status.code() == StatusCode::kFailedPrecondition);
    } else {
      sut.ExpectOkOrEnvironment(r);
      if (r.status.ok()) ++s.handles;  // a failed load takes no handle
    }
    sut.Agree();
  }
  void show(std::ostream& os) const override { os << "load m" << Id(m) << " " << ToString(mode); }
};

struct Release : Cmd {
  using Cmd::Cmd;
  void run(const Model&, Sut& sut) const override {
    Shadow& s = sut.shadow[static_cast<std::size_t>(m)];
    const engine::OpResult r = sut.Run(Make(OpKind::kRelease));
    if (s.handles == 0) {
      RC_ASSERT(r.status.code() == StatusCode::kFailedPrecondition);  // release after the last, or after delete
    } else {
      RC_ASSERT(r.status.ok());  // frees and unpins never fail
      --s.handles;
    }
    sut.Agree();
  }
  void show(std::ostream& os) const override { os << "release m" << Id(m); }
};

struct Delete : Cmd {
  using Cmd::Cmd;
  void run(const Model&, Sut& sut) const override {
    Shadow& s = sut.shadow[static_cast<std::size_t>(m)];
    const engine::OpResult r = sut.Run(Make(OpKind::kDelete));
    if (s.deleted) {
      RC_ASSERT(r.status.code() == StatusCode::kFailedPrecondition);  // a double delete
    } else {
      RC_ASSERT(r.status.ok());
      s.deleted = true;
    }
    sut.Agree();
  }
  void show(std::ostream& os) const override { os << "delete m" << Id(m); }
};

struct Compute : Cmd {
  using Cmd::Cmd;
  int second = *rc::gen::inRange(-1, kMaxModels);  // a second model, when there is one
  int steps = *rc::gen::inRange(0, 4);
  Bytes activation_mib = *rc::gen::element<Bytes>(0, 64, 512, 2048);
  void run(const Model&, Sut& sut) const override {
    engine::Op op = Make(OpKind::kCompute);
    op.models = {Id(m)};
    if (second >= 0 && second < static_cast<int>(sut.shadow.size()) && second != m) op.models.push_back(Id(second));
    op.steps = steps;
    op.step_ns = 1'000'000;
    op.activation_bytes = activation_mib * kMiB;
    bool any_deleted = false;
    for (engine::ModelId id : op.models) any_deleted = any_deleted || sut.shadow[id - 1].deleted;
    const engine::OpResult r = sut.Run(op);
    if (any_deleted)
      RC_ASSERT(r.status.code() == StatusCode::kFailedPrecondition);
    else
      sut.ExpectOkOrEnvironment(r);
    sut.Agree();
  }
  void show(std::ostream& os) const override {
    os << "compute m" << Id(m) << (second >= 0 ? " +m" + std::to_string(second + 1) : "") << " " << steps
       << " steps, " << activation_mib << " MiB activations";
  }
};

struct Patch : Cmd {
  using Cmd::Cmd;
  int patch = *rc::gen::inRange(0, kMaxModels);
  int patched_percent = *rc::gen::inRange(0, 101);
  void run(const Model&, Sut& sut) const override {
    const int p = patch % static_cast<int>(sut.shadow.size());
    if (p == m) return;  // a model cannot patch itself (an InvalidArgument, tested elsewhere)
    engine::Op op = Make(OpKind::kPatch);
    op.patch_model = Id(p);
    op.patched_bytes = sut.shadow[static_cast<std::size_t>(m)].bytes / 100 * patched_percent;
    const bool deleted = sut.shadow[static_cast<std::size_t>(m)].deleted || sut.shadow[static_cast<std::size_t>(p)].deleted;
    const engine::OpResult r = sut.Run(op);
    if (deleted)
      RC_ASSERT(r.status.code() == StatusCode::kFailedPrecondition);
    else
      sut.ExpectOkOrEnvironment(r);
    sut.Agree();
  }
  void show(std::ostream& os) const override { os << "patch m" << Id(m) << " with m(" << patch << " mod n)"; }
};

// Another model from the same files as model m (a workflow switch rebuilds a
// deleted model; a second loader node may build a live one twice).
struct Rebuild : Cmd {
  using Cmd::Cmd;
  void checkPreconditions(const Model& model) const override {
    Cmd::checkPreconditions(model);
    RC_PRE(static_cast<int>(model.model_set.size()) < kMaxModels);
  }
  void apply(Model& model) const override { model.model_set.push_back(model.model_set[static_cast<std::size_t>(m)]); }
  void run(const Model& model, Sut& sut) const override {
    sut.Register(model.model_set[static_cast<std::size_t>(m)]);
    sut.Agree();
  }
  void show(std::ostream& os) const override { os << "rebuild m" << Id(m) << "'s files as a new model"; }
};

struct Pressure : Cmd {
  using Cmd::Cmd;
  int percent = *rc::gen::inRange(1, 101);
  void run(const Model&, Sut& sut) const override {
    engine::Outbox out;
    sut.engine->HostPressure(sut.world.profile.ram_bytes / 100 * percent, out);
    sut.Drain(out);
    RC_ASSERT(sut.engine->Idle());
    sut.Agree();  // pressure never touches handles or finalizers
  }
  void show(std::ostream& os) const override { os << "host pressure " << percent << "% of RAM"; }
};

struct FailNext : Cmd {
  using Cmd::Cmd;
  void run(const Model&, Sut& sut) const override { sut.fail_next = true; }
  void show(std::ostream& os) const override { os << "fail the next command that can fail"; }
};

std::string Describe(const World& w) {
  std::ostringstream s;
  s << "RAM " << (w.profile.ram_bytes >> 20) << " MiB, VRAM " << (w.profile.vram_bytes >> 20) << " MiB"
    << (w.profile.unified ? " (unified)" : "") << ", fail " << w.fail_permille << " permille" << (w.pressure_mid_op ? ", host pressure mid-op" : "")
    << ", file sets:";
  for (const auto& set : w.file_sets) {
    Bytes b = 0;
    for (const auto& f : set) b += f.bytes;
    s << " " << (b >> 20) << " MiB";
  }
  s << "\npolicy:\n" << traces::WritePolicy(w.policy);
  return s.str();
}

RC_GTEST_PROP(Stateful, AnyMachineAnyPolicyAgreesWithAModelOfResidency, ()) {
  const World world = *GenWorld();
  RC_TAG(world.fail_permille > 0 ? "failures injected" : "no failures");
  RC_CLASSIFY(world.profile.unified, "unified");
  Model model;
  model.sets = static_cast<int>(world.file_sets.size());
  Sut sut(world);
  for (int s = 0; s < model.sets; ++s) {
    model.model_set.push_back(s);
    sut.Register(s);
  }
  RC_LOG() << Describe(world) << "\n";  // printed with a counterexample only
  rc::state::check(model, sut,
                   rc::state::gen::execOneOfWithArgs<Load, Load, Release, Delete, Compute, Compute, Patch, Rebuild,
                                                     Pressure, FailNext>());
  // The end of the run: every handle released, every model deleted, without
  // failures, and nothing a model owned is left anywhere.
  sut.world.fail_permille = 0;
  sut.fail_next = false;
  for (std::size_t i = 0; i < sut.shadow.size(); ++i) {
    while (sut.shadow[i].handles > 0) {
      engine::Op op;
      op.kind = OpKind::kRelease;
      op.model = Id(static_cast<int>(i));
      RC_ASSERT(sut.Run(op).status.ok());
      --sut.shadow[i].handles;
    }
    if (!sut.shadow[i].deleted) {
      engine::Op op;
      op.kind = OpKind::kDelete;
      op.model = Id(static_cast<int>(i));
      RC_ASSERT(sut.Run(op).status.ok());
      sut.shadow[i].deleted = true;
    }
  }
  sut.Agree();
  sut.checker->Finish(*sut.engine);
  if (!sut.checker->violations().empty()) RC_FAIL(sut.checker->violations().front());
  const std::vector<std::string> left = sut.checker->Leftovers();
  if (!left.empty()) RC_FAIL("left allocated after every model was released and deleted: " + left.front());
}

}  // namespace
}  // namespace residency::proof
