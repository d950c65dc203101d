// A minimal executor for engine tests: it completes commands either in the
// order they were issued or in a seeded random order (as real threads would),
// and checks the engine's invariants after every step.
#pragma once

#include <algorithm>
#include <random>
#include <string>
#include <vector>

#include "runtime/engine/engine.h"

namespace residency::testing {

struct DriverLog {
  std::vector<engine::Command> commands;
  std::vector<engine::Notice> notices;
  std::vector<engine::OpResult> finished;
  std::vector<std::string> violations;

  int Count(engine::NoticeKind kind) const {
    return static_cast<int>(std::count_if(notices.begin(), notices.end(),
                                          [&](const engine::Notice& n) { return n.kind == kind; }));
  }
  int Count(engine::CommandKind kind) const {
    return static_cast<int>(std::count_if(commands.begin(), commands.end(),
                                          [&](const engine::Command& c) { return c.kind == kind; }));
  }
  const engine::OpResult* Result(engine::OpId id) const {
    for (const auto& r : finished)
      if (r.op == id) return &r;
    return nullptr;
  }
};

class EngineDriver {
 public:
  EngineDriver(engine::Engine& e, std::uint64_t seed = 0) : engine_(e), rng_(seed), random_(seed != 0) {}

  void Submit(const engine::Op& op) {
    engine::Outbox out;
    engine_.Submit(op, out);
    Take(out);
  }
  void Pressure(engine::Bytes bytes) {
    engine::Outbox out;
    engine_.HostPressure(bytes, out);
    Take(out);
  }
  // Completes commands until none is pending; bounded.
  void RunToIdle(int max_steps = 10'000'000) {
    while (!pending_.empty() && max_steps-- > 0) {
      std::size_t index = 0;
      if (random_) index = std::uniform_int_distribution<std::size_t>(0, pending_.size() - 1)(rng_);
      const engine::CommandId id = pending_[index];
      pending_.erase(pending_.begin() + static_cast<std::ptrdiff_t>(index));
      engine::Outbox out;
      engine_.Complete({id, fail_ == id ? Internal("injected failure") : Status::Ok()}, out);
      Take(out);
    }
  }
  void FailCommand(engine::CommandId id) { fail_ = id; }
  // Fails the first file read of `model` issued from now on.
  void FailFirstRead(engine::ModelId model) { fail_read_of_ = model; }
  DriverLog& log() { return log_; }

 private:
  void Take(engine::Outbox& out) {
    for (const auto& c : out.commands) {
      if (fail_read_of_ && c.kind == engine::CommandKind::kReadFile && c.model == fail_read_of_) {
        fail_ = c.id;
        fail_read_of_ = 0;
      }
      log_.commands.push_back(c);
      pending_.push_back(c.id);
    }
    for (const auto& n : out.notices) log_.notices.push_back(n);
    for (const auto& f : out.finished) log_.finished.push_back(f);
    for (auto& v : engine_.CheckInvariants()) log_.violations.push_back(std::move(v));
  }

  engine::Engine& engine_;
  std::mt19937_64 rng_;
  bool random_;
  engine::CommandId fail_ = 0;
  engine::ModelId fail_read_of_ = 0;
  std::vector<engine::CommandId> pending_;
  DriverLog log_;
};

inline engine::Op Register(engine::OpId id, engine::ModelId model, engine::Bytes bytes,
                           int tensors = 4) {
  engine::Op op;
  op.id = id;
  op.kind = engine::OpKind::kRegisterModel;
  op.model = model;
  op.name = "m" + std::to_string(model);
  engine::FileSpec f;
  f.path = "/models/m" + std::to_string(model) + ".safetensors";
  f.bytes = bytes;
  for (int i = 0; i < tensors; ++i) f.tensor_bytes.push_back(bytes / tensors);
  f.tensor_bytes.back() += bytes - (bytes / tensors) * tensors;
  op.files.push_back(f);
  return op;
}

inline engine::Op Simple(engine::OpId id, engine::OpKind kind, engine::ModelId model) {
  engine::Op op;
  op.id = id;
  op.kind = kind;
  op.model = model;
  return op;
}

inline engine::Op Compute(engine::OpId id, std::vector<engine::ModelId> models,
                          engine::Bytes activations, int steps = 2) {
  engine::Op op;
  op.id = id;
  op.kind = engine::OpKind::kCompute;
  op.models = std::move(models);
  op.steps = steps;
  op.step_ns = 1'000'000;
  op.activation_bytes = activations;
  return op;
}

}  // namespace residency::testing
