// The simulator's event log: every command issued, every completion, every
// notice and finished op, with its virtual time. It is folded into a 64-bit
// FNV-1a hash as it goes; the text lines are kept only when asked for
// (determinism checks print the first line where two runs differ).
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "runtime/engine/commands.h"

namespace residency::sim {

class EventLog {
 public:
  explicit EventLog(bool keep_lines) : keep_lines_(keep_lines) {}

  // Text lines name the model after its id: "model=3(wan22-high)". Names
  // are not hashed, so naming changes no event-log hash.
  void NameModel(engine::ModelId id, std::string name) { names_[id] = std::move(name); }

  void Issue(engine::Nanos t, const engine::Command& c);
  void Completion(engine::Nanos t, engine::CommandId id);
  void NoticeLine(engine::Nanos t, const engine::Notice& n);
  void OpFinished(engine::Nanos t, const engine::OpResult& r);
  void Pressure(engine::Nanos t, engine::Bytes bytes);
  void Oom(engine::Nanos t, const std::string& why);

  std::uint64_t hash() const { return hash_; }
  const std::vector<std::string>& lines() const { return lines_; }

 private:
  void Mix(std::uint64_t v);
  void Line(std::string line);
  std::string Model(engine::ModelId id) const;

  bool keep_lines_;
  std::uint64_t hash_ = 0xcbf29ce484222325ULL;
  std::vector<std::string> lines_;
  std::map<engine::ModelId, std::string> names_;
};

}  // namespace residency::sim
